"""The work a sweep worker does: rows for a batch of points (gatesim.pipeline.row). Runs in
worker processes (local pool or Dask), keeping traced cell templates between calls."""
from __future__ import annotations

import signal
from typing import Any

from gatesim.cells import CELLS, resolve_factory
from gatesim.pipeline import row
from gatesim.trace import OpGraph

# Load the built-in cell classes (and Brevitas) with this module, before any point is costed:
# an import in the middle of a sweep can swallow Ctrl-C (Brevitas' package import catches
# everything), so a sweep would run to its end instead of stopping.
for _cell in CELLS:
    resolve_factory(_cell)


def ignore_interrupts() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it saves what is done and stops
    the pool); a worker dying mid-task would only print noise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def evaluate(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Rows for a batch of (key, point); points sharing a cell and sizes share one graph."""
    graphs: dict[tuple, OpGraph] = {}
    return [(key, {"key": key, **row(point, graphs)}) for key, point in batch]
