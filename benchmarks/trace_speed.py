"""Trace + count speed vs torch's FlopCounterMode on the same float cell.

Prints one line per cell, then (last line) a JSON object:
  trace_ms        tracing + counting a new cell structure (median over the four cells)
  recount_ms      counting a new (I, H) for a structure already traced (median)
  flopcounter_ms  FlopCounterMode on the same float cell and size (median)
Targets (issue 2): trace_ms <= 100, recount_ms <= 5.
"""
from __future__ import annotations

import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import gatesim.pipeline as gc
from gatesim.cells import CELLS, CellConfig, build_cell

I, H, BATCH = 32, 128, 1
RECOUNT_SIZES = [(i, h) for i in (8, 16, 64) for h in (32, 64, 256, 512)]


def ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def flop_counter_ms(cell: str) -> float:
    module = build_cell(cell, I, H, CellConfig.unquantized())
    inputs = module.example_inputs(BATCH)

    def run():
        with FlopCounterMode(display=False):
            module(*inputs)

    run()  # warm
    return statistics.median(ms(run) for _ in range(20))


def main() -> None:
    torch.set_num_threads(1)
    build_cell("gru", 2, 2)  # Brevitas' one-off lazy set-up is import cost, not trace cost
    trace, recount, peer = [], [], []
    for cell in CELLS:
        config = CellConfig()
        trace.append(ms(lambda: gc.count(cell, I, H, config=config)))
        recount.append(statistics.median(ms(lambda: gc.count(cell, i, h, config=config))
                                         for i, h in RECOUNT_SIZES))
        peer.append(flop_counter_ms(cell))
        print(f"{cell:9s} trace+count {trace[-1]:7.1f} ms  recount {recount[-1]:5.2f} ms  "
              f"FlopCounterMode {peer[-1]:5.2f} ms  (trace/flopcounter {trace[-1] / peer[-1]:.1f}x, "
              f"recount/flopcounter {recount[-1] / peer[-1]:.2f}x)")
    result = {
        "trace_ms": round(statistics.median(trace), 2),
        "recount_ms": round(statistics.median(recount), 3),
        "flopcounter_ms": round(statistics.median(peer), 3),
    }
    result["trace_vs_flopcounter"] = round(result["trace_ms"] / result["flopcounter_ms"], 2)
    result["recount_vs_flopcounter"] = round(result["recount_ms"] / result["flopcounter_ms"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
