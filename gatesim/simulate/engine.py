"""Run a traced cell on whole numbers over a whole sequence.

The cell is traced once (the same fx graph and static types the counting pass builds),
each fx node is compiled by its simulation rule, and the nodes are split three ways:
constants (evaluated once), nodes that depend on the input x only and work row by row
(evaluated for a block of steps at once, stacked along the batch axis: the input
projections), and the recurrent rest, evaluated step by step.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.fixed import Clamp, FixedType, frac_bits_of, rounding_rescaler
from gatesim.fixedpoint.qtype import QType
from gatesim.simulate.exact import carrier
from gatesim.simulate.rules import SIM_RULES, SimCtx, SimOptions, round_lsbs, unchanged
from gatesim.simulate.values import Compiled, Meta, Recorder
from gatesim.trace import trace_module
from gatesim.trace.keys import find_rule
from gatesim.trace.rules import entry_qtype
from gatesim.trace.tracer import eval_mode
from gatesim.trace.values import Val

HOISTED_ROWS = 2048  # rows per batch of x-only (hoisted) work
EXACT_FLOAT_BITS = 53  # whole numbers narrower than this ride on float64 exactly
MAX_BITS = 63


def _with_static(meta: Any, static: Any) -> Any:
    """Attach the counting pass's proven interval to each Meta of a node's value."""
    if isinstance(meta, Meta) and isinstance(static, Val) and not static.qtype.is_float:
        if static.qtype.scale != meta.scale:
            return meta  # the counting pass approximated a grid; keep the simulator's own
        return replace(meta, qtype=static.qtype)
    if isinstance(meta, tuple) and isinstance(static, tuple) and len(meta) == len(static):
        return tuple(_with_static(m, s) for m, s in zip(meta, static))
    return meta


def _metas(value: Any) -> list[Meta]:
    if isinstance(value, Meta):
        return [value]
    if isinstance(value, tuple):
        return [m for v in value for m in _metas(v)]
    return []


def _getter(arg: Any) -> Callable[[dict], Any]:
    """env -> the argument with each fx node replaced by its current value."""
    if isinstance(arg, fx.Node):
        name = arg.name
        return lambda env: env[name]
    if isinstance(arg, (tuple, list)) and _has_node(arg):
        parts, kind = [_getter(a) for a in arg], type(arg)
        return lambda env: kind(p(env) for p in parts)
    return lambda env: arg


def _has_node(arg: Any) -> bool:
    if isinstance(arg, fx.Node):
        return True
    return isinstance(arg, (tuple, list)) and any(_has_node(a) for a in arg)


def _inputs(node: fx.Node) -> list[str]:
    return [n.name for n in node.all_input_nodes]


def _bits(value: Any) -> int:
    """Widest proven width among the Metas in a value (an unknown range counts as 53 bits)."""
    if isinstance(value, dict):
        value = tuple(value.values())
    return max((m.qtype.bits if m.qtype is not None and not m.qtype.is_float else EXACT_FLOAT_BITS
                for m in _metas(value)), default=0)


def _widened(kernel: Callable, bits: int) -> Callable:
    """Run the kernel on a dtype exact for `bits`: narrower float inputs are widened first.

    Whole numbers ride on float32 while they fit its 24-bit mantissa, on float64 up to 53 bits
    and on int64 beyond; a node never computes in a dtype its proven width does not fit.
    """
    dtype = carrier(bits)
    if dtype is np.float32:
        return kernel
    kinds = ("f",) if dtype is np.int64 else ()

    def widen(a):
        if isinstance(a, np.ndarray) and (a.dtype == np.float32 or a.dtype.kind in kinds):
            return a.astype(dtype)
        if isinstance(a, tuple):
            return tuple(widen(v) for v in a)
        return a

    return lambda *args, **kwargs: kernel(*[widen(a) for a in args], **kwargs)


def _rounded(name: str, compiled: Compiled, lsbs: int) -> Compiled:
    """The node's table applied to its input with `lsbs` bits rounded away (the HE export
    rounds with concrete-python's round_bit_pattern, then looks up the same table)."""
    fn = compiled.info.get("univariate")
    if fn is None or fn is unchanged:
        raise GatesimError(f"node {name!r}: rounding applies to a table lookup, and this node is none")
    kernel = compiled.kernel
    return replace(compiled, kernel=lambda data, *args, **kwargs: kernel(round_lsbs(data, lsbs), *args, **kwargs),
                   info={**compiled.info, "round_lsbs": lsbs})


class Simulator:
    """A cell compiled for integer simulation at one batch size (sizes are baked by tracing)."""

    def __init__(self, module: nn.Module, example: tuple[torch.Tensor, ...], options: SimOptions):
        traced = trace_module(module, example)
        self.module, self.gm, self.opgraph, self.static = traced.module, traced.gm, traced.graph, traced.env
        self.options = options
        self.batch = example[0].shape[0]
        self._build()

    def _build(self) -> None:
        self.recorder = Recorder()
        self.metas: dict[str, Any] = {}
        self.compiled: dict[str, Compiled] = {}
        with eval_mode(self.module), torch.no_grad():
            self._compile()
        self._plan()

    def with_options(self, options: SimOptions) -> Simulator:
        """The same trace compiled with other registers (no retrace)."""
        other = copy.copy(self)
        other.options = options
        other._build()
        return other

    # ------------------------------------------------------------------ compile

    def _compile(self) -> None:
        self.placeholders, self.outputs = [], []
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.placeholders.append(node.name)
                self.metas[node.name] = self._placeholder_meta(node)
            elif node.op == "output":
                out = node.args[0]
                self.outputs = [n.name for n in (out if isinstance(out, (tuple, list)) else (out,))]
            elif node.op == "get_attr":
                self.compiled[node.name] = Compiled(None, const=self.static.get(node.name))
                self.metas[node.name] = None
            else:
                self._compile_node(node)
        if not self.placeholders:
            raise GatesimError(f"{type(self.module).__name__}.forward takes no inputs")

    def _placeholder_meta(self, node: fx.Node) -> Meta:
        t = self.static[node.name].qtype
        if t.is_float:
            raise GatesimError(f"input {node.name!r} is not read by a quantizer first; the integer "
                               "simulator needs to know its grid (quantize it on entry)")
        return Meta(t.scale, True, False, t)

    def _compile_node(self, node: fx.Node) -> None:
        module = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        rule = find_rule(node.op, node.target, module, SIM_RULES)
        if rule is None:
            what = type(module).__name__ if module is not None else getattr(node.target, "__name__", node.target)
            raise GatesimError(f"node {node.name!r}: no simulation rule for {node.op} {what}; add one "
                               "to gatesim.simulate.rules or build the cell from supported ops")
        load = lambda n: self.metas[n.name]  # noqa: E731
        if not getattr(rule, "accepts_pending", False):
            for source in node.all_input_nodes:
                pending = [m.pending for m in _metas(self.metas.get(source.name)) if m.pending]
                if pending:
                    names = " -> ".join(name for name, _ in pending[0])
                    raise GatesimError(
                        f"node {node.name!r}: its input {source.name!r} is the real-valued output of "
                        f"{names}; quantize it first (QuantIdentity or a Brevitas activation with "
                        "act_quant) so the integer simulator can make it a table")
        ctx = SimCtx(node.name, tuple(fx.node.map_arg(node.args, load)),
                     dict(fx.node.map_arg(node.kwargs, load)), self.static.get(node.name), module,
                     self.options, self.recorder)
        try:
            compiled = rule(ctx)
        except GatesimError as exc:
            if str(exc).startswith("node "):
                raise
            raise GatesimError(f"node {node.name!r}: {exc}") from exc
        except Exception as exc:
            raise GatesimError(f"node {node.name!r}: simulation rule {rule.__name__} failed: {exc}") from exc
        compiled.meta = _with_static(compiled.meta, ctx.static)
        bits = max(_bits(compiled.meta), compiled.info.get("work_bits", 0))
        if bits > MAX_BITS:
            raise GatesimError(f"node {node.name!r} needs {bits} bits; the simulator holds at most "
                               f"{MAX_BITS} (narrow the weights, activations or reduction)")
        if compiled.kernel is not None:
            compiled.kernel = _widened(compiled.kernel, max(bits, _bits(ctx.args), _bits(ctx.kwargs)))
        lsbs = dict(self.options.rounding).get(node.name, 0)
        if lsbs:
            compiled = _rounded(node.name, compiled, lsbs)
        self.metas[node.name] = compiled.meta
        self.compiled[node.name] = compiled

    # ------------------------------------------------------------------ plan

    def _plan(self) -> None:
        """Sort nodes into constants, x-only row-wise (hoisted) and per-step ones."""
        x_name, state_names = self.placeholders[0], self.placeholders[1:]
        depends: dict[str, set[str]] = {x_name: {"x"}, **{s: {"state"} for s in state_names}}
        hoisted, steps, hoisted_names = [], [], {x_name}
        self.const_env: dict[str, Any] = {}
        for node in self.gm.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            compiled = self.compiled[node.name]
            deps = set().union(*(depends.get(n, set()) for n in _inputs(node)))
            depends[node.name] = deps
            if compiled.kernel is None:
                self.const_env[node.name] = compiled.const
                depends[node.name] = set()
            elif not deps:
                call = self._caller(node)
                self.const_env[node.name] = call(self.const_env)
            elif deps == {"x"} and compiled.rowwise and all(
                    n in self.const_env or n in hoisted_names for n in _inputs(node)):
                hoisted.append((node.name, self._caller(node)))
                hoisted_names.add(node.name)
            else:
                steps.append((node.name, self._caller(node)))
        step_names = {name for name, _ in steps}
        step_inputs = {n for node in self.gm.graph.nodes if node.name in step_names for n in _inputs(node)}
        step_inputs |= set(self.outputs)
        self.hoisted, self.steps = hoisted, steps
        self.sliced = sorted(step_inputs & hoisted_names)
        self.state_names = state_names
        self.feedback = [self._feedback(out, s) for out, s in zip(self.outputs, state_names)]
        if len(self.outputs) < len(state_names):
            raise GatesimError(f"the cell takes {len(state_names)} states but returns {len(self.outputs)}")

    def _caller(self, node: fx.Node) -> Callable[[dict], Any]:
        """env -> the node's value; the common shapes of argument lists get a direct call
        because this runs for every node at every step."""
        kernel = self.compiled[node.name].kernel
        args = [_getter(a) for a in node.args]
        kwargs = {k: _getter(v) for k, v in node.kwargs.items()}
        if kwargs:
            return lambda env: kernel(*[a(env) for a in args], **{k: v(env) for k, v in kwargs.items()})
        names = [a.name if isinstance(a, fx.Node) else None for a in node.args]
        if len(names) == 1 and names[0] is not None:
            (name,) = names
            return lambda env: kernel(env[name])
        if len(names) == 2 and None not in names:
            first, second = names
            return lambda env: kernel(env[first], env[second])
        return lambda env: kernel(*[a(env) for a in args])

    def _feedback(self, out_name: str, state_name: str) -> Callable[[np.ndarray], np.ndarray]:
        """A returned state re-enters as the next step's input on the entry grid."""
        out, entry = self.metas.get(out_name), self.metas[state_name]
        if not isinstance(out, Meta) or out.pending:
            raise GatesimError(f"output {out_name!r} is not a quantized tensor; quantize the state "
                               "the cell returns (e.g. QuantIdentity)")
        t, e = out.qtype, entry.qtype
        if out.scale == entry.scale and t is not None and e.lo <= t.lo and t.hi <= e.hi:
            return lambda data: data
        ratio = Fraction(out.scale) / Fraction(entry.scale)
        exact = ratio.denominator == 1 and t is not None and e.lo <= t.lo * ratio and t.hi * ratio <= e.hi
        raw = self._raw_readers(state_name)
        if not exact and raw:
            # Brevitas carries the returned value unrounded into the next step; an integer
            # datapath stores it on one grid, so the two part after the first step
            raise GatesimError(
                f"state {state_name!r}: the cell returns it ({out_name!r}) on a grid of {float(out.scale):g} that its "
                f"storage grid {float(entry.scale):g} cannot hold exactly, and reads it unquantized in "
                f"{', '.join(raw)}: Brevitas would carry the exact value from step to step, an integer datapath "
                "cannot. Requantize the returned state to the grid it is read on (e.g. a QuantIdentity with the "
                "state's quantizer)")
        rescale = rounding_rescaler(ratio, "half_even")
        clamp = Clamp(e.lo, e.hi)
        return lambda data: clamp(rescale(data))

    def _raw_readers(self, state_name: str) -> list[str]:
        """The nodes that read a state other than through a quantizer of its storage format."""
        node = next(n for n in self.gm.graph.nodes if n.name == state_name)
        stored = self.metas[state_name].qtype
        return [u.name for u in node.users
                if not (u.op == "call_module" and u.args and u.args[0] is node
                        and entry_qtype(self.gm.get_submodule(u.target)) == stored)]

    # ------------------------------------------------------------------ run

    def quantize_inputs(self, x: np.ndarray, states: tuple[np.ndarray, ...], strict: bool):
        """Real inputs -> whole numbers on their entry grids (strict: they must already be on them)."""
        metas = [self.metas[n] for n in self.placeholders]
        return tuple(_to_grid(name, np.asarray(v, dtype=np.float64), m.qtype, strict).astype(carrier(m.qtype.bits))
                     for name, v, m in zip(self.placeholders, (x, *states), metas))

    def run(self, x: np.ndarray, states: tuple[np.ndarray, ...]) -> tuple[list[np.ndarray], float]:
        """x: (B, T, I) and states (B, ...) as whole numbers -> per output (B, T, ...) and seconds."""
        self.recorder.reset()
        batch, steps = x.shape[0], x.shape[1]
        start = time.perf_counter()
        x_name = self.placeholders[0]
        stacked = np.ascontiguousarray(np.swapaxes(x, 0, 1)).reshape(steps * batch, *x.shape[2:])
        state = list(states)
        steps_out: list[np.ndarray | None] = [None] * len(self.outputs)  # (T, B, ...) each
        narrow = [self._state_narrower(name) for name in self.outputs]
        chunk = max(1, HOISTED_ROWS // batch)
        for first in range(0, steps, chunk):
            # the x-only nodes for a chunk of steps at once: big enough for BLAS, small enough
            # to stay in cache
            env = dict(self.const_env)
            env[x_name] = stacked[first * batch:(first + chunk) * batch]
            for name, call in self.hoisted:
                env[name] = call(env)
            stacks = {name: env[name] for name in self.sliced}
            for t in range(first, min(first + chunk, steps)):
                rows = slice((t - first) * batch, (t - first + 1) * batch)
                env = dict(self.const_env)
                for name, value in stacks.items():
                    env[name] = _rows(value, rows)
                env.update(zip(self.state_names, state))
                for name, call in self.steps:
                    env[name] = call(env)
                outs = [env[name] for name in self.outputs]
                outs = [f(o) if f is not None else o for f, o in zip(narrow, outs)]
                for i, out in enumerate(outs):
                    if steps_out[i] is None:
                        steps_out[i] = np.empty((steps, *out.shape), dtype=np.int64)
                    steps_out[i][t] = out  # whole numbers: the conversion is exact
                state = [fb(o) for fb, o in zip(self.feedback, outs)]
        results = [np.swapaxes(o, 0, 1) for o in steps_out]  # (B, T, ...) views, no copy
        return results, time.perf_counter() - start

    def _state_narrower(self, name: str) -> Callable | None:
        bits = self.options.state_bits
        meta = self.metas[name]
        if bits is None:
            return None
        signed = meta.qtype is None or meta.qtype.signed
        register = FixedType(width=bits, scale=meta.scale, signed=signed, overflow=self.options.overflow)
        recorder, key = self.recorder, (name, "store")

        def narrow(data: np.ndarray) -> np.ndarray:
            fitted, over = register.fit(data)
            recorder.overflowed(key, over, bits)
            return fitted

        return narrow


def _rows(value: Any, rows: slice) -> Any:
    if isinstance(value, np.ndarray):
        return value[rows]
    if isinstance(value, tuple):
        return tuple(_rows(v, rows) for v in value)
    return value


def _to_grid(name: str, values: np.ndarray, t: QType, strict: bool) -> np.ndarray:
    scaled = values / t.scale
    ints = np.rint(scaled)
    if strict:
        off = np.flatnonzero((ints != scaled) | (ints < t.lo) | (ints > t.hi))
        if off.size:
            bad = values.flat[off[0]]
            raise GatesimError(
                f"input {name!r}: {off.size} of {values.size} values are off the quantization grid "
                f"(step {t.scale:g}, range [{t.lo * t.scale:g}, {t.hi * t.scale:g}]), e.g. {bad!r}; "
                "quantize them first or drop exactness")
    return np.clip(ints, t.lo, t.hi)


MANTISSA_BITS = {"float32": 24, "float64": 53}


def float_limits(sim: Simulator, dtype: str = "float32") -> list[str]:
    """Why Brevitas' fake-quant arithmetic in `dtype` may round, node by node (empty: exact).

    On power-of-two grids every value is a whole number times a power of two, exact in
    float32 while it needs at most 24 bits (float64: 53); the counting pass's intervals bound
    every product, partial sum and sum, so this is a proof, not an observation.
    """
    mantissa = MANTISSA_BITS[dtype]
    reasons = []
    for _, data in sim.opgraph.graph.nodes(data=True):
        o = data["op"]
        if o.info.memory or o.is_float:
            continue
        bits = max(o.out_bits, *o.operand_bits)
        if bits > mantissa:
            reasons.append(f"{data['fx_node']}: {o.kind} needs {bits} bits")
    for name, meta in sim.metas.items():
        for m in _metas(meta):
            if frac_bits_of(m.scale) is None:
                reasons.append(f"{name}: grid {m.scale:g} is not a power of two")
                break
    return sorted(set(reasons))


def type_bits(sim: Simulator) -> dict[tuple[str, str], int]:
    """Widest result the counting pass proved per (fx node, op kind)."""
    widest: dict[tuple[str, str], int] = {}
    for _, data in sim.opgraph.graph.nodes(data=True):
        o = data["op"]
        key = (data["fx_node"], o.kind)
        widest[key] = max(widest.get(key, 0), o.out_bits)
    for (node, kind), bits in list(widest.items()):  # a bias add lands in the mac's accumulator
        if kind == "add" and (node, "mac") in widest:
            widest[(node, "mac")] = max(widest[(node, "mac")], bits)
    return widest
