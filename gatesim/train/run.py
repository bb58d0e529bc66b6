"""Quantization-aware training of a cell on a task (Brevitas, CPU), then the task metric from
Brevitas' forward pass and from the bit-accurate simulator, which must agree exactly."""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gatesim.cells import CellConfig
from gatesim.errors import GatesimError
from gatesim.files import write_atomically
from gatesim.train.fast import steady_scales
from gatesim.train.model import SequenceModel, brevitas_predictions, simulator_predictions
from gatesim.train.tasks import get_task

Progress = Callable[[int, int], None]  # (batches done, batches in all)


DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str) -> str:
    """cpu or cuda: auto picks cuda when torch sees one; asking for cuda without one is an error."""
    import torch

    if device not in DEVICES:
        raise GatesimError(f"device={device!r}: allowed values are {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GatesimError("device='cuda': torch sees no CUDA device on this machine (torch.cuda.is_available() "
                           "is False); use cpu, or auto to take a GPU where there is one")
    return device


QAT_PATHS = ("fast", "brevitas")


def settings(cell: str, task: str, seq_len: int | None, hidden_size: int, config: CellConfig, epochs: int,
             seed: int, batch_size: int, lr: float, train_size: int | None, test_size: int | None,
             device: str = "cpu", qat: str = "fast") -> dict[str, Any]:
    """Everything a training run's result depends on (with gatesim's code: its cache key);
    sizes left None are the task's defaults. A GPU run is its own run (its float sums may round
    differently), and so is one through Brevitas' own layers (gradients summed in another
    order); a default run's settings name neither."""
    if qat not in QAT_PATHS:
        raise GatesimError(f"qat={qat!r}: allowed values are {', '.join(QAT_PATHS)}")
    the_task, seq_len = get_task(task, seq_len)
    for name, value in (("hidden_size", hidden_size), ("epochs", epochs), ("batch_size", batch_size),
                        ("train_size", train_size), ("test_size", test_size)):
        if value is None:
            continue
        if value < 1:
            raise GatesimError(f"{name}={value}: must be >= 1")
    if not lr > 0:
        raise GatesimError(f"lr={lr}: must be > 0")
    train_size, test_size = the_task.sizes(train_size, test_size)
    return {"cell": cell, "task": task, "seq_len": seq_len, "input_size": the_task.input_size,
            "hidden_size": hidden_size, "config": config.model_dump(), "epochs": epochs, "seed": seed,
            "batch_size": batch_size, "lr": lr, "train_size": train_size, "test_size": test_size,
            **({"device": device} if device != "cpu" else {}), **({"qat": qat} if qat != "fast" else {})}


PACKAGE_DIR = Path(__file__).resolve().parents[1]
TRAINING_CODE = ("cells", "train", "simulate", "fixedpoint", "trace")  # what a run's result depends on


def settings_key(s: dict[str, Any]) -> str:
    """sha256 of the settings and the code that trains and evaluates (not the cost models or
    the report: changing those must not throw away hours of training)."""
    h = hashlib.sha256(json.dumps(s, sort_keys=True).encode())
    for path in sorted(p for d in TRAINING_CODE for p in (PACKAGE_DIR / d).rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def run_name(s: dict[str, Any], key: str) -> str:
    c = s["config"]
    bits = "float" if c["weight_bits"] is None and c["act_bits"] is None else f"w{c['weight_bits']}a{c['act_bits']}"
    return f"{s['cell']}-{s['task']}-T{s['seq_len']}-H{s['hidden_size']}-{bits}-s{s['seed']}-{key[:12]}"


def _arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    bound = inspect.signature(train).bind(**arguments)
    bound.apply_defaults()
    return {**bound.arguments, "config": bound.arguments["config"] or CellConfig()}


def checkpoint_path(out: str | Path, **arguments: Any) -> Path:
    """<out>/<name>-<key>.pt: where `train_cached` keeps the run with these `train` arguments
    (its result beside it as .json)."""
    a = _arguments(arguments)
    s = settings(*(a[k] for k in ("cell", "task", "seq_len", "hidden_size", "config", "epochs", "seed",
                                   "batch_size", "lr", "train_size", "test_size")), resolve_device(a["device"]), a["qat"])
    return Path(out) / f"{run_name(s, settings_key(s))}.pt"


def train_cached(out: str | Path, retrain: bool = False, progress: Progress | None = None,
                 **arguments: Any) -> dict[str, Any]:
    """`train(**arguments)`, unless `out` already holds a run with the same settings and
    training code: then its saved result."""
    a = _arguments(arguments)
    path = checkpoint_path(out, **arguments)
    saved = path.with_suffix(".json")
    if saved.is_file() and not retrain:
        try:
            return {**json.loads(saved.read_text()), "cached": True}
        except json.JSONDecodeError:
            pass  # a damaged result: train again and overwrite it
    return {**train(**{**a, "checkpoint": path, "progress": progress}), "cached": False}


def train(cell: str, task: str, hidden_size: int, seq_len: int | None = None, config: CellConfig | None = None,
          epochs: int = 10, seed: int = 0, batch_size: int = 64, lr: float = 2e-3, train_size: int | None = None,
          test_size: int | None = None, checkpoint: str | Path | None = None,
          progress: Progress | None = None, device: str = "cpu", qat: str = "fast") -> dict[str, Any]:
    """Train from seed `seed` on `device` (cpu, cuda, auto) and report the test metric both
    ways, evaluated on the CPU; the dict `gatesim train --json` prints. Writes the weights and
    this dict to `checkpoint` (a .pt file) if given. qat: fast (Brevitas' forward with each
    pass's scales computed once, gatesim.train.fast) or brevitas (its layers as they are)."""
    config = config or CellConfig()
    device = resolve_device(device)
    s = settings(cell, task, seq_len, hidden_size, config, epochs, seed, batch_size, lr, train_size, test_size,
                 device, qat)
    the_task, seq_len = get_task(task, seq_len)
    train_size, test_size = s["train_size"], s["test_size"]
    progress = progress or (lambda done, total: None)
    torch.manual_seed(seed)
    x_train, y_train = the_task.make(train_size, seq_len, seed, "train")
    x_test, y_test = the_task.make(test_size, seq_len, seed, "test")
    model = SequenceModel(cell, the_task.input_size, hidden_size, the_task.output_size, config)
    order = torch.Generator().manual_seed(seed)
    batches = -(-len(x_train) // batch_size)
    partial = Path(checkpoint).with_suffix(".partial.pt") if checkpoint is not None else None
    # an interrupted run goes on from its last finished epoch; the weights are loaded before the
    # optimizer is made (loading may replace Brevitas' scale parameters with new objects)
    saved = load_partial(partial, model, order) if partial is not None and partial.is_file() else None
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history, spent = [], 0.0
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        history, spent = saved["history"], saved["seconds"]
    start = time.perf_counter() - spent
    for epoch in range(len(history), epochs):
        model.train()
        losses = []
        for i, rows in enumerate(torch.randperm(len(x_train), generator=order).split(batch_size)):
            with steady_scales(model) if qat == "fast" else contextlib.nullcontext():
                out = model(x_train[rows].to(device))
            loss = the_task.loss(out, y_train[rows].to(device))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # long sequences: rare huge steps
            optimizer.step()
            losses.append(loss.item())
            progress(epoch * batches + i + 1, epochs * batches)
        test = the_task.score(brevitas_predictions(model, x_test), y_test.numpy())
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), f"test_{the_task.metric}": test})
        if partial is not None and epoch + 1 < epochs:
            save_partial(partial, model, optimizer, order, history, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    model.to("cpu")  # the integer simulator and the checkpoint read it there
    # the finished model, evaluated twice: Brevitas' float forward and the integer simulator
    pred_brevitas = brevitas_predictions(model, x_test)
    value_brevitas = the_task.score(pred_brevitas, y_test.numpy())
    value_simulator = agree = mismatches = sim_info = None
    if config.quantized:
        pred_sim, sim_info = simulator_predictions(model, x_test)
        value_simulator = the_task.score(pred_sim, y_test.numpy())
        mismatches = int(np.sum(pred_sim.reshape(pred_brevitas.shape) != pred_brevitas))
        agree = mismatches == 0 and value_simulator == value_brevitas
    result = {"task": task, "metric": the_task.metric, "value_brevitas": value_brevitas,
              "value_simulator": value_simulator, "agree": agree, "mismatched_outputs": mismatches,
              "baseline": the_task.baseline(y_train, y_test), **{k: v for k, v in s.items() if k != "config"},
              "weight_bits": config.weight_bits, "act_bits": config.act_bits, "gate_bits": config.gate_bits,
              "acc_bits": config.acc_bits, "config": s["config"], "simulator": sim_info,
              "train_seconds": round(seconds, 2), "history": history, "checkpoint": None}
    if checkpoint is not None:
        result["checkpoint"] = str(save_checkpoint(Path(checkpoint), model, result))
        partial.unlink(missing_ok=True)
    return result


def save_partial(path: Path, model: SequenceModel, optimizer: torch.optim.Optimizer, order: torch.Generator,
                 history: list[dict], seconds: float) -> None:
    """What resuming after the last finished epoch needs: weights, optimizer, the batch order's
    generator and the global RNG (so the rest of the run is the one an uninterrupted run does)."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "order": order.get_state(),
                "rng": torch.get_rng_state(), "history": history, "seconds": seconds}, buffer)
    write_atomically(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_partial(path: Path, model: SequenceModel, order: torch.Generator) -> dict[str, Any]:
    """save_partial's file into the fresh run's model, batch order and RNG; the rest (optimizer
    state, history, seconds spent) returned."""
    try:
        saved = torch.load(path, weights_only=False, map_location="cpu")
        model.load_state_dict(saved["state_dict"])
        order.set_state(saved["order"])
        torch.set_rng_state(saved["rng"])
        return {k: saved[k] for k in ("optimizer", "history", "seconds")}
    except Exception as exc:
        raise GatesimError(f"{path}: an interrupted run that cannot be resumed ({type(exc).__name__}: {exc}); "
                           "delete it to train from the start") from exc


def save_checkpoint(path: Path, model: SequenceModel, result: dict[str, Any]) -> Path:
    """The weights and the run's settings and results in one torch file (written whole), and
    the results beside it as <name>.json."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "result": result}, buffer)
    write_atomically(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    write_atomically(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps({**result, "checkpoint": str(path)},
                                                                                       indent=1)))
    return path


def load_checkpoint(path: str | Path) -> tuple[SequenceModel, dict[str, Any]]:
    """A trained model back from `save_checkpoint`'s file."""
    path = Path(path)
    if not path.is_file():
        raise GatesimError(f"{path}: no such checkpoint")
    try:
        saved = torch.load(path, weights_only=False)
        r = saved["result"]
        the_task, _ = get_task(r["task"], r["seq_len"])
        model = SequenceModel(r["cell"], the_task.input_size, r["hidden_size"], the_task.output_size,
                              CellConfig(**r["config"]))
        model.load_state_dict(saved["state_dict"])
    except GatesimError:
        raise
    except Exception as exc:
        raise GatesimError(f"{path}: not a gatesim checkpoint ({type(exc).__name__}: {exc})") from exc
    return model, r
