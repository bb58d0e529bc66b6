"""Trace a cell into an op graph: adapt -> fx trace -> shapes -> counting rules -> networkx."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from gatesim.errors import GatesimError
from gatesim.trace.adapters import adapt
from gatesim.trace.lower import Lowering
from gatesim.trace.opgraph import OpGraph
from gatesim.trace.tracer import eval_mode, record_shapes, symbolic_trace

__all__ = ["trace", "trace_module", "prepare", "OpGraph", "Traced"]


def default_inputs(module: nn.Module, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """A cell's example inputs: its own `example_inputs(batch)` when it has one."""
    if hasattr(module, "example_inputs"):
        return tuple(module.example_inputs(batch))
    raise GatesimError(
        f"{type(module).__name__}: pass example inputs, or give the module an "
        "example_inputs(batch) method returning (x, *states)")


def prepare(module: nn.Module) -> tuple[nn.Module, fx.GraphModule]:
    """The module with Brevitas' recurrent layers adapted, and its fx graph (Brevitas layers
    are leaves). Every path from a module to an op graph starts here."""
    module = adapt(module)
    return module, symbolic_trace(module)


@dataclass
class Traced:
    module: nn.Module  # as adapted
    gm: fx.GraphModule
    graph: OpGraph
    env: dict[str, Any]  # fx node -> its static value (types, sizes), for the simulator


def trace_module(module: nn.Module, inputs: tuple[torch.Tensor, ...] = (), acc_bits: int | None = None,
                 batch: int = 1) -> Traced:
    """Adapt, trace, run once for the shapes (in eval mode) and lower to an op graph."""
    module, gm = prepare(module)
    inputs = inputs or default_inputs(module, batch)
    with eval_mode(module), torch.no_grad():
        lowering = Lowering(gm, record_shapes(gm, inputs, eval_mode=False), acc_bits)
        graph = OpGraph(lowering.run(), {"batch": inputs[0].shape[0]})
    return Traced(module, gm, graph, lowering.env)


def trace(module: nn.Module, *inputs: torch.Tensor, acc_bits: int | None = None, batch: int = 1) -> OpGraph:
    """Op graph of one forward call of `module` on `inputs` (default: its example inputs)."""
    return trace_module(module, inputs, acc_bits, batch).graph
