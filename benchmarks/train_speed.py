"""Quantization-aware training speed (issue 18): milliseconds per training batch (forward,
backward, Adam step) of each built-in cell at H = 32, T = 100, batch 64, one thread.

brevitas  Brevitas' fake-quantized cell over the sequence plus its quantized readout
          (gatesim.train.model.SequenceModel) through Brevitas' own layers, eager
          (`gatesim train --qat brevitas`).
qat       the fast QAT path gatesim trains with (gatesim.train.fast.steady_scales): the same
          model, each forward pass computing its quantizers' scales and quantized weights once,
          its fake quantizations run by gatesim's C++ kernel (gatesim.train.kernel);
          its outputs are checked equal to Brevitas' bit for bit before it is timed.
float     the peer: the same cell unquantized, as plain PyTorch (gatesim.validate.plain) with a
          float readout, trained the same way.

Last line, a JSON object: {"qat_ms_per_batch", "float_ms_per_batch", "ratio",
"brevitas_ms_per_batch", "speedup_vs_brevitas", "qat_path", "cells"} (the first five are the
mean over the four cells; "cells" holds each cell's figures). Issue 18 asks ratio <= 3. The
three are timed in turn (round robin), so a slow moment of the machine falls on all alike.
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
from gatesim.train import kernel
from gatesim.train.fast import steady_scales
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


def trainer(model: nn.Module, forward=None):
    """One training batch (forward, backward, Adam step) of `model` through `forward`."""
    forward = model if forward is None else forward
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(BATCH, STEPS, INPUTS), torch.rand(BATCH, OUTPUTS)

    def step():
        loss = nn.functional.mse_loss(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def ms_per_batch(steps: dict) -> dict:
    """Median milliseconds per batch of each trainer, timed in turn (round robin), so that a
    slow moment of this shared machine falls on all of them alike."""
    for step in steps.values():  # warm-up
        step()
        step()
    times = {name: [] for name in steps}
    for _ in range(REPEATS):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


class Fast(nn.Module):
    """The model's forward pass under steady_scales (what `gatesim train` runs)."""

    def __init__(self, model: SequenceModel):
        super().__init__()
        self.model = model

    def forward(self, x):
        with steady_scales(self.model):
            return self.model(x)


def checked_fast(model: SequenceModel) -> Fast:
    fast = Fast(model)
    x = torch.rand(BATCH, STEPS, INPUTS)
    with torch.no_grad():
        if not torch.equal(fast(x), model(x)):
            raise SystemExit("the fast path's forward differs from Brevitas'")
    return fast


def main() -> None:
    torch.set_num_threads(1)
    cells = {}
    for cell in CELLS:
        torch.manual_seed(0)
        model = SequenceModel(cell, INPUTS, HIDDEN, OUTPUTS, CellConfig()).train()
        fast = checked_fast(model)
        ms = ms_per_batch({"brevitas": trainer(model), "qat": trainer(model, fast),
                           "float": trainer(FloatModel(cell).train())})
        brevitas, qat, floating = ms["brevitas"], ms["qat"], ms["float"]
        cells[cell] = {"qat_ms_per_batch": round(qat, 1), "float_ms_per_batch": round(floating, 1),
                       "ratio": round(qat / floating, 2), "brevitas_ms_per_batch": round(brevitas, 1),
                       "speedup_vs_brevitas": round(brevitas / qat, 2)}
        print(f"{cell}: qat {qat:.1f} ms, float {floating:.1f} ms (x{qat / floating:.1f}), brevitas {brevitas:.1f} ms")
    mean = {k: round(statistics.mean(c[k] for c in cells.values()), 2) for k in next(iter(cells.values()))}
    fake_quant = "gatesim's C++ kernel" if kernel._build() else "torch's kernel (gatesim's could not be built)"
    print(json.dumps({**mean, "qat_path": f"steady scales (gatesim.train.fast), {fake_quant}", "cells": cells}))


if __name__ == "__main__":
    sys.exit(main())
