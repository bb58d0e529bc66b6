"""Lower a traced fx graph to a networkx graph of op nodes, one rule per fx node."""
from __future__ import annotations

from typing import Any

import networkx as nx
import torch
import torch.fx as fx

from gatesim.errors import GatesimError
from gatesim.fixedpoint.qtype import FLOAT
from gatesim.ops import MEMORY, Op
from gatesim.trace.rules import NodeCtx, RuleOut, concat, entry_qtype, find_rule, op, split

# rules that make new tensors without arithmetic: still one framework call each in eager mode
TENSOR_MAKERS = (split, concat)
from gatesim.trace.values import Val, vals_in


def _describe(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        return f"module {node.target!r} ({type(gm.get_submodule(node.target)).__name__})"
    if node.op == "call_method":
        return f"method .{node.target}()"
    return f"function {getattr(node.target, '__module__', '')}.{getattr(node.target, '__name__', node.target)}"


def placeholder_types(gm: fx.GraphModule) -> dict[str, Any]:
    """Inputs arrive in the format of the first quantizer that reads them (state is stored
    quantized by the previous step; inputs stream in quantized), so that quantizer is free."""
    types = {}
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        for user in node.users:
            if user.op == "call_module" and user.args and user.args[0] is node:
                t = entry_qtype(gm.get_submodule(user.target))
                if t is not None:
                    types[node.name] = t
                    break
    return types


def _attach(value: Any, producers: frozenset[int], computed: bool) -> Any:
    """The node's value, produced by its own ops when it `computed` any; a value passed
    through unchanged (a view, a tuple element) keeps the producers it came with."""
    if isinstance(value, Val):
        if value.producers and not computed:
            return value
        return Val(value.shape, value.qtype, value.is_var, producers, value.acc)
    if isinstance(value, tuple):
        return tuple(_attach(v, producers, computed) for v in value)
    return value


class Lowering:
    """Builds the op graph; node ids are consecutive ints, each with `op` and `fx_node`."""

    def __init__(self, gm: fx.GraphModule, shapes: dict[str, Any], acc_bits: int | None = None,
                 memo: dict | None = None, values_known: bool = True):
        self.gm, self.shapes, self.acc_bits, self.values_known = gm, shapes, acc_bits, values_known
        self.memo = {} if memo is None else memo
        self.graph = nx.DiGraph()
        self.env: dict[str, Any] = {}  # fx node name -> its Val (static type), kept for the simulator
        self.views: set[int] = set()  # ids of the Vals split/chunk produced

    def _emit(self, ops: list[Op], deps: frozenset[int], fx_name: str) -> frozenset[int]:
        for o in ops:
            nid = self.graph.number_of_nodes()
            self.graph.add_node(nid, op=o, fx_node=fx_name)
            self.graph.add_edges_from((d, nid) for d in deps)
            deps = frozenset({nid})
        return deps

    def run(self) -> nx.DiGraph:
        env = self.env
        if "placeholder_types" not in self.memo:
            self.memo["placeholder_types"] = placeholder_types(self.gm)
        entry = self.memo["placeholder_types"]
        load = lambda n: env[n.name]  # noqa: E731
        for node in self.gm.graph.nodes:
            shape = self.shapes.get(node.name)
            if node.op == "placeholder":
                t = entry.get(node.name, FLOAT)
                v = Val(shape, t, True)
                env[node.name] = Val(shape, t, True, self._emit([op("load", v.numel, [v], t, label="input")],
                                                                frozenset(), node.name))
            elif node.op == "get_attr":
                env[node.name] = Val(shape, FLOAT, False) if isinstance(shape, tuple) else shape
            elif node.op == "output":
                for v in vals_in(fx.node.map_arg(node.args, load)):
                    self._emit([op("store", v.numel, [v], v.qtype, label="state")], v.producers, node.name)
            else:
                env[node.name] = self._apply(node, shape, load)
        return self.graph

    def _apply(self, node: fx.Node, shape: Any, load) -> Any:
        module = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        fn = find_rule(node.op, node.target, module)
        if fn is None:
            raise GatesimError(
                f"node {node.name!r}: no counting rule for {_describe(node, self.gm)}; "
                "add one to gatesim.trace.rules or build the cell from supported ops")
        args, kwargs = fx.node.map_arg(node.args, load), fx.node.map_arg(node.kwargs, load)
        ctx = NodeCtx(node.name, tuple(args), dict(kwargs), shape, module, self.acc_bits, self.memo,
                      self.values_known)
        try:
            out: RuleOut = fn(ctx)
        except GatesimError:
            raise
        except Exception as exc:
            raise GatesimError(f"node {node.name!r} ({_describe(node, self.gm)}): "
                               f"counting rule {fn.__name__} failed: {exc}") from exc
        deps = frozenset().union(*(v.producers for v in vals_in((args, kwargs))))
        computing = [o.kind for o in out.ops if o.kind not in MEMORY]
        if computing or fn in TENSOR_MAKERS:  # one framework call in eager mode
            call = computing[0] if computing else fn.__name__
            if "mac" in computing:
                call = "mac"  # a linear layer: the matmul is the call, the bias add rides on it
            self._count("calls", call)
            if computing and any(id(v) in self.views for v in vals_in((args, kwargs))):
                self._count("strided_calls", call)  # reads a slice of a split: strided memory
        value = _attach(out.value, self._emit(out.ops, deps, node.name), bool(out.ops))
        if fn is split:
            self.views.update(id(v) for v in vals_in(value))
        return value

    def _count(self, what: str, call: str) -> None:
        counts = self.graph.graph.setdefault(what, {})
        counts[call] = counts.get(call, 0) + 1


def lower(gm: fx.GraphModule, shapes: dict[str, Any], acc_bits: int | None = None,
          memo: dict | None = None, values_known: bool = True) -> nx.DiGraph:
    """`memo` keeps quantizer reads across calls on the same graph (see NodeCtx.quant);
    `values_known=False` when the graph's constants belong to an instance of another size."""
    with torch.no_grad():
        return Lowering(gm, shapes, acc_bits, memo, values_known).run()
