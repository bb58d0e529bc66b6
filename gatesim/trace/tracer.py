"""torch.fx tracing with Brevitas layers as leaves, plus a run that records shapes."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.fx as fx
from torch import nn

from gatesim.errors import GatesimError


def is_brevitas(module: nn.Module) -> bool:
    return type(module).__module__.startswith("brevitas.")


class LeafTracer(fx.Tracer):
    """Stops at Brevitas modules: their quantizers are read, not traced through."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if getattr(m, "gatesim_leaf", False) or is_brevitas(m):
            return True
        return super().is_leaf_module(m, qualname)


def symbolic_trace(module: nn.Module) -> fx.GraphModule:
    try:
        graph = LeafTracer().trace(module)
    except Exception as exc:  # fx raises many types; the user needs the module and the reason
        raise GatesimError(
            f"cannot trace {type(module).__name__} with torch.fx: {exc}. "
            "Data-dependent control flow is not traceable; build the cell from Brevitas layers "
            "and torch ops"
        ) from exc
    return fx.GraphModule(module, graph, class_name=type(module).__name__)


def shape_of(value: Any) -> Any:
    """Nested shape structure: a tuple of ints per tensor, tuples for tuples, else None."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if hasattr(value, "value") and isinstance(getattr(value, "value"), torch.Tensor):
        return tuple(value.value.shape)  # a Brevitas QuantTensor
    if isinstance(value, (tuple, list)):
        return tuple(shape_of(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # sizes computed in the graph (x.size(0)) scale like shapes
    return None


class ShapeRecorder(fx.Interpreter):
    """Runs the graph once and writes each node's output shape structure.

    `root` runs the same graph on another instance of the cell (a probe at other sizes):
    its submodules and attributes are fetched instead of the traced module's.
    """

    def __init__(self, gm: fx.GraphModule, root: nn.Module | None = None):
        super().__init__(gm)
        self.root = root
        self.shapes: dict[str, Any] = {}

    def fetch_attr(self, target: str) -> Any:
        if self.root is None:
            return super().fetch_attr(target)
        obj = self.root
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def run_node(self, n: fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except GatesimError:
            raise
        except Exception as exc:
            raise GatesimError(f"node {n.name!r} ({n.op} {n.target}) failed while tracing: {exc}") from exc
        self.shapes[n.name] = shape_of(out)
        return out


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Run with the module in eval mode (quantizers stop collecting statistics)."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.no_grad()
def record_shapes(gm: fx.GraphModule, inputs: tuple[torch.Tensor, ...], root: nn.Module | None = None,
                  eval_mode: bool = True) -> dict[str, Any]:
    """Shapes of every node for one run; `eval_mode` keeps a user's training-mode quantizers
    from updating their statistics (cells built only to be measured can skip the switch)."""
    recorder = ShapeRecorder(gm, root)
    module = root if root is not None else gm
    switch = eval_mode and module.training
    if switch:
        module.eval()
    try:
        recorder.run(*inputs)
    finally:
        if switch:
            module.train()
    return recorder.shapes
