"""Op counts of a cell per step and per sequence, from a cached cell template."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from gatesim.cells import CELLS, CellConfig, build_cell
from gatesim.errors import GatesimError
from gatesim.trace.template import CellTemplate

_TEMPLATES: dict[tuple, CellTemplate] = {}


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value <= 0:
            raise GatesimError(f"{name}={value!r}: must be a whole number >= 1")


def template(cell: str | Callable[..., nn.Module], input_size: int, hidden_size: int,
             config: CellConfig | None = None, batch: int = 1) -> CellTemplate:
    """The cached structure of `cell` under `config` (traced on first use)."""
    config = config or CellConfig()
    key = (cell, config)
    if key not in _TEMPLATES:
        factory = lambda i, h: build_cell(cell, i, h, config)  # noqa: E731
        probe = None
        if isinstance(cell, str) and cell in CELLS:  # same graph without quantizers, 3x cheaper
            probe = lambda i, h: build_cell(cell, i, h, CellConfig.unquantized())  # noqa: E731
        _TEMPLATES[key] = CellTemplate(factory, input_size, hidden_size, batch, config.acc_bits, probe)
    return _TEMPLATES[key]


def count(cell: str | Callable[..., nn.Module], input_size: int, hidden_size: int,
          steps: int = 1, batch: int = 1, config: CellConfig | None = None) -> dict[str, Any]:
    """Counts per step (at `batch`) and per sequence of `steps` steps, plus depths."""
    _check_sizes(input_size=input_size, hidden_size=hidden_size, steps=steps, batch=batch)
    graph = template(cell, input_size, hidden_size, config, batch).at(input_size, hidden_size, batch)
    per_step = graph.counts()
    return {
        "cell": cell if isinstance(cell, str) else getattr(cell, "__name__", repr(cell)),
        "input_size": input_size,
        "hidden_size": hidden_size,
        "steps": steps,
        "batch": batch,
        "per_step": per_step,
        "per_sequence": {k: v * steps for k, v in per_step.items()},
        "per_step_by_bits": graph.counts_by_bits(),
        "depth": graph.depth(),
    }
