"""gatesim: what a gated recurrent cell really costs, multiply-gated vs add-gated.

Library entry points: `gatesim.trace(module)` -> OpGraph, `gatesim.count(cell, I, H)`
-> the same dict `gatesim count --json` prints, and `gatesim.simulate(module, x, *states)`
-> a bit-accurate integer run (SimResult).
"""
from gatesim.cells import CELLS, CellConfig, Sequence, build_cell
from gatesim.counting import count
from gatesim.errors import GatesimError
from gatesim.simulate import SimResult, simulate
from gatesim.trace import OpGraph, trace

__all__ = ["CELLS", "CellConfig", "Sequence", "build_cell", "count", "trace", "OpGraph",
           "simulate", "SimResult", "GatesimError"]
