"""Trace a cell into an op graph: adapt -> fx trace -> shapes -> counting rules -> networkx."""
from __future__ import annotations

import inspect
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
    """A cell's example inputs: its own `example_inputs(batch)` when it has one; else zeros,
    torch's convention for a recurrent layer: x (batch, input_size) and `default_states`."""
    if hasattr(module, "example_inputs"):
        return tuple(module.example_inputs(batch))
    return (torch.zeros(batch, _size(module, "input_size")), *default_states(module, batch))


def default_states(module: nn.Module, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Its `initial_state(batch)`, or the states of its `example_inputs(batch)`; else one zero
    (batch, hidden_size) per state `forward` takes after x, the size from the module's
    `hidden_size` (as torch's RNNs and `build_cell` set it)."""
    if hasattr(module, "initial_state"):
        return tuple(module.initial_state(batch))
    if hasattr(module, "example_inputs"):
        return tuple(module.example_inputs(batch))[1:]
    params = list(inspect.signature(module.forward).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise GatesimError(f"{type(module).__name__}: forward(*args) does not say how many states it takes: pass "
                           "the states (example inputs), or give the module an example_inputs(batch) method")
    states = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) - 1
    return tuple(torch.zeros(batch, _size(module, "hidden_size")) for _ in range(states))


def _size(module: nn.Module, name: str) -> int:
    size = getattr(module, name, None)
    if not isinstance(size, int):
        raise GatesimError(f"{type(module).__name__}: no example_inputs(batch) method and no {name} attribute: "
                           "pass example inputs (x, *states), or build it through a factory taking input_size and "
                           "hidden_size (CLI: module:pkg.mod:factory --input I --hidden H)")
    return size


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
