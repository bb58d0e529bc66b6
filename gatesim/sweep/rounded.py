"""A trained design's accuracy with its TFHE tables rounded: the checkpoint's cell with every
table input rounded to its k most significant bits (widths as they are over the task's own
training sequences: the input set a user compiles a trained model on), run bit-exactly by the
integer simulator over the test set, then scored. Saved beside the checkpoint, keyed by the
run, k and the code that computes it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

INPUTSET_SEQUENCES = 64  # training sequences the rounded widths are observed over
CODE = ("he", "simulate")  # what a rounded score depends on besides the trained run


def _code_key() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(p for d in CODE for p in (root / d).rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def rounded_path(checkpoint: Path, bits: int) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}-round{bits}-{_code_key()}.json")


def rounded_score(folder: str | Path, arguments: dict[str, Any], bits: int) -> dict[str, Any]:
    """{"value", "rounded_tables"} of the run `arguments` (train() arguments) with its tables
    rounded to `bits` bits; trains the run first when its weights are not at hand."""
    import torch

    from gatesim.files import write_text_atomically
    from gatesim.he.bounds import rounding_plan_over
    from gatesim.simulate import simulate
    from gatesim.train.run import checkpoint_path, load_checkpoint, train
    from gatesim.train.tasks import get_task

    checkpoint = checkpoint_path(folder, **arguments)
    saved = rounded_path(checkpoint, bits)
    if saved.is_file():
        return json.loads(saved.read_text())
    if not checkpoint.is_file():  # results are kept in git, weights are not: train them again
        train(**arguments, checkpoint=checkpoint)
    model, run = load_checkpoint(checkpoint)
    task, seq_len = get_task(run["task"], run["seq_len"])
    torch.manual_seed(run["seed"])
    x_train, _ = task.make(run["train_size"], seq_len, run["seed"], "train")
    x_test, y_test = task.make(run["test_size"], seq_len, run["seed"], "test")
    model.eval()
    plan = rounding_plan_over(model.cell, x_train[:INPUTSET_SEQUENCES].numpy(), bits)
    cell = simulate(model.cell, x_test, rounding=dict(plan))
    head = simulate(model.readout, cell.outputs[0][:, -1][:, None, :])
    result = {"value": float(task.score(head.outputs[0][:, 0], y_test.numpy())), "rounding_bits": bits,
              "rounded_tables": dict(plan), "checkpoint": checkpoint.name}
    write_text_atomically(saved, json.dumps(result, indent=1))
    return result
