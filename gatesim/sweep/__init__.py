"""Design-space sweeps: configs, points, cached and resumable execution, results tables.
(`gatesim.sweep(config)`, which also writes the report, is `gatesim.api.sweep`.)"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"SweepConfig": "gatesim.sweep.config", "load_sweep": "gatesim.sweep.config",
            "parse": "gatesim.sweep.config", "SweepResult": "gatesim.sweep.run",
            "Interrupted": "gatesim.sweep.run", "run_sweep": "gatesim.sweep.run"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gatesim.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
