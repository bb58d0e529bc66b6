"""Simulation rules: one per torch op / module kind, each compiling an fx node to a kernel.

A rule runs once, before any data flows: it reads the node's quantizers and the grids
(`Meta`) of its arguments, works out every grid ratio, table and register, and returns a
kernel doing only NumPy arithmetic on whole numbers. The kernel receives the node's
arguments as torch would, with arrays in place of tensors. Lookup mirrors the counting
rules; an fx node with no rule is an error that names it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.brevitas_adapter import (
    act_table, activation_kind, fixed_type, linear_constants, proxy_enabled,
)
from gatesim.fixedpoint.fixed import Clamp, FixedType
from gatesim.fixedpoint.qtype import QType, bits_for
from gatesim.ops import NONLINEAR
from gatesim.simulate.exact import PATHS, ExactMatmul, carrier
from gatesim.simulate.values import Compiled, Meta, Recorder
from gatesim.trace.keys import registrar
from gatesim.trace.values import const_val

MAX_TABLE_BITS = 16  # a univariate op on a wider input is not a table any hardware keeps


@dataclass(frozen=True)
class SimOptions:
    """Registers narrower than the proven widths, and what they do when a value does not fit;
    `rounding`: (fx node, bits) pairs whose table input loses that many least significant bits
    first, rounded half up as concrete-python's round_bit_pattern does (see round_lsbs)."""

    acc_bits: int | None = None
    state_bits: int | None = None
    overflow: str = "wrap"
    rounding: tuple[tuple[str, int], ...] = ()


@dataclass
class SimCtx:
    """One fx node as a simulation rule sees it: Metas in place of tensor arguments."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    static: Any  # the node's value in the counting pass (Val, tuple of Vals or a size)
    module: nn.Module | None
    options: SimOptions
    recorder: Recorder

    def arg(self, i: int, key: str | None = None, default: Any = None) -> Any:
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(key, default) if key else default

    def error(self, message: str) -> GatesimError:
        return GatesimError(f"node {self.name!r}: {message}")

    def observer(self, kind: str) -> Callable[[np.ndarray], np.ndarray]:
        key, recorder = (self.name, kind), self.recorder
        return lambda data: recorder.observe(key, data)

    def narrower(self, kind: str, meta: Meta, bits: int | None) -> Callable[[np.ndarray], np.ndarray] | None:
        """Fit values into a `bits`-wide register on meta's grid, counting what overflows."""
        if bits is None:
            return None
        signed = meta.qtype is None or meta.qtype.signed
        register = FixedType(width=bits, scale=meta.scale, signed=signed, overflow=self.options.overflow)
        key, recorder = (self.name, kind), self.recorder

        def narrow(data: np.ndarray) -> np.ndarray:
            fitted, over = register.fit(data)
            recorder.overflowed(key, over, bits)
            return fitted

        return narrow


SimRule = Callable[[SimCtx], Compiled]
SIM_RULES: dict[str, SimRule] = {}  # op name (gatesim.trace.keys) -> simulation rule
sim_rule = registrar(SIM_RULES)


# ----------------------------------------------------------------------------- helpers


def round_lsbs(data: np.ndarray, lsbs: int) -> np.ndarray:
    """x with its `lsbs` lowest bits rounded away, half up: floor((x + 2^(l-1)) / 2^l) * 2^l,
    concrete-python's round_bit_pattern (the top of a range may round one step past it)."""
    if lsbs <= 0:
        return data
    unit = 1 << lsbs
    return ((data + (unit >> 1)) // unit) * unit


def unchanged(data: np.ndarray) -> np.ndarray:
    return data


def chain(*steps: Callable | None) -> Callable[[np.ndarray], np.ndarray]:
    """Compose the non-None steps left to right (`unchanged` when there are none)."""
    steps = [s for s in steps if s is not None]
    if not steps:
        return unchanged
    if len(steps) == 1:
        return steps[0]

    def run(data: np.ndarray) -> np.ndarray:
        for step in steps:
            data = step(data)
        return data

    return run


def register_qtype(t: FixedType) -> QType:
    return QType(t.min_int, t.max_int, t.scale)


def requant_step(ctx: SimCtx, x: Meta, target: FixedType | None) -> tuple[Callable | None, Meta]:
    """Round and clip x onto a quantizer's register, skipped when it provably changes nothing."""
    if target is None:
        return None, x
    out = Meta(target.scale, x.is_var, False, register_qtype(target))
    t = x.qtype
    if t is not None and t.scale == target.scale and target.min_int <= t.lo and t.hi <= target.max_int:
        return None, out
    return target.requantizer(x.scale), out


def scalar_meta(value: float) -> tuple[Meta, float]:
    """A Python number as torch applies it (float32): whole number k on a power-of-two grid."""
    t = const_val(value).qtype
    if t.is_float:
        raise GatesimError(f"the constant {value} has no integer form")
    return Meta(t.scale, False, False, t), int(t.lo)


def operand(x: Any) -> tuple[Meta, Any]:
    """(Meta, constant data or None): tensors arrive at run time, numbers are baked now."""
    if isinstance(x, Meta):
        return x, None
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return scalar_meta(x)
    raise GatesimError(f"an operand is a {type(x).__name__}, neither a quantized tensor nor a number "
                       "(a float tensor attribute of the module? quantize it first)")


# Two grids a float32 rounding apart (Brevitas multiplies scales in float32, the simulator in
# float64) are one grid; float32 has 24 bits, so any real difference is far larger than this.
SAME_GRID_TOLERANCE = 2.0 ** -20


def whole_ratio(coarse: float, fine: float) -> int | None:
    """k with coarse == k * fine, up to float32 rounding of either scale (None: no such k)."""
    ratio = Fraction(coarse) / Fraction(fine)
    if ratio.denominator == 1:
        return ratio.numerator
    k = round(ratio)
    return k if k >= 1 and abs(ratio - k) <= SAME_GRID_TOLERANCE * ratio else None


def grid_factor(ctx: SimCtx, coarse: float, fine: float) -> int:
    """Integer k with coarse == k * fine: aligning grids must stay exact (grids off only by a
    float rounding are one grid; on such grids no float run is exact and `bit_exact` says so)."""
    k = whole_ratio(coarse, fine)
    if k is None:
        raise ctx.error(f"combines grids {coarse:g} and {fine:g} whose ratio {coarse / fine:g} is not "
                        "a whole number; the integer simulator needs one grid to divide the other")
    return k


def aligned_bits(m: Meta, fine: float) -> int:
    """Width of an operand once moved onto the grid `fine` (unknown range: assume 53)."""
    if m.qtype is None or m.qtype.is_float:
        return 53
    k = whole_ratio(m.scale, fine) or int(Fraction(m.scale) / Fraction(fine))
    return bits_for(m.qtype.lo * k, m.qtype.hi * k)


def aligner(ctx: SimCtx, m: Meta, const: Any, fine: float) -> tuple[Callable | None, Any]:
    """(kernel step or None when nothing moves, baked constant) putting one operand on `fine`."""
    k = grid_factor(ctx, m.scale, fine)
    if const is not None:
        return None, const * k
    return ((lambda d: d * k) if k != 1 else None), None


def _swapped(fn: Callable) -> Callable:
    return lambda a, b: fn(b, a)


# ----------------------------------------------------------------------------- linear layers


@sim_rule("quant_linear")
def quant_linear(ctx: SimCtx) -> Compiled:
    """QuantLinear: requant input, exact integer x @ W^T, + bias on the accumulator grid."""
    m = ctx.module
    if not isinstance(m, nn.Linear) and type(m).__name__ != "QuantLinear":
        raise ctx.error(f"{type(m).__name__}: only linear layers have a simulation rule")
    if not proxy_enabled(getattr(m, "weight_quant", None)):
        raise ctx.error(f"{type(m).__name__} needs a weight quantizer for the integer simulator")
    upstream = None
    if proxy_enabled(getattr(m, "input_quant", None)):
        pre, x = requant_step(ctx, ctx.arg(0), fixed_type(m.input_quant))
    else:  # its input arrives quantized (an upstream QuantIdentity): take it on that grid
        pre, x = None, ctx.arg(0)
        if x.qtype is None or x.qtype.is_float:
            raise ctx.error(f"{type(m).__name__} has no input quantizer and its input is not quantized "
                            "upstream: quantize it (input_quant=..., or a QuantIdentity before it)")
        upstream = FixedType(bits_for(x.qtype.lo, x.qtype.hi), x.scale, x.qtype.lo < 0)
    consts = linear_constants(m, x.scale, upstream)
    acc = Meta(x.scale * consts.weight_scale, x.is_var, True)
    bias = None
    if consts.bias is not None:
        if consts.bias_scale < acc.scale:
            raise ctx.error(f"bias grid {consts.bias_scale:g} is finer than the accumulator's "
                            f"{acc.scale:g}; quantize the bias on the accumulator grid (IntBias)")
        bias = consts.bias * grid_factor(ctx, consts.bias_scale, acc.scale)
    extra = int(np.abs(bias).max(initial=0)) if bias is not None else 0
    matmul = ExactMatmul(consts.weights, x.qtype.lo, x.qtype.hi, where=f"node {ctx.name!r}", extra=extra)
    bias = bias.astype(matmul.dtype) if bias is not None else None
    narrow = ctx.narrower("mac", acc, ctx.options.acc_bits)
    post, out = requant_step(ctx, acc, fixed_type(getattr(m, "output_quant", None)))
    observe = ctx.observer("mac")

    def kernel(data, *_, **__):
        if pre is not None:
            data = pre(data)
        data = matmul(data)
        if bias is not None:
            data += bias  # the matmul result is a fresh array
        data = observe(data)
        if narrow is not None:
            data = narrow(data)
        return post(data) if post is not None else data

    info = {"matmul_path": matmul.path}
    if pre is None and post is None:  # the same affine map with clear integer weights (HE export)
        scaled_bias = np.zeros(consts.weights.shape[0]) if bias is None else bias
        info["affine"] = (consts.weights.T.astype(np.int64), np.asarray(scaled_bias).astype(np.int64))
    return Compiled(out, kernel, rowwise=True, info=info)


def generic_matmul(ctx: SimCtx, a: Meta, b: Meta, k: int) -> Callable:
    """a @ b on whole numbers with both operands known only at run time: dtype from the bound."""
    bound = (a.bound or 0) * (b.bound or 0) * k
    for _, limit, dtype in PATHS[1:]:
        if bound < limit:
            return lambda x, y: np.matmul(x.astype(dtype, copy=False), y.astype(dtype, copy=False))
    raise ctx.error(f"a dot product may reach {bound}, beyond 63 bits")


@sim_rule("float_linear")
def float_linear(ctx: SimCtx) -> Compiled:
    """A float torch.nn.Linear has no integer datapath: refused, naming the node."""
    raise ctx.error("a float torch.nn.Linear has no quantizers, so it has no integer datapath to "
                    "simulate; use brevitas.nn.QuantLinear (with weight and input quantizers)")


@sim_rule("matmul")
def matmul(ctx: SimCtx) -> Compiled:
    """a @ b: exact integer products summed exactly; var x var is the `mul` kind."""
    a, b = ctx.arg(0), ctx.arg(1)
    if not (isinstance(a, Meta) and isinstance(b, Meta)):
        raise ctx.error("matmul with a Python number")
    kind = "mul" if a.is_var and b.is_var else "mac"
    observe = ctx.observer(kind)
    out = Meta(a.scale * b.scale, a.is_var or b.is_var, True)
    narrow = ctx.narrower(kind, out, ctx.options.acc_bits)
    cache: dict[int, Callable] = {}

    def kernel(x, y, *_, **__):
        fn = cache.get(x.shape[-1])
        if fn is None:
            fn = cache[x.shape[-1]] = generic_matmul(ctx, a, b, x.shape[-1])
        data = observe(fn(x, y))
        return narrow(data) if narrow is not None else data

    return Compiled(out, kernel)


@sim_rule("functional_linear")
def functional_linear(ctx: SimCtx) -> Compiled:
    """F.linear(x, W, b) with W, b on integer grids (Brevitas' own step code, via the adapter)."""
    x, w, b = ctx.arg(0), ctx.arg(1, "weight"), ctx.arg(2, "bias")
    acc_scale = x.scale * w.scale
    kb = None
    if isinstance(b, Meta):
        if b.scale < acc_scale:
            raise ctx.error(f"bias grid {b.scale:g} is finer than the accumulator's {acc_scale:g}")
        kb = grid_factor(ctx, b.scale, acc_scale)
    out = Meta(acc_scale, x.is_var, True)
    narrow = ctx.narrower("mac", out, ctx.options.acc_bits)
    observe = ctx.observer("mac")
    cache: dict[int, Callable] = {}

    def kernel(data, weight, bias=None, *_, **__):
        fn = cache.get(data.shape[-1])
        if fn is None:
            fn = cache[data.shape[-1]] = generic_matmul(ctx, x, w, data.shape[-1])
        acc = fn(data, weight.T)
        if kb is not None:
            acc = acc + bias * kb
        acc = observe(acc)
        return narrow(acc) if narrow is not None else acc

    return Compiled(out, kernel, rowwise=True)


# ----------------------------------------------------------------------------- activations

# ReLU is arithmetic (a clamp at zero); every other nonlinearity is simulated as a table
TABLE_KINDS = NONLINEAR - {"relu"}


def activation(ctx: SimCtx, x: Meta, entry: FixedType | None, kind: str | None,
               proxy) -> tuple[Callable, Meta]:
    """Requantize onto `entry` (a layer's input quantizer, if any), then apply one Brevitas
    activation proxy: identity/ReLU as arithmetic, every other function as a table."""
    source_scale = x.scale
    if x.pending:
        return pending_table(ctx, x, entry, kind, proxy)
    pre, x = requant_step(ctx, x, entry)
    target = fixed_type(proxy)
    if target is None:
        if kind in TABLE_KINDS:
            raise ctx.error(f"{kind} output is not quantized; the integer simulator needs a "
                            "quantizer on it (e.g. brevitas QuantSigmoid with act_quant)")
        if kind == "relu":
            return chain(pre, relu_step), Meta(x.scale, x.is_var, False, _relu_q(x.qtype))
        return chain(pre), x
    if kind is None:
        post, out = requant_step(ctx, x, target)
        if pre is None and post is None:
            return chain(), out  # already on this register: nothing happens, nothing to observe
        return chain(pre, post, ctx.observer("requant")), out
    if kind == "relu":
        post, out = requant_step(ctx, Meta(x.scale, x.is_var, False, _relu_q(x.qtype)), target)
        return chain(pre, relu_step, post, ctx.observer("relu")), out
    table, lo, scale = build_table(ctx, proxy, x, kind)
    out = Meta(scale, x.is_var, False, QType(int(table.min()), int(table.max()), scale))
    # the table spans the whole input register, so take's own clipping is the requant's clip
    rescale = entry.rescaler(source_scale) if pre is not None else (lambda d: d)
    observe = ctx.observer(kind)

    def lookup(data: np.ndarray) -> np.ndarray:
        index = rescale(data)
        index = np.subtract(index, lo, out=index if index is not data else None)
        return observe(table.take(index.astype(np.intp), mode="clip"))

    return lookup, out


def pending_table(ctx: SimCtx, x: Meta, entry: FixedType | None, kind: str | None,
                  proxy) -> tuple[Callable, Meta]:
    """Float functions then this quantizer, on an integer input: one table."""
    names = " -> ".join(name for name, _ in x.pending)
    if entry is not None or fixed_type(proxy) is None:
        raise ctx.error(f"the real-valued output of {names} must go straight into an output "
                        "quantizer (QuantIdentity or an act_quant) to be simulated in integers")
    table, lo, scale = build_table(ctx, proxy, x, x.pending[-1][0], tuple(fn for _, fn in x.pending))
    observe = ctx.observer(x.pending[-1][0] if kind is None else kind)
    out = Meta(scale, x.is_var, False, QType(int(table.min()), int(table.max()), scale))
    return (lambda data: observe(table.take((data - lo).astype(np.intp)))), out


def build_table(ctx: SimCtx, proxy, x: Meta, kind: str, before=()) -> tuple[np.ndarray, int, float]:
    t = x.qtype
    if t is None or t.is_float:
        raise ctx.error(f"{kind} input has no known integer range")
    if t.hi - t.lo + 1 > 2**MAX_TABLE_BITS:
        raise ctx.error(f"{kind} input is {t.bits} bits wide; a table holds at most "
                        f"{MAX_TABLE_BITS}-bit inputs: quantize its input (input_quant)")
    table, scale = act_table(proxy, x.scale, t.lo, t.hi, before)
    return table.astype(carrier(bits_for(int(table.min()), int(table.max())))), t.lo, scale


relu_step = Clamp(0, None)


def _relu_q(t: QType | None) -> QType | None:
    return None if t is None else QType(max(t.lo, 0), max(t.hi, 0), t.scale)


@sim_rule("quant_activation")
def quant_activation(ctx: SimCtx) -> Compiled:
    """QuantIdentity/QuantReLU/QuantSigmoid/QuantTanh/...: input requant, activation, requant."""
    m = ctx.module
    fn, out = activation(ctx, ctx.arg(0), fixed_type(getattr(m, "input_quant", None)),
                         activation_kind(m.act_quant), m.act_quant)
    return Compiled(out, lambda data, *_, **__: fn(data), rowwise=True, info={"univariate": fn})


quant_activation.accepts_pending = True


@sim_rule("proxy_act")
def proxy_act(ctx: SimCtx) -> Compiled:
    """A Brevitas quantizer proxy inside Brevitas' own step code: activation + requant."""
    proxy = ctx.module.proxy
    fn, out = activation(ctx, ctx.arg(0), None, activation_kind(proxy), proxy)
    return Compiled((out, None, None, None), lambda data, *_, **__: (fn(data), None, None, None),
                    rowwise=True, info={"univariate": fn, "tuple_output": True})


proxy_act.accepts_pending = True


@sim_rule("relu")
def relu(ctx: SimCtx) -> Compiled:
    """relu(x) = max(x, 0) on the integers."""
    x = ctx.arg(0)
    observe = ctx.observer("relu")
    fn = chain(relu_step, observe)
    return Compiled(Meta(x.scale, x.is_var, False, _relu_q(x.qtype)),
                    lambda data, *_, **__: fn(data), rowwise=True, info={"univariate": fn})


def _deferred(kind: str, fn: Callable) -> SimRule:
    def defer(ctx: SimCtx) -> Compiled:
        x = ctx.arg(0)
        out = replace(x, acc=False, pending=x.pending + ((kind, fn),))
        return Compiled(out, lambda data, *_, **__: data, rowwise=True)

    defer.__doc__ = f"float {kind}: deferred into the table of the quantizer that follows it"
    defer.accepts_pending = True
    return defer


sim_rule("sigmoid")(_deferred("sigmoid", torch.sigmoid))
sim_rule("tanh")(_deferred("tanh", torch.tanh))


@sim_rule("identity", "copy")
def identity(ctx: SimCtx) -> Compiled:
    """No arithmetic: the value passes through (dropout is off at inference)."""
    return Compiled(ctx.arg(0), lambda data, *_, **__: data, rowwise=True)


def clamp_bounds(ctx: SimCtx, x: Meta, lo: float | None, hi: float | None) -> tuple[float | None, float | None]:
    """Real clamp bounds as integers on x's grid; off-grid bounds would leave the grid."""
    out = []
    for bound in (lo, hi):
        if bound is None:
            out.append(None)
            continue
        k = Fraction(float(np.float32(bound))) / Fraction(x.scale)
        if k.denominator != 1:
            raise ctx.error(f"clamp bound {bound} is not on the input grid {x.scale:g}")
        out.append(float(k))
    return out[0], out[1]


def _clamp(ctx: SimCtx, x: Meta, lo: float | None, hi: float | None) -> Compiled:
    lo_k, hi_k = clamp_bounds(ctx, x, lo, hi)
    observe = ctx.observer("max")
    t = x.qtype
    if t is not None and not t.is_float:
        t = QType(max(t.lo, int(lo_k)) if lo_k is not None else t.lo,
                  min(t.hi, int(hi_k)) if hi_k is not None else t.hi, t.scale)
    fn = chain(Clamp(lo_k, hi_k), observe)
    return Compiled(Meta(x.scale, x.is_var, False, t), lambda data, *_, **__: fn(data), rowwise=True,
                    info={"univariate": fn})


@sim_rule("clamp")
def clamp(ctx: SimCtx) -> Compiled:
    """clamp(x, lo, hi) with bounds on x's grid."""
    return _clamp(ctx, ctx.arg(0), ctx.arg(1, "min"), ctx.arg(2, "max"))


@sim_rule("hardtanh_module")
def hardtanh_module(ctx: SimCtx) -> Compiled:
    """Hardtanh/ReLU6 modules: a clamp to the module's bounds."""
    m = ctx.module
    return _clamp(ctx, ctx.arg(0), m.min_val, m.max_val)


@sim_rule("hardtanh")
def hardtanh(ctx: SimCtx) -> Compiled:
    """F.hardtanh(x, min_val=-1, max_val=1)."""
    return _clamp(ctx, ctx.arg(0), ctx.arg(1, "min_val", -1.0), ctx.arg(2, "max_val", 1.0))


def _extremum(fn: Callable) -> SimRule:
    def apply(ctx: SimCtx) -> Compiled:
        return _binary_rule(ctx, "max", fn)

    apply.__doc__ = f"{fn.__name__} of two tensors on a common grid"
    return apply


sim_rule("maximum")(_extremum(np.maximum))
sim_rule("minimum")(_extremum(np.minimum))


# ----------------------------------------------------------------------------- arithmetic


def _binary_rule(ctx: SimCtx, kind: str, fn: Callable, swap: bool = False) -> Compiled:
    """a (op) b after both operands move onto the finer of their grids."""
    if ctx.kwargs.get("alpha", 1) != 1:
        raise ctx.error("add/sub with alpha is not simulated; scale the operand instead")
    (ma, ca), (mb, cb) = operand(ctx.arg(0)), operand(ctx.arg(1, "other"))
    fine = min(ma.scale, mb.scale)
    step_a, ca = aligner(ctx, ma, ca, fine)
    step_b, cb = aligner(ctx, mb, cb, fine)
    out = Meta(fine, ma.is_var or mb.is_var, ma.acc or mb.acc)
    narrow = ctx.narrower(kind, out, ctx.options.acc_bits) if out.acc else None
    observe = ctx.observer(kind)
    work_bits = max(aligned_bits(ma, fine), aligned_bits(mb, fine))
    if swap:
        fn = _swapped(fn)
    if ca is None and cb is None:
        if step_a is None and step_b is None:  # the common case: one grid, no constant
            compute = fn
        else:
            def compute(a, b):
                return fn(a if step_a is None else step_a(a), b if step_b is None else step_b(b))
    elif ca is not None:
        def compute(_a, b):
            return fn(ca, b if step_b is None else step_b(b))
    else:
        def compute(a, _b):
            return fn(a if step_a is None else step_a(a), cb)

    def kernel(a, b=None, *_, other=None, **__):
        data = observe(compute(a, other if b is None else b))
        return narrow(data) if narrow is not None else data

    return Compiled(out, kernel, rowwise=True, info={"work_bits": work_bits})


def _add_rule(fn: Callable, swap: bool = False) -> SimRule:
    def apply(ctx: SimCtx) -> Compiled:
        return _binary_rule(ctx, "add", fn, swap)

    apply.__doc__ = "an integer add/subtract on the finer grid"
    return apply


sim_rule("add")(_add_rule(np.add))
sim_rule("sub")(_add_rule(np.subtract))
sim_rule("rsub")(_add_rule(np.subtract, swap=True))


@sim_rule("mul")
def multiply(ctx: SimCtx) -> Compiled:
    """a * b: integer product on the product grid (var x var is the `mul` kind)."""
    (ma, ca), (mb, cb) = operand(ctx.arg(0)), operand(ctx.arg(1, "other"))
    kind = "mul" if ma.is_var and mb.is_var else "mul_const"
    out = Meta(ma.scale * mb.scale, ma.is_var or mb.is_var)
    observe = ctx.observer(kind)
    if ca is not None:  # number * tensor
        return Compiled(out, lambda _a, b, *_, **__: observe(b * ca), rowwise=True)
    if cb is not None:  # tensor * number
        return Compiled(out, lambda a, *_, **__: observe(a * cb), rowwise=True)
    info = {}
    signs = [m.qtype is not None and not m.qtype.is_float and m.qtype.lo >= 0 for m in (ma, mb)]
    if signs[0] != signs[1]:  # unsigned x signed: traced for HE with the unsigned side centred
        centre = [m.qtype for m in (ma, mb)][signs.index(True)]
        shift = (centre.lo + centre.hi + 1) // 2
        first_unsigned = signs[0]

        def centred(a, b=None, *_, other=None, **__):
            b = other if b is None else b
            u, v = (a, b) if first_unsigned else (b, a)
            return (u - shift) * v + v * shift

        info["he"] = centred  # same integers; concrete-python 2.11 errs on mixed-sign products
    return Compiled(out, lambda a, b=None, *_, other=None, **__: observe(a * (other if b is None else b)),
                    rowwise=True, info=info)


@sim_rule("div")
def divide(ctx: SimCtx) -> Compiled:
    """x / c for a power-of-two c: the same integers on a finer grid (no arithmetic)."""
    x, c = ctx.arg(0), ctx.arg(1, "other")
    if not isinstance(c, (int, float)) or c == 0:
        raise ctx.error("division is simulated only by a nonzero Python number")
    mantissa, _ = math.frexp(abs(c))
    if mantissa != 0.5:
        raise ctx.error(f"division by {c} is not a shift; the integer simulator divides by "
                        "powers of two only")
    sign = -1.0 if c < 0 else 1.0
    out = Meta(x.scale / abs(c), x.is_var, x.acc)
    return Compiled(out, (lambda data, *_, **__: data) if sign > 0 else (lambda data, *_, **__: -data),
                    rowwise=True)


@sim_rule("neg")
def negate(ctx: SimCtx) -> Compiled:
    """-x."""
    x = ctx.arg(0)
    observe = ctx.observer("add")
    return Compiled(Meta(x.scale, x.is_var, x.acc), lambda data, *_, **__: observe(-data), rowwise=True)


# ----------------------------------------------------------------------------- structure


@sim_rule("getitem")
def getitem(ctx: SimCtx) -> Compiled:
    """A tuple element, or a tensor slice (row-wise when dim 0 is taken whole)."""
    src, index = ctx.arg(0), ctx.arg(1)
    if isinstance(src, tuple):
        return Compiled(src[index], lambda value, i, *_: value[i], rowwise=True)
    if not isinstance(src, Meta):
        return Compiled(None, const=ctx.static)
    rowwise = isinstance(index, tuple) and index and index[0] == slice(None)
    return Compiled(src, lambda data, i, *_: data[i], rowwise=bool(rowwise))


def _parts(ctx: SimCtx, src: Meta) -> tuple[Meta, ...]:
    return tuple(src for _ in ctx.static)


def _dim_rowwise(dim: int) -> bool:
    return dim != 0


@sim_rule("chunk")
def chunk(ctx: SimCtx) -> Compiled:
    """torch.chunk: pieces of ceil(n / chunks) along dim; views, no arithmetic."""
    src, chunks, dim = ctx.arg(0), ctx.arg(1, "chunks"), ctx.arg(2, "dim", 0)

    def kernel(data, *_, **__):
        n = data.shape[dim]
        size = -(-n // chunks)
        lead = (slice(None),) * (dim % data.ndim)
        return tuple(data[(*lead, slice(i, i + size))] for i in range(0, n, size))

    return Compiled(_parts(ctx, src), kernel, rowwise=_dim_rowwise(dim))


@sim_rule("split")
def split(ctx: SimCtx) -> Compiled:
    """torch.split by a piece size or a list of sizes."""
    src, sizes, dim = ctx.arg(0), ctx.arg(1, "split_size_or_sections"), ctx.arg(2, "dim", 0)

    def kernel(data, *_, **__):
        n = data.shape[dim]
        edges = list(np.cumsum(sizes)[:-1]) if isinstance(sizes, (list, tuple)) else range(sizes, n, sizes)
        return tuple(np.split(data, edges, axis=dim))

    return Compiled(_parts(ctx, src), kernel, rowwise=_dim_rowwise(dim))


@sim_rule("unbind")
def unbind(ctx: SimCtx) -> Compiled:
    """torch.unbind: slices along dim."""
    src, dim = ctx.arg(0), ctx.arg(1, "dim", 0)
    return Compiled(_parts(ctx, src),
                    lambda data, *_, **__: tuple(np.moveaxis(data, dim, 0)), rowwise=_dim_rowwise(dim))


def _join(fn: Callable) -> SimRule:
    def apply(ctx: SimCtx) -> Compiled:
        parts = [operand(p) for p in ctx.arg(0, "tensors")]
        dim = ctx.arg(1, "dim", 0)
        fine = min(m.scale for m, _ in parts)
        steps = [aligner(ctx, m, c, fine) for m, c in parts]
        out = Meta(fine, any(m.is_var for m, _ in parts))

        def kernel(tensors, *_, **__):
            return fn([c if c is not None else t if step is None else step(t)
                       for (step, c), t in zip(steps, tensors)], axis=dim)

        return Compiled(out, kernel, rowwise=_dim_rowwise(dim))

    apply.__doc__ = f"{fn.__name__} on the finest grid of the parts: data movement only"
    return apply


sim_rule("cat")(_join(np.concatenate))
sim_rule("stack")(_join(np.stack))


def _view(fn: Callable) -> SimRule:
    def apply(ctx: SimCtx) -> Compiled:
        return Compiled(ctx.arg(0), lambda data, *args, **kwargs: fn(data, *args, **kwargs))

    apply.__doc__ = "shape only: no arithmetic"
    return apply


def _flatten(data, start_dim=0, end_dim=-1):
    end = end_dim % data.ndim
    return data.reshape(*data.shape[:start_dim], -1, *data.shape[end + 1:])


def _shape_args(args) -> tuple:
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


for _name, _fn in (
    ("reshape", lambda d, *s, **_: d.reshape(_shape_args(s))),
    ("flatten", _flatten),
    ("squeeze", lambda d, dim=None: np.squeeze(d, axis=dim)),
    ("unsqueeze", lambda d, dim: np.expand_dims(d, dim)),
    ("transpose", lambda d, a, b: np.swapaxes(d, a, b)),
    ("permute", lambda d, *p: np.transpose(d, _shape_args(p))),
    ("t", lambda d: d.T),
    ("expand", lambda d, *s: np.broadcast_to(
        d, tuple(o if n == -1 else n for n, o in zip(_shape_args(s), (1,) * (len(_shape_args(s)) - d.ndim) + d.shape)))),
    ("expand_as", lambda d, other: np.broadcast_to(d, other.shape)),
):
    sim_rule(_name)(_view(_fn))


@sim_rule("size")
def size(ctx: SimCtx) -> Compiled:
    """Sizes and attributes are known before the run."""
    return Compiled(None, const=ctx.static)


def _constant_like(value: int) -> SimRule:
    def apply(ctx: SimCtx) -> Compiled:
        return Compiled(Meta(1.0, False, False, QType(value, value, 1.0)),
                        lambda data, *_, **__: np.full(data.shape, float(value)), rowwise=True)

    apply.__doc__ = f"a constant {value} shaped like the input"
    return apply


sim_rule("zeros_like")(_constant_like(0))
sim_rule("ones_like")(_constant_like(1))


@sim_rule("quant_ones_like")
def quant_ones_like(ctx: SimCtx) -> Compiled:
    """1 as a quantizer stores it, shaped like the input (a CIFG forget gate): its whole number."""
    t = ctx.module.qtype
    return Compiled((Meta(t.scale, False, False, t), None, None, None),
                    lambda data, *_, **__: (np.full(data.shape, float(t.lo)), None, None, None), rowwise=True)


@sim_rule("const_tensor")
def const_tensor(ctx: SimCtx) -> Compiled:
    """A quantized weight or bias handed to Brevitas' step code: whole numbers on its grid."""
    t = ctx.module.qtype
    if t.is_float:
        raise ctx.error("a constant that is not quantized")
    if ctx.module.refusal:
        raise ctx.error(ctx.module.refusal)
    ints = ctx.module.ints
    return Compiled(Meta(t.scale, False, False, t), lambda *_, **__: ints)
