"""Bit-accurate integer simulation of a traced cell over a whole sequence.

`simulate(module, x, *states)` runs the module's op graph on whole numbers for x of shape
(B, T, I) and reports the integer outputs, observed ranges and widths per node, and
overflows when narrower accumulator or state registers are requested.
"""
from gatesim.simulate.api import SimResult, simulate
from gatesim.simulate.engine import Simulator
from gatesim.simulate.rules import SimOptions

__all__ = ["simulate", "SimResult", "SimOptions", "Simulator"]
