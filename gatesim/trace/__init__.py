"""Trace a cell into an op graph: fx trace -> shapes -> counting rules -> networkx."""
from __future__ import annotations

import torch
from torch import nn

from gatesim.trace.adapters import adapt
from gatesim.trace.lower import lower
from gatesim.trace.opgraph import OpGraph
from gatesim.trace.tracer import record_shapes, symbolic_trace

__all__ = ["trace", "OpGraph"]


def default_inputs(module: nn.Module, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """A cell's example inputs: its own `example_inputs(batch)` when it has one."""
    if hasattr(module, "example_inputs"):
        return tuple(module.example_inputs(batch))
    from gatesim.errors import GatesimError
    raise GatesimError(
        f"{type(module).__name__}: pass example inputs, or give the module an "
        "example_inputs(batch) method returning (x, *states)")


def trace(module: nn.Module, *inputs: torch.Tensor, acc_bits: int | None = None,
          batch: int = 1) -> OpGraph:
    """Op graph of one forward call of `module` on `inputs` (default: its example inputs)."""
    module = adapt(module)
    inputs = inputs or default_inputs(module, batch)
    gm = symbolic_trace(module)
    return OpGraph(lower(gm, record_shapes(gm, inputs), acc_bits), {"batch": inputs[0].shape[0]})
