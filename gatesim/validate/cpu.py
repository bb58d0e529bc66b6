"""Predicted vs measured CPU time for the four cells, run as the executions users really pick.

eager    the cell's own graph as plain PyTorch (gatesim.validate.plain), stepped in a Python
         loop: one framework call per op.
fused    the same module compiled by torch.compile (TorchInductor's C++ backend): one call per
         step into generated, fused loops, with the matmuls in the vendor BLAS.
library  torch's nn.GRU / nn.LSTM over a whole sequence of STEPS steps (float32; the
         multiply-gated cells only: the add-gated ones have no such layer).
int8     ONNX Runtime on the cell exported from Brevitas at 8-bit widths (QCDQ), one session
         run per step.
library-int8  torch's nn.GRU / nn.LSTM after PyTorch dynamic quantization (int8 weights), over
         a whole sequence of STEPS steps (the multiply-gated cells only).
Timings are seconds per step on one thread, the median of the fastest third of samples taken
in three rounds over every row of the run (gatesim.calibrate.timing.undisturbed: the
machine's own speed, read as calibration reads it), so that a stretch of seconds in which the
virtual machine runs slow spoils one round of a row, not the row; within a round the cells of one
execution and size are timed in turn, so that the add/mul ratios compare runs made at the same
speed of the machine. Predictions are computed exactly as `gatesim estimate --target cpu
--mode MODE` computes them.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gatesim.calibrate.timing import paired, undisturbed
from gatesim.cells import CELLS, CellConfig, build_cell, n_states, pairs
from gatesim.calibrate.cpu import library_layer
from gatesim.costs.cpu import LIBRARY_MODES, MODES, torch_layer_name
from gatesim.errors import GatesimError
from gatesim.pipeline import estimate
from gatesim.validate.plain import plain_torch

HIDDEN = (8, 32, 128, 512)
BATCHES = (1, 64)
STEPS = 100  # sequence length of the library modes' whole-sequence calls
INT8 = CellConfig(weight_bits=8, act_bits=8)


ROUNDS = 3  # rounds over every row of a run, each row's median drawing on all of them
SAMPLES = 6  # samples per function and round: short ones, each more likely within one speed
BUDGET_S = 0.5  # seconds of timed calls per function, all rounds together
TICKS_PER_RUN = 1 + ROUNDS  # progress: each cell's sizing, then each of its rounds


def calls_per_sample(step: Callable[[], object], budget_s: float = BUDGET_S, repeats: int = ROUNDS * SAMPLES) -> int:
    """Calls per timed sample so that `repeats` samples take about budget_s, after a warm-up:
    the first call (compilation, caches) is not counted, and a freshly compiled function runs
    slower for its next few calls."""
    step()
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.05 or calls < 3:
        step()
        calls += 1
    once = max((time.perf_counter() - start) / calls, 1e-7)
    return max(1, int(budget_s / repeats / once))


def spread_seconds(groups: list[list[Callable[[], object]]], budget_s: float = BUDGET_S, rounds: int = ROUNDS,
                   samples: int = SAMPLES, *, done: Callable[[], None] = lambda: None) -> list[list[float]]:
    """Per-call seconds of each step function of each group, the median of the fastest third
        of its samples (`undisturbed`). The groups are gone over `rounds` times, `samples` samples
    of every function each time: a virtual machine's speed swings for seconds at a time, and
    this way a slow stretch falls on one round of a row, which the fastest third leaves out.
    Within a round the functions of a group are timed in turn (round robin), so that a swing
    falls on every cell of a comparison alike and the add/mul ratios compare runs made at the
    same speed. `done` is called after each group's sizing and after each of its rounds."""
    inners = []
    for group in groups:
        inners.append([calls_per_sample(step, budget_s, rounds * samples) for step in group])
        done()
    taken: list[list[list[float]]] = [[[] for _ in group] for group in groups]
    for _ in range(rounds):
        for group, inner, out in zip(groups, inners, taken):
            for mine, new in zip(out, paired(group, inner, samples, warmup=2)):  # warm caches again
                mine.extend(new)
            done()
    return [[undisturbed(mine) for mine in out] for out in taken]


def config_of(mode: str) -> CellConfig:
    return INT8 if mode in ("int8", "library-int8") else CellConfig.unquantized()


def applies(cell: str, mode: str) -> bool:
    return mode not in LIBRARY_MODES or torch_layer_name(cell) is not None


def runner(cell: str, input_size: int, hidden: int, batch: int, mode: str,
           seed: int = 0) -> tuple[Callable[[], object], int]:
    """One call of the cell run as `mode` executes it (to be called without autograd), and the
    steps one call runs."""
    torch.manual_seed(seed)
    if mode in LIBRARY_MODES:
        layer = library_layer(torch_layer_name(cell), input_size, hidden, int8=mode == "library-int8")
        x = torch.randn(STEPS, batch, input_size)
        return (lambda: layer(x)), STEPS
    if mode == "int8":
        return _int8_runner(cell, input_size, hidden, batch), 1
    module = plain_torch(build_cell(cell, input_size, hidden, CellConfig.unquantized())).eval()
    fn = torch.compile(module, dynamic=False) if mode == "fused" else module
    x = torch.randn(batch, input_size)
    state = [torch.randn(batch, hidden) for _ in range(n_states(cell))]
    return (lambda: fn(x, *state)), 1


def _int8_runner(cell: str, input_size: int, hidden: int, batch: int) -> Callable[[], object]:
    import onnxruntime as ort

    from gatesim.costs.ort_graph import export

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cell.onnx"
        module = export(cell, INT8, input_size, hidden, path, batch=batch)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    span = INT8.input_range
    values = [rng.uniform(-span, span, (batch, input_size)).astype(np.float32),
              *(np.zeros((batch, hidden), np.float32) for _ in module.initial_state(1))]
    feeds = {i.name: v for i, v in zip(session.get_inputs(), values)}
    return lambda: session.run(None, feeds)


def predict(cell: str, input_size: int, hidden: int, batch: int, mode: str, profile) -> float:
    """Seconds per step exactly as `gatesim estimate --target cpu --mode MODE` computes them
    (library modes: a whole sequence of STEPS steps, per step)."""
    steps = STEPS if mode in LIBRARY_MODES else 1
    _, result = estimate(cell, input_size, hidden, "cpu", batch, config_of(mode), mode=mode, profile=profile,
                         steps=steps)
    return result.latency_s / steps


def validate(profile, cells=tuple(CELLS), hidden_sizes=HIDDEN, modes=MODES, input_size: int = 32,
             batch=BATCHES, *, progress: Callable[[], None] = lambda: None) -> dict:
    """{"rows": [...], "add_vs_mul": [...], "fastest": [...]} as `gatesim validate cpu --json`
    prints it."""
    batches = (batch,) if isinstance(batch, int) else tuple(batch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    keys = [(mode, b, hidden, [cell for cell in cells if applies(cell, mode)])
            for mode in modes for b in batches for hidden in hidden_sizes]
    keys = [key for key in keys if key[3]]
    skipped = len(modes) * len(batches) * len(hidden_sizes) - len(keys)
    for _ in range(skipped * len(cells) * TICKS_PER_RUN):  # executions these cells lack: nothing to run
        progress()
    try:
        runs = [[runner(cell, input_size, hidden, b, mode) for cell in group] for mode, b, hidden, group in keys]
        with torch.no_grad():
            seconds = spread_seconds([[run for run, _ in group] for group in runs],
                                     done=lambda: [progress() for _ in cells])
    finally:
        torch.set_num_threads(threads)
    rows = []
    for (mode, b, hidden, group), group_runs, group_seconds in zip(keys, runs, seconds):
        for cell, (_, steps), per_call in zip(group, group_runs, group_seconds):
            predicted, measured = predict(cell, input_size, hidden, b, mode, profile), per_call / steps
            rows.append({"cell": cell, "hidden_size": hidden, "mode": mode, "batch": b,
                         "input_size": input_size, "predicted_s": predicted,
                         "measured_s": measured, "ratio": predicted / measured})
    if not rows:  # every asked-for cell lacks every asked-for execution: say so, not "all in band"
        raise GatesimError(f"validate cpu: nothing to run: mode {', '.join(modes)} has no execution for "
                           f"{', '.join(cells)} (torch's whole-sequence layers exist for the multiply-gated "
                           "cells only); add --cell gru or lstm, or another --mode")
    return {"rows": rows, **comparisons(rows)}


def comparisons(rows: list[dict]) -> dict:
    """add_vs_mul: each add-gated cell over its twin in the same execution; fastest: the
    fastest execution of each side (predicted and measured picked apart), named."""
    index = {(r["cell"], r["hidden_size"], r["batch"], r["mode"]): r for r in rows}
    ratios, fastest = [], []
    keys = sorted({(r["hidden_size"], r["batch"]) for r in rows})
    for add, mul in pairs():
        for hidden, b in keys:
            for mode in MODES:
                a, m = index.get((add, hidden, b, mode)), index.get((mul, hidden, b, mode))
                if a and m:
                    ratios.append({"pair": f"{add}/{mul}", "hidden_size": hidden, "batch": b, "mode": mode,
                                   "predicted_ratio": a["predicted_s"] / m["predicted_s"],
                                   "measured_ratio": a["measured_s"] / m["measured_s"]})
            sides = [[r for r in rows if r["cell"] == c and r["hidden_size"] == hidden and r["batch"] == b]
                     for c in (add, mul)]
            if all(sides):
                pa, pm = (min(side, key=lambda r: r["predicted_s"]) for side in sides)
                ma, mm = (min(side, key=lambda r: r["measured_s"]) for side in sides)
                fastest.append({"pair": f"{add}/{mul}", "hidden_size": hidden, "batch": b,
                                "predicted_ratio": pa["predicted_s"] / pm["predicted_s"],
                                "predicted_modes": f"{pa['mode']}/{pm['mode']}",
                                "measured_ratio": ma["measured_s"] / mm["measured_s"],
                                "measured_modes": f"{ma['mode']}/{mm['mode']}"})
    return {"add_vs_mul": ratios, "fastest": fastest}


# ----------------------------------------------------------------------------- the CLI's table


def show(r: dict) -> None:
    """The result as `gatesim validate cpu` prints it without --json."""
    from gatesim.terminal import terminal
    from rich.table import Table

    console = terminal()
    rows = Table(title="CPU model: predicted vs measured seconds per step")
    for col in ("cell", "mode", "H", "B", "predicted us", "measured us", "ratio"):
        rows.add_column(col, justify="left" if col in ("cell", "mode") else "right")
    for row in r["rows"]:
        ok = 0.67 <= row["ratio"] <= 1.5
        rows.add_row(row["cell"], row["mode"], str(row["hidden_size"]), str(row["batch"]),
                     f"{row['predicted_s'] * 1e6:,.1f}", f"{row['measured_s'] * 1e6:,.1f}",
                     f"{row['ratio']:.2f}" + ("" if ok else " !"))
    console.print(rows)
    pairs = Table(title="add-gated / multiply-gated time, same execution")
    for col in ("pair", "mode", "H", "B", "predicted", "measured", "off by"):
        pairs.add_column(col, justify="left" if col in ("pair", "mode") else "right")
    for p in r["add_vs_mul"]:
        off = p["predicted_ratio"] / p["measured_ratio"] - 1
        pairs.add_row(p["pair"], p["mode"], str(p["hidden_size"]), str(p["batch"]), f"{p['predicted_ratio']:.2f}",
                      f"{p['measured_ratio']:.2f}", f"{off:+.0%}" + ("" if abs(off) <= 0.2 else " !"))
    console.print(pairs)
    fastest = Table(title="fastest add-gated execution / fastest multiply-gated execution")
    for col in ("pair", "H", "B", "predicted", "picked", "measured", "picked "):
        fastest.add_column(col, justify="left" if col in ("pair", "picked", "picked ") else "right")
    for p in r.get("fastest", []):
        fastest.add_row(p["pair"], str(p["hidden_size"]), str(p["batch"]), f"{p['predicted_ratio']:.2f}",
                        p["predicted_modes"], f"{p['measured_ratio']:.2f}", p["measured_modes"])
    console.print(fastest)
    within = all(0.67 <= row["ratio"] <= 1.5 for row in r["rows"])
    close = all(abs(p["predicted_ratio"] / p["measured_ratio"] - 1) <= 0.2 for p in r["add_vs_mul"])
    console.print(f"every ratio in 0.67..1.5: {'yes' if within else 'NO'}; every add/mul ratio within 20%: "
                  f"{'yes' if close else 'NO'}")
