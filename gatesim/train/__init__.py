"""Accuracy: quantization-aware training on sequence tasks, evaluated bit-accurately."""
from gatesim.train.run import load_checkpoint, train
from gatesim.train.tasks import TASKS, get_task

__all__ = ["TASKS", "get_task", "train", "load_checkpoint"]
