"""Built-in cells and the loader for a user's own `module:pkg.mod:factory`."""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

from torch import nn

from gatesim.cells.add_gru import AddGRUCell
from gatesim.cells.add_lstm import AddLSTMCell
from gatesim.cells.config import CellConfig
from gatesim.cells.gru import GRUCell
from gatesim.cells.lstm import LSTMCell
from gatesim.cells.sequence import Sequence
from gatesim.errors import GatesimError

CELLS: dict[str, type[nn.Module]] = {
    "gru": GRUCell,
    "lstm": LSTMCell,
    "add_gru": AddGRUCell,
    "add_lstm": AddLSTMCell,
}
MODULE_PREFIX = "module:"

__all__ = ["CELLS", "CellConfig", "Sequence", "GRUCell", "LSTMCell", "AddGRUCell",
           "AddLSTMCell", "resolve_factory", "build_cell"]


def _load_user_factory(spec: str) -> Callable[..., nn.Module]:
    path = spec[len(MODULE_PREFIX):]
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise GatesimError(f"cell {spec!r}: expected module:pkg.mod:factory")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GatesimError(f"cell {spec!r}: cannot load {attr!r} from {mod_name!r} ({exc})") from exc
    if not callable(factory):
        raise GatesimError(f"cell {spec!r}: {attr!r} is not callable")
    return factory


def resolve_factory(cell: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A callable (input_size, hidden_size, config) -> module for a name, spec or callable."""
    if callable(cell):
        return cell
    if cell in CELLS:
        return CELLS[cell]
    if cell.startswith(MODULE_PREFIX):
        return _load_user_factory(cell)
    allowed = ", ".join(CELLS)
    raise GatesimError(f"unknown cell {cell!r}; allowed: {allowed}, or module:pkg.mod:factory")


def build_cell(cell, input_size: int, hidden_size: int, config: CellConfig | None = None) -> nn.Module:
    """Instantiate a built-in or user cell; a user factory gets `config` only if it takes it."""
    factory = resolve_factory(cell)
    config = config or CellConfig()
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {"input_size": input_size, "hidden_size": hidden_size}
    if "config" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs["config"] = config
    return factory(**kwargs)
