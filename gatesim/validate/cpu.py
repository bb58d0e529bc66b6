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
from gatesim.cells import CELLS, CellConfig, build_cell, n_states, pairs
from gatesim.pipeline import estimate
from gatesim.validate.plain import plain_torch

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
    state = [torch.randn(batch, hidden) for _ in range(n_states(cell))]
    with torch.no_grad():
        return step_seconds(lambda: fn(x, *state))


def predict(cell: str, input_size: int, hidden: int, batch: int, mode: str, profile) -> float:
    """Exactly as `gatesim estimate --target cpu --float` computes it."""
    _, result = estimate(cell, input_size, hidden, "cpu", batch, CellConfig.unquantized(), mode=mode, profile=profile)
    return result.latency_s


def validate(profile, cells=tuple(CELLS), hidden_sizes=HIDDEN, modes=MODES, input_size: int = 32,
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
    ratios = []
    for add, mul in pairs():
        for hidden in hidden_sizes:
            for mode in modes:
                a, m = index.get((add, hidden, mode)), index.get((mul, hidden, mode))
                if a and m:
                    ratios.append({"pair": f"{add}/{mul}", "hidden_size": hidden, "mode": mode,
                                  "predicted_ratio": a["predicted_s"] / m["predicted_s"],
                                  "measured_ratio": a["measured_s"] / m["measured_s"]})
    return {"rows": rows, "add_vs_mul": ratios}


# ----------------------------------------------------------------------------- the CLI's table


def show(r: dict) -> None:
    """The result as `gatesim validate cpu` prints it without --json."""
    from gatesim.terminal import terminal
    from rich.table import Table

    console = terminal()
    rows = Table(title="CPU model: predicted vs measured seconds per step")
    for col in ("cell", "H", "mode", "predicted us", "measured us", "ratio"):
        rows.add_column(col, justify="left" if col in ("cell", "mode") else "right")
    for row in r["rows"]:
        ok = 0.67 <= row["ratio"] <= 1.5
        rows.add_row(row["cell"], str(row["hidden_size"]), row["mode"], f"{row['predicted_s'] * 1e6:,.1f}",
                     f"{row['measured_s'] * 1e6:,.1f}", f"{row['ratio']:.2f}" + ("" if ok else " !"))
    console.print(rows)
    pairs = Table(title="add-gated / multiply-gated time")
    for col in ("pair", "H", "mode", "predicted", "measured", "off by"):
        pairs.add_column(col, justify="left" if col in ("pair", "mode") else "right")
    for p in r["add_vs_mul"]:
        off = p["predicted_ratio"] / p["measured_ratio"] - 1
        pairs.add_row(p["pair"], str(p["hidden_size"]), p["mode"], f"{p['predicted_ratio']:.2f}",
                      f"{p['measured_ratio']:.2f}", f"{off:+.0%}" + ("" if abs(off) <= 0.2 else " !"))
    console.print(pairs)
    within = all(0.67 <= row["ratio"] <= 1.5 for row in r["rows"])
    close = all(abs(p["predicted_ratio"] / p["measured_ratio"] - 1) <= 0.2 for p in r["add_vs_mul"])
    console.print(f"every ratio in 0.67..1.5: {'yes' if within else 'NO'}; every add/mul ratio within 20%: "
                  f"{'yes' if close else 'NO'}")
