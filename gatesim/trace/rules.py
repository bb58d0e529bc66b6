"""Counting rules: one small function per torch op / module kind.

A rule sees the node's arguments as `Val`s (shape, fixed-point type, variable or constant)
and returns the ops it costs plus the value it produces. Ops a rule returns run in sequence
(each feeds the next); a rule returning no ops passes its inputs through (views, slices).
Rules are registered by op name (gatesim.trace.keys, the key space the simulation rules
share). An fx node with no rule is an error that names it, never a silent zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from brevitas.nn.quant_layer import QuantNonLinearActLayer
from torch import nn

from gatesim.fixedpoint import qtype as qt
from gatesim.fixedpoint.brevitas_adapter import (
    act_qtype, activation_kind, bias_qtype, proxy_enabled, weight_qtype,
)
from gatesim.fixedpoint.qtype import FLOAT, QType
from gatesim.ops import TABLES, Op
from gatesim.trace.adapters import ProxyAct
from gatesim.trace.keys import find_rule as find_by_key
from gatesim.trace.keys import registrar
from gatesim.trace.values import Val, const_val


@dataclass
class NodeCtx:
    """One fx node as a rule sees it."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out_shape: Any
    module: nn.Module | None = None
    acc_bits: int | None = None
    memo: dict = field(default_factory=dict)
    values_known: bool = True  # False in a template: its constants' values are another size's

    def quant(self, reader: Callable[..., Any], obj: Any, *args: Any) -> Any:
        """reader(obj, *args), remembered: quantizer settings do not change with the sizes."""
        key = (reader, id(obj), args)
        if key not in self.memo:
            self.memo[key] = (reader(obj, *args), obj)  # keep obj alive so its id stays unique
        return self.memo[key][0]

    def arg(self, i: int, key: str | None = None, default: Any = None) -> Any:
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(key, default) if key else default


@dataclass
class RuleOut:
    value: Any  # a Val, a tuple of Vals, or a plain Python value (sizes)
    ops: list[Op] = field(default_factory=list)


Rule = Callable[[NodeCtx], RuleOut]
RULES: dict[str, Rule] = {}  # op name (gatesim.trace.keys) -> counting rule
rule = registrar(RULES)


def find_rule(op: str, target: Any, module: nn.Module | None) -> Rule | None:
    return find_by_key(op, target, module, RULES)


# ----------------------------------------------------------------------------- helpers


def as_val(x: Any) -> Val:
    return x if isinstance(x, Val) else const_val(float(x))


def op(kind: str, count: int, operands: list[Val | QType], out: QType, **extra) -> Op:
    types = [o.qtype if isinstance(o, Val) else o for o in operands]
    return Op(
        kind=kind, count=int(count),
        operand_bits=tuple(t.bits for t in types),
        operand_is_var=tuple(o.is_var if isinstance(o, Val) else False for o in operands),
        out_bits=out.bits, operand_signed=tuple(t.signed or t.is_float for t in types),
        signed=out.signed or out.is_float,
        is_float=out.is_float or any(t.is_float for t in types), **extra,
    )


def representable(t: QType, target: QType) -> bool:
    """True when requantizing t onto target changes nothing (same grid, range inside)."""
    return (not t.is_float and t.scale == target.scale and target.lo <= t.lo and t.hi <= target.hi)


def requant(x: Val, target: QType | None, ops: list[Op], label: str = "") -> Val:
    """Append a requant onto `target` unless it is a no-op; return the requantized value."""
    if target is None or representable(x.qtype, target):
        return x
    ops.append(op("requant", x.numel, [x], target, label=label))
    return Val(x.shape, target, x.is_var)


def entry_qtype(module: nn.Module) -> QType | None:
    """The first quantizer a value meets inside a leaf (defines the format inputs arrive in)."""
    if proxy_enabled(getattr(module, "input_quant", None)):
        return act_qtype(module.input_quant)
    if isinstance(module, QuantNonLinearActLayer) and activation_kind(module.act_quant) is None:
        return act_qtype(module.act_quant)
    if isinstance(module, ProxyAct) and activation_kind(module.proxy) is None:
        return act_qtype(module.proxy)
    return None


def passthrough(ctx: NodeCtx) -> RuleOut:
    """Views, slices, copies: no arithmetic, the first tensor argument flows through."""
    src = next(a for a in (*ctx.args, *ctx.kwargs.values()) if isinstance(a, Val))
    return RuleOut(src.view(ctx.out_shape))


def _reshape_like(ctx: NodeCtx, value: Val) -> Any:
    if isinstance(ctx.out_shape, tuple) and ctx.out_shape and isinstance(ctx.out_shape[0], tuple):
        return tuple(value.view(s) for s in ctx.out_shape)
    return value.view(ctx.out_shape)


# ----------------------------------------------------------------------------- linear layers


def _register(t: QType, bits: int | None) -> tuple[QType, int]:
    """t held in an accumulator register of `bits` (None: as wide as t needs), and the width
    t provably needs where that register is narrower (overflow possible), else 0."""
    if bits is None or t.is_float:
        return t, 0
    return qt.with_bits(t, bits), (t.bits if t.bits > bits else 0)


def _dense(ctx: NodeCtx, x: Val, w: QType, has_bias: bool, b: QType | None, ops: list[Op]) -> Val:
    """x @ W^T (+ b): weight load, one mac per product, one add per bias element."""
    k = x.shape[-1]
    out_features = ctx.out_shape[-1]
    rows = x.numel // k
    acc, proven = _register(qt.dot(x.qtype, w, k), ctx.acc_bits)
    weights = Val((out_features, k), w, False)
    ops.append(op("load", out_features * k, [weights], w, label="weights"))
    ops.append(op("mac", rows * out_features * k, [x, weights], acc, reduction=k, proven_bits=proven))
    out = Val(ctx.out_shape, acc, x.is_var, acc=True)
    if has_bias:
        bias = b if b is not None else FLOAT
        if not (bias.is_float or acc.is_float):
            # held in a register as wide as the sum it joins (wider only if its values need it),
            # so its width does not hang on the values it was initialized with
            bias = qt.union(bias, acc)
        ops.append(op("load", out_features, [Val((out_features,), bias, False)], bias, label="bias"))
        total, proven = _register(qt.add(acc, bias), ctx.acc_bits)
        ops.append(op("add", rows * out_features, [out, Val((out_features,), bias, False)], total,
                      label="bias", proven_bits=proven))
        out = Val(ctx.out_shape, total, x.is_var, acc=True)
    return out


def _acc_scale(x: QType, w: QType) -> float | None:
    return None if (x.is_float or w.is_float) else x.scale * w.scale


@rule("quant_linear")
def quant_linear(ctx: NodeCtx) -> RuleOut:
    """Brevitas QuantLinear (and other WBIOL layers): input requant, mac, bias add, output requant."""
    m, ops = ctx.module, []
    if not isinstance(m, nn.Linear) and type(m).__name__ != "QuantLinear":
        raise NotImplementedError(f"{type(m).__name__}: only linear layers have a counting rule")
    x = requant(ctx.arg(0), ctx.quant(entry_qtype, m), ops, "input")
    w = ctx.quant(weight_qtype, m) or FLOAT
    b = ctx.quant(bias_qtype, m, _acc_scale(x.qtype, w))
    if b is not None and not b.is_float and not ctx.values_known:
        b = QType(0, 0, b.scale)  # only its grid: _dense sizes it to the accumulator
    out = _dense(ctx, x, w, m.bias is not None, b, ops)
    if proxy_enabled(getattr(m, "output_quant", None)):
        out = requant(out, ctx.quant(act_qtype, m.output_quant), ops, "output")
    return RuleOut(out, ops)


@rule("float_linear")
def float_linear(ctx: NodeCtx) -> RuleOut:
    """torch.nn.Linear: mac = rows * out * in, add = rows * out."""
    ops: list[Op] = []
    out = _dense(ctx, ctx.arg(0), FLOAT, ctx.module.bias is not None, FLOAT, ops)
    return RuleOut(out, ops)


@rule("functional_linear")
def functional_linear(ctx: NodeCtx) -> RuleOut:
    """F.linear(x, W, b): constant W gives mac; a variable W is a var x var product."""
    x, w, b = ctx.arg(0), ctx.arg(1, "weight"), ctx.arg(2, "bias")
    if w.is_var:
        return matmul(NodeCtx(ctx.name, (x, w), {}, ctx.out_shape, acc_bits=ctx.acc_bits))
    ops: list[Op] = []
    out = _dense(ctx, x, w.qtype, isinstance(b, Val), b.qtype if isinstance(b, Val) else None, ops)
    return RuleOut(out, ops)


@rule("matmul")
def matmul(ctx: NodeCtx) -> RuleOut:
    """a @ b: constant operand -> mac; both variable -> mul per product + add per partial sum."""
    a, b = as_val(ctx.arg(0)), as_val(ctx.arg(1))
    k = a.shape[-1]
    n_out = _numel(ctx.out_shape)
    acc, proven = _register(qt.dot(a.qtype, b.qtype, k), ctx.acc_bits)
    if a.is_var and b.is_var:
        prod = qt.mul(a.qtype, b.qtype)
        ops = [op("mul", n_out * k, [a, b], prod),
               op("add", n_out * (k - 1), [Val((), prod, True)], acc, proven_bits=proven)]
    else:
        ops = [op("mac", n_out * k, [a, b], acc, reduction=k, proven_bits=proven)]
    return RuleOut(Val(ctx.out_shape, acc, a.is_var or b.is_var, acc=True), ops)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ----------------------------------------------------------------------------- activations


def _activation(x: Val, kind: str | None, out: QType | None, ops: list[Op], out_shape) -> Val:
    """Apply one activation then quantize: tables emit their output type directly."""
    if kind in TABLES:
        target = out or FLOAT
        ops.append(op(kind, x.numel, [x], target))
        return Val(out_shape, target, x.is_var)
    if kind == "relu":
        ops.append(op("relu", x.numel, [x], qt.relu(x.qtype)))
        x = Val(out_shape, qt.relu(x.qtype), x.is_var)
    elif kind == "max":
        ops.append(op("max", x.numel, [x], x.qtype, label="clamp"))
    return requant(x, out, ops, "output")


@rule("quant_activation")
def quant_activation(ctx: NodeCtx) -> RuleOut:
    """Brevitas QuantIdentity/QuantReLU/QuantSigmoid/QuantTanh/...: input requant, act, requant."""
    m, ops = ctx.module, []
    x = requant(ctx.arg(0), ctx.quant(act_qtype, getattr(m, "input_quant", None)), ops, "input")
    kind = ctx.quant(activation_kind, m.act_quant)
    return RuleOut(_activation(x, kind, ctx.quant(act_qtype, m.act_quant), ops, ctx.out_shape), ops)


def _float_act(kind: str | None) -> Rule:
    def apply(ctx: NodeCtx) -> RuleOut:
        ops: list[Op] = []
        return RuleOut(_activation(ctx.arg(0), kind, None, ops, ctx.out_shape), ops)

    apply.__doc__ = f"{kind or 'identity'}: one op per element"
    return apply


for _names, _kind in ((("relu",), "relu"), (("sigmoid",), "sigmoid"), (("tanh",), "tanh"),
                      (("hardtanh_module", "hardtanh"), "max"), (("identity",), None)):
    rule(*_names)(_float_act(_kind))


@rule("clamp")
def clamp(ctx: NodeCtx) -> RuleOut:
    """clamp(x, lo, hi): one compare-and-select per element."""
    x = ctx.arg(0)
    lo, hi = ctx.arg(1, "min"), ctx.arg(2, "max")
    t = x.qtype
    if not t.is_float and isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        t = qt.clamp(t, lo, hi)
    return RuleOut(Val(ctx.out_shape, t, x.is_var), [op("max", x.numel, [x], t, label="clamp")])


@rule("maximum", "minimum")
def elementwise_max(ctx: NodeCtx) -> RuleOut:
    """max/min of two tensors: one compare per output element."""
    a, b = as_val(ctx.arg(0)), as_val(ctx.arg(1))
    t = qt.union(a.qtype, b.qtype)
    n = _numel(ctx.out_shape)
    return RuleOut(Val(ctx.out_shape, t, a.is_var or b.is_var), [op("max", n, [a, b], t)])


# ----------------------------------------------------------------------------- arithmetic


def _binary(kind_of: Callable[[Val, Val], str], combine: Callable[[QType, QType], QType],
            swap: bool = False, sums: bool = False) -> Rule:
    """`sums`: an addition, which keeps a sum of accumulators in the accumulator register."""
    def apply(ctx: NodeCtx) -> RuleOut:
        a, b = as_val(ctx.arg(0)), as_val(ctx.arg(1, "other"))
        if swap:
            a, b = b, a
        acc = sums and (a.acc or b.acc)
        t, proven = _register(combine(a.qtype, b.qtype), ctx.acc_bits if acc else None)
        n = _numel(ctx.out_shape)
        out = Val(ctx.out_shape, t, a.is_var or b.is_var, acc=acc)
        if not out.is_var:
            return RuleOut(out)  # constant folding: computed once, offline
        return RuleOut(out, [op(kind_of(a, b), n, [a, b], t, proven_bits=proven)])

    return apply


def _mul_kind(a: Val, b: Val) -> str:
    return "mul" if a.is_var and b.is_var else "mul_const"


def _div_type(a: QType, b: QType) -> QType:
    """Division by a constant: a constant multiply whose result keeps a's grid."""
    return FLOAT if a.is_float or b.is_float else a


rule("add")(_binary(lambda a, b: "add", qt.add, sums=True))
rule("sub")(_binary(lambda a, b: "add", qt.sub, sums=True))
rule("rsub")(_binary(lambda a, b: "add", qt.sub, swap=True, sums=True))
rule("mul")(_binary(_mul_kind, qt.mul))
rule("div")(_binary(lambda a, b: "mul_const", _div_type))


@rule("neg")
def negate(ctx: NodeCtx) -> RuleOut:
    """-x: a subtraction from zero, one add per element."""
    x = ctx.arg(0)
    t = qt.neg(x.qtype)
    return RuleOut(Val(ctx.out_shape, t, x.is_var, acc=x.acc), [op("add", x.numel, [x], t, label="neg")])


# ----------------------------------------------------------------------------- structure


@rule("getitem")
def getitem(ctx: NodeCtx) -> RuleOut:
    """Tuple element or tensor slice: no arithmetic."""
    src, index = ctx.arg(0), ctx.arg(1)
    if isinstance(src, (tuple, list)):
        return RuleOut(src[index])
    if isinstance(src, Val):
        return RuleOut(src.view(ctx.out_shape))
    return RuleOut(ctx.out_shape)


@rule("chunk", "split", "unbind")
def split(ctx: NodeCtx) -> RuleOut:
    """chunk/split/unbind: views of the input, no arithmetic."""
    return RuleOut(_reshape_like(ctx, ctx.arg(0)))


@rule("cat", "stack")
def concat(ctx: NodeCtx) -> RuleOut:
    """cat/stack: data movement only; the widest input type covers the result."""
    parts = [as_val(p) for p in ctx.arg(0, "tensors")]
    t = parts[0].qtype
    for p in parts[1:]:
        t = qt.union(t, p.qtype)
    return RuleOut(Val(ctx.out_shape, t, any(p.is_var for p in parts)))


@rule("copy", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "expand", "expand_as")
def view(ctx: NodeCtx) -> RuleOut:
    """Shape-only ops: no arithmetic."""
    return passthrough(ctx)


@rule("size")
def size(ctx: NodeCtx) -> RuleOut:
    """Sizes and attributes: values known at trace time, no arithmetic."""
    return RuleOut(ctx.out_shape)


def _constant_like(value: float) -> Rule:
    def apply(ctx: NodeCtx) -> RuleOut:
        return RuleOut(Val(ctx.out_shape, const_val(value).qtype, False))

    apply.__doc__ = f"a constant {value} shaped like a tensor: no arithmetic"
    return apply


rule("zeros_like")(_constant_like(0.0))
rule("ones_like")(_constant_like(1.0))


# ----------------------------------------------------------------------------- adapters


@rule("const_tensor")
def const_tensor(ctx: NodeCtx) -> RuleOut:
    """A quantized weight or bias handed to Brevitas' step code: a constant, no arithmetic."""
    return RuleOut(Val(ctx.out_shape, ctx.module.qtype, False))


@rule("quant_ones_like")
def quant_ones_like(ctx: NodeCtx) -> RuleOut:
    """1 as a quantizer stores it, shaped like the input (a CIFG forget gate): a constant."""
    return RuleOut((Val(ctx.out_shape, ctx.module.qtype, False), None, None, None))


@rule("proxy_act")
def proxy_act(ctx: NodeCtx) -> RuleOut:
    """A Brevitas quantizer proxy (with its fused activation, if any): act + requant."""
    ops: list[Op] = []
    proxy = ctx.module.proxy
    kind = ctx.quant(activation_kind, proxy)
    value = _activation(ctx.arg(0), kind, ctx.quant(act_qtype, proxy), ops, ctx.out_shape[0])
    return RuleOut((value, None, None, None), ops)
