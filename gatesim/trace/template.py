"""A cell structure traced once, counted at any (batch, input_size, hidden_size).

The op graph's structure does not depend on the sizes; only the shapes on its edges do, and
each shape entry of a recurrent cell is affine in (B, I, H): I, H, 3H, I + H, ... So three
tiny probe builds (the base, one more I, one more H; one more B needs no build) fix every
entry exactly, the cell built at the requested size checks the fit, and any later size is a
re-evaluation of those affine forms plus one pass of the counting rules: no retrace.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gatesim.errors import GatesimError
from gatesim.trace import default_inputs, prepare
from gatesim.trace.adapters import adapt
from gatesim.trace.lower import lower
from gatesim.trace.opgraph import OpGraph
from gatesim.trace.tracer import record_shapes

PROBE = (2, 3, 5)  # (batch, input_size, hidden_size) of the base probe: small and distinct
CANONICAL = (32, 64)  # (input_size, hidden_size) of the instance whose quantizers give the widths


def _flatten(structure: Any, out: list[int]) -> Any:
    """Replace each int in a shape structure by its index in `out` (a skeleton to refill)."""
    if isinstance(structure, bool) or structure is None:
        return structure
    if isinstance(structure, int):
        out.append(structure)
        return _Slot(len(out) - 1)
    if isinstance(structure, tuple):
        return tuple(_flatten(s, out) for s in structure)
    return structure


class _Slot(int):
    """Position of one size entry in the flat vector."""


def _fill(skeleton: Any, values: list[int]) -> Any:
    if isinstance(skeleton, _Slot):
        return values[skeleton]
    if isinstance(skeleton, tuple):
        return tuple(_fill(s, values) for s in skeleton)
    return skeleton


def _flat_shapes(shapes: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    flat: list[int] = []
    skeleton = {name: _flatten(s, flat) for name, s in shapes.items()}
    return skeleton, np.asarray(flat, dtype=np.int64)


def _adapted(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The factory, with Brevitas' own recurrent layers adapted and build errors explained."""

    def build(i: int, h: int) -> nn.Module:
        try:
            return adapt(factory(i, h))
        except GatesimError:
            raise
        except Exception as exc:
            raise GatesimError(f"building the cell at input_size={i}, hidden_size={h} failed: "
                               f"{type(exc).__name__}: {exc}") from exc

    return build


class CellTemplate:
    """Build once per (factory, config); `at(...)` gives the op graph at any size."""

    def __init__(self, factory: Callable[..., nn.Module], input_size: int, hidden_size: int,
                 batch: int = 1, acc_bits: int | None = None,
                 probe_factory: Callable[..., nn.Module] | None = None):
        """`probe_factory` builds cheaper instances with the same graph and shapes (for the
        built-in cells: unquantized ones, as their quantizers live inside leaf layers)."""
        self.acc_bits = acc_bits
        factory = _adapted(factory)
        probe_factory = _adapted(probe_factory) if probe_factory else factory
        # The instance whose quantizers set the widths. Some settings follow its values (a
        # fixed-point weight scale from max |w|), so it is built at one size from one seed:
        # the graph at any size is then the same whichever size was asked for first.
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.module, self.gm = prepare(factory(*CANONICAL))
        self.memo: dict = {}
        b0, i0, h0 = PROBE
        base = probe_factory(i0, h0)
        probes = [
            self._run(base, b0),
            self._run(base, b0 + 1),
            self._run(probe_factory(i0 + 1, h0), b0),
            self._run(probe_factory(i0, h0 + 1), b0),
        ]
        self._skeleton, d0 = _flat_shapes(probes[0])
        deltas = []
        for shapes in probes[1:]:
            skeleton, d = _flat_shapes(shapes)
            if skeleton != self._skeleton:
                raise GatesimError("the cell's graph structure changes with its sizes; "
                                   "gatesim needs one structure for all sizes")
            deltas.append(d - d0)
        self._coef = np.stack(deltas)  # rows: change per unit of B, I, H
        self._base = d0 - self._coef.T @ np.array([b0, i0, h0])
        check = probe_factory(input_size, hidden_size)
        measured = record_shapes(self.gm, default_inputs(check, batch), root=check, eval_mode=False)
        if measured != self._shapes(batch, input_size, hidden_size):
            raise GatesimError(
                f"the cell's shapes at input_size={input_size}, hidden_size={hidden_size} are not "
                "affine in the sizes (e.g. H // 2); count it with gatesim.trace(module) instead")

    def _run(self, probe: nn.Module, batch: int) -> dict[str, Any]:
        """Shapes of the traced graph run on a probe instance (no retrace)."""
        return record_shapes(self.gm, default_inputs(probe, batch), root=probe, eval_mode=False)

    def _shapes(self, batch: int, input_size: int, hidden_size: int) -> dict[str, Any]:
        flat = (self._base + self._coef.T @ np.array([batch, input_size, hidden_size])).tolist()
        return {name: _fill(s, flat) for name, s in self._skeleton.items()}

    def at(self, input_size: int, hidden_size: int, batch: int = 1) -> OpGraph:
        """The op graph of one step at these sizes, from the cached structure."""
        shapes = self._shapes(batch, input_size, hidden_size)
        graph = lower(self.gm, shapes, self.acc_bits, self.memo, values_known=False)
        return OpGraph(graph, {"batch": batch, "input_size": input_size, "hidden_size": hidden_size})
