"""gatesim: what a gated recurrent cell really costs, multiply-gated vs add-gated.

Library entry points: `gatesim.trace(module)` -> OpGraph, `gatesim.count(cell, I, H)`
-> the same dict `gatesim count --json` prints, `gatesim.simulate(module, x, *states)`
-> a bit-accurate integer run (SimResult), `gatesim.estimate(module_or_graph, target=...)`
-> energy, latency and resources on cpu, fpga, ckks or tfhe (Estimate), and
`gatesim.sweep(config)` -> a design-space sweep's results table and report (SweepResult).

Names are imported on first use, so `import gatesim` (and `gatesim --help`) stays fast.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# public name -> the module that defines it
_EXPORTS = {
    "CELLS": "gatesim.cells", "CellConfig": "gatesim.cells", "Sequence": "gatesim.cells",
    "build_cell": "gatesim.cells", "trace": "gatesim.trace", "OpGraph": "gatesim.trace",
    "count": "gatesim.pipeline", "simulate": "gatesim.simulate", "SimResult": "gatesim.simulate",
    "estimate": "gatesim.costs", "Estimate": "gatesim.costs", "sweep": "gatesim.api",
    "SweepResult": "gatesim.sweep.run", "GatesimError": "gatesim.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gatesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Loading a subpackage binds it on its parent; `gatesim.trace`, `gatesim.simulate` and
    `gatesim.sweep` stay the public functions of those names (the subpackages are still
    importable as gatesim.trace.*, ...)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
