"""Predicted vs measured CPU time for the four cells, run as real PyTorch code.

eager  the cell's own graph as plain PyTorch (gatesim.validate.plain), stepped in a Python
       loop: one framework call per op.
fused  the same module compiled by torch.compile (TorchInductor's C++ backend): one call per
       step into generated, fused loops, with the matmuls in the vendor BLAS.
Timings are per step, the best of several repeats on one thread.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from gatesim.calibrate.cpu import best_seconds
from gatesim.cells import CellConfig, build_cell
from gatesim.costs import estimate
from gatesim.counting import template
from gatesim.validate.plain import plain_torch

CELLS = ("gru", "lstm", "add_gru", "add_lstm")
PAIRS = (("add_gru", "gru"), ("add_lstm", "lstm"))
HIDDEN = (8, 32, 128, 512)
MODES = ("eager", "fused")


def step_seconds(step: Callable[[], object], budget_s: float = 0.5, repeats: int = 7) -> float:
    """Best per-call time over `repeats` batches sized to about budget_s / repeats each,
    after a warm-up (a freshly compiled function runs slower for its first calls)."""
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.05 or calls < 5:
        step()
        calls += 1
    once = max((time.perf_counter() - start) / calls, 1e-7)
    inner = max(3, int(budget_s / repeats / once))
    return best_seconds(step, inner=inner, repeats=repeats, warmup=0)  # warmed up above


def measure(cell: str, input_size: int, hidden: int, batch: int, mode: str, seed: int = 0) -> float:
    """Seconds per step of the cell as plain PyTorch (eager) or torch.compile'd (fused)."""
    torch.manual_seed(seed)
    module = plain_torch(build_cell(cell, input_size, hidden, CellConfig.unquantized())).eval()
    fn = torch.compile(module, dynamic=False) if mode == "fused" else module
    x = torch.randn(batch, input_size)
    state = [torch.randn(batch, hidden) for _ in range(2 if "lstm" in cell else 1)]
    with torch.no_grad():
        return step_seconds(lambda: fn(x, *state))


def predict(cell: str, input_size: int, hidden: int, batch: int, mode: str, profile) -> float:
    graph = template(cell, input_size, hidden, CellConfig.unquantized(), batch).at(input_size, hidden, batch)
    return estimate(graph, "cpu", mode=mode, profile=profile).latency_s


def validate(profile, cells=CELLS, hidden_sizes=HIDDEN, modes=MODES, input_size: int = 32,
             batch: int = 64, *, progress: Callable[[], None] = lambda: None) -> dict:
    """{"rows": [...], "add_vs_mul": [...]} as `gatesim validate cpu --json` prints it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for mode in modes:
            for hidden in hidden_sizes:
                for cell in cells:
                    measured = measure(cell, input_size, hidden, batch, mode)
                    predicted = predict(cell, input_size, hidden, batch, mode, profile)
                    rows.append({"cell": cell, "hidden_size": hidden, "mode": mode, "batch": batch,
                                 "input_size": input_size, "predicted_s": predicted,
                                 "measured_s": measured, "ratio": predicted / measured})
                    progress()
    finally:
        torch.set_num_threads(threads)
    index = {(r["cell"], r["hidden_size"], r["mode"]): r for r in rows}
    pairs = []
    for add, mul in PAIRS:
        for hidden in hidden_sizes:
            for mode in modes:
                a, m = index.get((add, hidden, mode)), index.get((mul, hidden, mode))
                if a and m:
                    pairs.append({"pair": f"{add}/{mul}", "hidden_size": hidden, "mode": mode,
                                  "predicted_ratio": a["predicted_s"] / m["predicted_s"],
                                  "measured_ratio": a["measured_s"] / m["measured_s"]})
    return {"rows": rows, "add_vs_mul": pairs}
