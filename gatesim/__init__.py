"""gatesim: what a gated recurrent cell really costs, multiply-gated vs add-gated.

Library entry points: `gatesim.trace(module)` -> OpGraph and `gatesim.count(cell, I, H)`
-> the same dict `gatesim count --json` prints.
"""
from gatesim.cells import CELLS, CellConfig, Sequence, build_cell
from gatesim.counting import count
from gatesim.errors import GatesimError
from gatesim.trace import OpGraph, trace

__all__ = ["CELLS", "CellConfig", "Sequence", "build_cell", "count", "trace", "OpGraph",
           "GatesimError"]
