"""gatesim: what a gated recurrent cell really costs, multiply-gated vs add-gated.

Library entry points: `gatesim.trace(module)` -> OpGraph, `gatesim.count(cell, I, H)`
-> the same dict `gatesim count --json` prints, `gatesim.simulate(module, x, *states)`
-> a bit-accurate integer run (SimResult), `gatesim.estimate(module_or_graph, target=...)`
-> energy, latency and resources on cpu, fpga, ckks or tfhe (Estimate), and
`gatesim.sweep(config)` -> a design-space sweep's results table and report (SweepResult).
"""
from gatesim.cells import CELLS, CellConfig, Sequence, build_cell
from gatesim.costs import Estimate, estimate
from gatesim.counting import count
from gatesim.errors import GatesimError
from gatesim.simulate import SimResult, simulate
from gatesim.sweep import SweepResult, sweep  # the function; the subpackage stays gatesim.sweep.*
from gatesim.trace import OpGraph, trace

__all__ = ["CELLS", "CellConfig", "Sequence", "build_cell", "count", "trace", "OpGraph",
           "simulate", "SimResult", "estimate", "Estimate", "sweep", "SweepResult", "GatesimError"]
