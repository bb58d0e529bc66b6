"""gatesim: what a gated recurrent cell really costs, multiply-gated vs add-gated."""
from gatesim.cells import CELLS, CellConfig, Sequence, build_cell
from gatesim.errors import GatesimError

__all__ = ["CELLS", "CellConfig", "Sequence", "build_cell", "GatesimError"]
