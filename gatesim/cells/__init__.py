"""The cells gatesim knows, each with its facts, and the loader for a user's own
`module:pkg.mod:factory`.

A built-in cell is one module here (its torch.nn.Module) plus one `CellSpec` line below:
its states, the cell of the other gating it is compared with (its twin) and the design axes
that shape it. Nothing outside gatesim/cells/ names a cell: every module asks these
functions. Cell classes import Brevitas, so they are loaded on first build.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from gatesim.cells.config import VARIANT_AXES, CellConfig
from gatesim.errors import GatesimError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class CellSpec:
    """A built-in cell's facts."""

    name: str
    factory: str  # "module:Class", imported on first build
    gating: Literal["mul", "add"]  # multiply-gated (sigmoid x state) or add-gated (ReLU + subtraction)
    twin: str  # the cell of the other gating it is compared with
    variant_axes: tuple[str, ...] = ()  # CellConfig fields that shape only this cell (its variants)
    summary: str = ""

    @property
    def pair(self) -> str:
        """The comparison a cell belongs to, named by its multiply-gated member."""
        return self.name if self.gating == "mul" else self.twin


CELLS: dict[str, CellSpec] = {spec.name: spec for spec in (
    CellSpec("gru", "gatesim.cells.gru:GRUCell", "mul", "add_gru", summary="GRU (PyTorch convention)"),
    CellSpec("lstm", "gatesim.cells.lstm:LSTMCell", "mul", "add_lstm", summary="LSTM (PyTorch convention)"),
    CellSpec("add_gru", "gatesim.cells.add_gru:AddGRUCell", "add", "gru", VARIANT_AXES,
             summary="add-gated GRU: ReLU gates, inhibition by subtraction"),
    CellSpec("add_lstm", "gatesim.cells.add_lstm:AddLSTMCell", "add", "lstm", VARIANT_AXES,
             summary="add-gated LSTM: ReLU gates, inhibition by subtraction"),
)}
MODULE_PREFIX = "module:"
CELL_HELP = " | ".join(CELLS) + " | module:pkg.mod:factory (your own module)"

__all__ = ["CELLS", "CellSpec", "CellConfig", "Sequence", "VARIANT_AXES", "resolve_factory", "build_cell",
           "spec_of", "gating_of", "pair_of", "variant_axes_of", "n_states", "pairs", "check_name"]


def __getattr__(name: str) -> Any:
    """Cell classes and Sequence (torch, Brevitas) on first use."""
    if name == "Sequence":
        from gatesim.cells.sequence import Sequence

        return Sequence
    for spec in CELLS.values():
        module, cls = spec.factory.split(":")
        if cls == name:
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module 'gatesim.cells' has no attribute {name!r}")


def spec_of(cell: Any) -> CellSpec | None:
    """The built-in cell's spec; None for a user's module or callable."""
    return CELLS.get(cell) if isinstance(cell, str) else None


def gating_of(cell: Any) -> str:
    """"mul", "add", or "other" for a user's module."""
    spec = spec_of(cell)
    return spec.gating if spec else "other"


def pair_of(cell: Any) -> str:
    """The comparison the cell belongs to (a user's module is its own)."""
    spec = spec_of(cell)
    return spec.pair if spec else str(cell)


def variant_axes_of(cell: Any) -> tuple[str, ...]:
    """The variant axes that shape this cell; a user's factory may read any of them."""
    spec = spec_of(cell)
    return spec.variant_axes if spec else VARIANT_AXES


def pairs() -> list[tuple[str, str]]:
    """(add-gated, multiply-gated) for every built-in pair."""
    return [(s.name, s.twin) for s in CELLS.values() if s.gating == "add"]


def check_name(cell: str) -> str:
    """A built-in name or a module: spec, else a ValueError saying what is allowed."""
    if cell not in CELLS and not cell.startswith(MODULE_PREFIX):
        raise ValueError(f"{cell!r} is not allowed; allowed: {', '.join(CELLS)}, or module:pkg.mod:factory")
    return cell


def _load(spec: str, what: str) -> Callable[..., "nn.Module"]:
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise GatesimError(f"cell {what!r}: expected module:pkg.mod:factory")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GatesimError(f"cell {what!r}: cannot load {attr!r} from {mod_name!r} ({exc})") from exc
    if not callable(factory):
        raise GatesimError(f"cell {what!r}: {attr!r} is not callable")
    return factory


def resolve_factory(cell: str | Callable[..., "nn.Module"]) -> Callable[..., "nn.Module"]:
    """A callable (input_size, hidden_size, config) -> module for a name, spec or callable."""
    if callable(cell):
        return cell
    if cell in CELLS:
        return _load(CELLS[cell].factory, cell)
    if cell.startswith(MODULE_PREFIX):
        return _load(cell[len(MODULE_PREFIX):], cell)
    raise GatesimError(f"unknown cell {cell!r}; allowed: {', '.join(CELLS)}, or module:pkg.mod:factory")


def n_states(cell: str) -> int:
    """State tensors a built-in cell's step takes and returns (h; or h and c)."""
    return resolve_factory(cell).n_states


def build_cell(cell, input_size: int, hidden_size: int, config: CellConfig | None = None) -> "nn.Module":
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
    try:
        module = factory(**kwargs)
    except GatesimError:
        raise
    except Exception as exc:  # a user's factory: say which call failed, not a traceback
        raise GatesimError(f"{cell}: building it with input_size={input_size}, hidden_size={hidden_size} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not hasattr(module, name):  # torch's convention, so zero inputs and states can be built
            setattr(module, name, size)
    return module
