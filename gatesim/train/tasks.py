"""Sequence tasks that need no download: data generated from a seed, or bundled with
scikit-learn. Each knows its metric, its loss and what a model that learned nothing scores."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gatesim.errors import GatesimError

Data = tuple[torch.Tensor, torch.Tensor]
SPLITS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # "mse" (lower is better) or "accuracy" (higher is better)
    input_size: int
    output_size: int
    seq_lens: tuple[int, int]  # allowed range
    default_seq_len: int
    make: Callable[[int, int, int, str], Data]  # (n, seq_len, seed, split) -> (x (n, T, I), y)
    default_sizes: tuple[int, int] = (10_000, 1_000)  # (train, test) sequences when none are asked for
    most: tuple[int | None, int | None] = (None, None)  # (train, test) sequences the task has; None: generated

    def sizes(self, train_size: int | None, test_size: int | None) -> tuple[int, int]:
        """The sizes to use (the task's defaults for None); more than the task has is an error,
        never a silent cap."""
        out = []
        for split, asked, default, most in zip(("train", "test"), (train_size, test_size), self.default_sizes,
                                              self.most):
            n = default if asked is None else asked
            if most is not None and n > most:
                raise GatesimError(f"{split}_size={n:,}: the {self.name} task has {most:,} {split} sequences; "
                                   f"ask for at most that (the default takes them all)")
            out.append(n)
        return out[0], out[1]

    def loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.metric == "mse":
            return torch.nn.functional.mse_loss(pred.squeeze(-1), y)
        return torch.nn.functional.cross_entropy(pred, y)

    def score(self, pred: np.ndarray, y: np.ndarray) -> float:
        """The metric in float64, from predictions as numpy arrays."""
        pred, y = np.asarray(pred, dtype=np.float64), np.asarray(y)
        if self.metric == "mse":
            return float(np.mean((pred.reshape(-1) - y.astype(np.float64)) ** 2))
        return float(np.mean(pred.argmax(axis=-1) == y))

    def baseline(self, y_train: torch.Tensor, y_test: torch.Tensor) -> float:
        """What learning nothing scores: predict the training mean / the commonest class."""
        if self.metric == "mse":
            return float(((y_test.double() - y_train.double().mean()) ** 2).mean())
        common = torch.bincount(y_train).argmax()
        return float((y_test == common).double().mean())

    def better(self, a: float, b: float) -> bool:
        return a < b if self.metric == "mse" else a > b


def adding(n: int, seq_len: int, seed: int, split: str = "train") -> Data:
    """The adding problem (Hochreiter & Schmidhuber 1997; as in Le et al. 2015): per step a
    value in [0, 1) and a marker; exactly two markers, one in each half; the target is the sum
    of the two marked values. Predicting the mean scores MSE = 2/12 = 0.167."""
    g = torch.Generator().manual_seed(2 * seed + SPLITS[split])  # train and test never overlap
    values = torch.rand(n, seq_len, generator=g)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=-1), y


def digits(n: int, seq_len: int, seed: int, split: str = "train") -> Data:
    """scikit-learn's bundled 8x8 digits read pixel by pixel (64 steps, one value in [0, 1]
    each). A fixed shuffle (seed 0) puts 1,437 images in train and 360 in test (Task.most);
    `n` takes the first n of the split and `seed` orders its rows."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    cut = int(0.8 * len(order))
    pick = order[:cut] if split == "train" else order[cut:]
    pick = np.random.default_rng(seed).permutation(pick)[:n]
    x = torch.tensor(data.images[pick] / 16.0, dtype=torch.float32).reshape(len(pick), 64, 1)
    return x, torch.tensor(data.target[pick], dtype=torch.long)


TASKS = {
    "adding": Task("adding", "mse", 2, 1, (2, 10_000), 100, adding),
    "digits": Task("digits", "accuracy", 1, 10, (64, 64), 64, digits, (1_437, 360), (1_437, 360)),
}


def get_task(name: str, seq_len: int | None = None) -> tuple[Task, int]:
    """The task and its sequence length (checked against what the task allows)."""
    if name not in TASKS:
        raise GatesimError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    task = TASKS[name]
    seq_len = task.default_seq_len if seq_len is None else seq_len
    lo, hi = task.seq_lens
    if not lo <= seq_len <= hi:
        allowed = f"{lo}" if lo == hi else f"{lo}..{hi}"
        raise GatesimError(f"--seq-len={seq_len}: the {name} task takes {allowed}")
    return task, seq_len
