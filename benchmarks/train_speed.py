"""Quantization-aware training speed (issue 18): milliseconds per training batch (forward,
backward, Adam step) of each built-in cell at H = 32, T = 100, batch 64, one thread.

brevitas  the model gatesim trains today: Brevitas' fake-quantized cell over the sequence
          plus its quantized readout (gatesim.train.model.SequenceModel), eager.
qat       the fastest QAT path whose forward equals Brevitas' on the same parameters: the same
          model under torch.compile when that compiles and its outputs equal the eager ones
          bit for bit, else the eager model itself (`qat_path` says which).
float     the peer: the same cell unquantized, as plain PyTorch (gatesim.validate.plain) with a
          float readout, trained the same way.

Last line, a JSON object: {"qat_ms_per_batch", "float_ms_per_batch", "ratio",
"brevitas_ms_per_batch", "speedup_vs_brevitas", "qat_path", "cells"} (the first five are the
mean over the four cells; "cells" holds each cell's figures). Issue 18 asks ratio <= 3.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch
from torch import nn

from gatesim.cells import CELLS, CellConfig, build_cell, n_states
from gatesim.train.model import SequenceModel
from gatesim.validate.plain import plain_torch

HIDDEN, STEPS, BATCH, INPUTS, OUTPUTS = 32, 100, 64, 2, 1
REPEATS = int(os.environ.get("TRAIN_SPEED_REPEATS", 5))  # timed batches per figure (the test runs 1)


class FloatModel(nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.cell = plain_torch(build_cell(cell, INPUTS, HIDDEN, CellConfig.unquantized()))
        self.states = n_states(cell)
        self.readout = nn.Linear(HIDDEN, OUTPUTS)

    def forward(self, x):
        state = tuple(torch.zeros(x.shape[0], HIDDEN) for _ in range(self.states))
        for t in range(x.shape[1]):
            out = self.cell(x[:, t], *state)
            state = out if isinstance(out, tuple) else (out,)
        return self.readout(state[0])


def ms_per_batch(model: nn.Module, forward=None) -> float:
    forward = model if forward is None else forward
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(BATCH, STEPS, INPUTS), torch.rand(BATCH, OUTPUTS)

    def step():
        loss = nn.functional.mse_loss(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up (and compilation)
    step()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def compiled_if_exact(model: SequenceModel):
    """torch.compile of the model when it compiles and equals the eager forward bit for bit."""
    try:
        compiled = torch.compile(model)
        x = torch.rand(BATCH, STEPS, INPUTS)
        with torch.no_grad():
            same = torch.equal(compiled(x), model(x))
        return compiled if same else None
    except Exception:
        return None


def main() -> None:
    torch.set_num_threads(1)
    cells, paths = {}, set()
    for cell in CELLS:
        torch.manual_seed(0)
        model = SequenceModel(cell, INPUTS, HIDDEN, OUTPUTS, CellConfig()).train()
        brevitas = ms_per_batch(model)
        compiled = compiled_if_exact(model)
        qat = ms_per_batch(model, compiled) if compiled is not None else brevitas
        paths.add("torch.compile" if compiled is not None else "brevitas eager")
        floating = ms_per_batch(FloatModel(cell).train())
        cells[cell] = {"qat_ms_per_batch": round(qat, 1), "float_ms_per_batch": round(floating, 1),
                       "ratio": round(qat / floating, 2), "brevitas_ms_per_batch": round(brevitas, 1),
                       "speedup_vs_brevitas": round(brevitas / qat, 2)}
        print(f"{cell}: qat {qat:.1f} ms, float {floating:.1f} ms (x{qat / floating:.1f}), brevitas {brevitas:.1f} ms")
    mean = {k: round(statistics.mean(c[k] for c in cells.values()), 2) for k in next(iter(cells.values()))}
    print(json.dumps({**mean, "qat_path": " / ".join(sorted(paths)), "cells": cells}))


if __name__ == "__main__":
    sys.exit(main())
