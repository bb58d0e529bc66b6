"""Integer simulation speed vs Brevitas' fake-quant forward of the same cell, one thread.

lstm, I=32, H=128, B=64, T=100, 8-bit weights and activations. All three runs see the same
inputs in the same process; each figure is the best of several repeats (the machine is
shared and noisy, so the best run is the least disturbed one).

Prints one line per peer, then (last line) a JSON object:
  sim_cell_steps_per_s        gatesim's integer simulator (trace and compile excluded)
  brevitas_cell_steps_per_s   the same Brevitas module stepped over the sequence
  speedup_vs_brevitas         ratio of the two (target, issue 3: >= 10)
  float_lstm_cell_steps_per_s torch.nn.LSTM (float, no quantization) for scale
  brevitas_quantlstm_cell_steps_per_s  brevitas.nn.QuantLSTM with its defaults, for scale
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy and torch load their thread pools

import json
import time

import brevitas.nn as qnn
import numpy as np
import torch

from gatesim.cells import CellConfig, Sequence, build_cell
from gatesim.simulate import SimOptions, Simulator

I, H, B, T = 32, 128, 64, 100
REPEATS = 7


def best_seconds(fn, repeats: int = REPEATS) -> float:
    fn()  # warm
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cell = build_cell("lstm", I, H, CellConfig(weight_bits=8, act_bits=8)).eval()
    x = np.random.default_rng(0).uniform(-1, 1, (B, T, I)).astype(np.float32)
    states = tuple(s.numpy() for s in cell.initial_state(B))

    sim = Simulator(cell, (torch.zeros(B, I), *cell.initial_state(B)), SimOptions())
    ints = sim.quantize_inputs(x, states, strict=False)
    sim_s = best_seconds(lambda: sim.run(ints[0], ints[1:]))

    seq = Sequence(cell)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        brevitas_s = best_seconds(lambda: seq(xt, cell.initial_state(B)), repeats=3)
        lstm = torch.nn.LSTM(I, H, batch_first=True).eval()
        float_s = best_seconds(lambda: lstm(xt))
        quant_lstm = qnn.QuantLSTM(I, H, batch_first=True).eval()
        quant_lstm_s = best_seconds(lambda: quant_lstm(xt), repeats=3)

    steps = B * T
    figures = {
        "sim_cell_steps_per_s": round(steps / sim_s, 1),
        "brevitas_cell_steps_per_s": round(steps / brevitas_s, 1),
        "speedup_vs_brevitas": round(brevitas_s / sim_s, 2),
        "float_lstm_cell_steps_per_s": round(steps / float_s, 1),
        "brevitas_quantlstm_cell_steps_per_s": round(steps / quant_lstm_s, 1),
    }
    for name, seconds in (("gatesim integer simulator", sim_s), ("Brevitas, same cell", brevitas_s),
                          ("torch.nn.LSTM float", float_s), ("brevitas.nn.QuantLSTM", quant_lstm_s)):
        print(f"{name:28s} {steps / seconds:12,.0f} cell-steps/s  ({seconds * 1e3:.1f} ms)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
