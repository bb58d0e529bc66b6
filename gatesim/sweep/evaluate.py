"""The work a sweep worker does: rows for a batch of points (gatesim.pipeline.row). Runs in
worker processes (local pool or Dask), keeping traced cell templates between calls."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from gatesim.cells import CELLS, resolve_factory
from gatesim.files import running
from gatesim.pipeline import row
from gatesim.trace import OpGraph

# Load the built-in cell classes (and Brevitas) with this module, before any point is costed:
# an import in the middle of a sweep can swallow Ctrl-C (Brevitas' package import catches
# everything), so a sweep would run to its end instead of stopping.
for _cell in CELLS:
    resolve_factory(_cell)


def ignore_interrupts(parent: int | None = None) -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it saves what is done and stops
    the pool); a worker dying mid-task would only print noise. A worker whose sweep process
    `parent` has died (SIGKILL skips every cleanup) exits within a second instead of waiting
    on a pipe nobody will write to."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="gatesim-parent-watch").start()


def _exit_with(parent: int) -> None:
    while running(parent):
        time.sleep(0.5)
    os._exit(1)


def evaluate(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Rows for a batch of (key, point); points sharing a cell and sizes share one graph."""
    graphs: dict[tuple, OpGraph] = {}
    return [(key, {"key": key, **row(point, graphs)}) for key, point in batch]
