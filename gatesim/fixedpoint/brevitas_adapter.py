"""The one place that reads Brevitas internals: quantizer proxies -> QType."""
from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.fixed import FixedType
from gatesim.fixedpoint.qtype import QType


def _scalar(t) -> float:
    t = t.detach() if isinstance(t, torch.Tensor) else torch.as_tensor(t)
    if t.numel() != 1:
        # per-channel scales: the coarsest channel bounds the range, the finest sets the grid
        return float(t.max())
    return float(t)


def proxy_enabled(proxy) -> bool:
    return proxy is not None and bool(getattr(proxy, "is_quant_enabled", False))


@torch.no_grad()
def act_qtype(proxy) -> QType | None:
    """Output type of an activation/identity quantizer proxy, or None when it is off."""
    if not proxy_enabled(proxy):
        return None
    return QType.from_quantizer(
        int(_scalar(proxy.bit_width())), bool(proxy.is_signed), _scalar(proxy.scale()),
        narrow=bool(proxy.is_narrow_range),
    )


@torch.no_grad()
def weight_qtype(layer: nn.Module) -> QType | None:
    """The weight quantizer's full range on its scale: the width the hardware must hold."""
    proxy = getattr(layer, "weight_quant", None)
    if not proxy_enabled(proxy):
        return None
    qw = layer.quant_weight()
    return QType.from_quantizer(int(_scalar(qw.bit_width)), bool(qw.signed), _scalar(qw.scale),
                                narrow=bool(proxy.is_narrow_range))


@torch.no_grad()
def bias_qtype(layer: nn.Module, acc_scale: float | None) -> QType | None:
    """Interval of the bias after quantization onto the accumulator grid (`acc_scale`)."""
    bias = getattr(layer, "bias", None)
    if bias is None:
        return None
    proxy = getattr(layer, "bias_quant", None)
    if not proxy_enabled(proxy) or acc_scale is None:
        return QType(0, 0, None)
    bits = int(_scalar(proxy.tensor_quant.msb_clamp_bit_width_impl()))
    bound = 2 ** (bits - 1) - 1
    ints = torch.clamp(torch.round(bias / acc_scale), -bound - 1, bound)
    return QType(int(ints.min()), int(ints.max()), acc_scale)


def activation_kind(proxy) -> str | None:
    """Which nonlinearity a Brevitas act proxy applies before quantizing (None = identity)."""
    fused = getattr(proxy, "fused_activation_quant_proxy", None)
    impl = getattr(fused, "activation_impl", None)
    return ACTIVATION_KINDS.get(type(impl).__name__) if impl is not None else None


# class name of the activation module -> op kind (Brevitas wraps Sigmoid/Tanh in subclasses)
ACTIVATION_KINDS = {
    "ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Hardtanh": "max",
    "Identity": None, "ReLU6": "max", "Hardsigmoid": "lut", "Hardswish": "lut", "SiLU": "lut",
    "GELU": "lut", "LeakyReLU": "lut", "ELU": "lut", "Softsign": "lut",
}


@torch.no_grad()
def fixed_type(proxy) -> FixedType | None:
    """The register an activation quantizer writes: width, grid, signedness (None when off)."""
    if not proxy_enabled(proxy):
        return None
    return FixedType(width=int(_scalar(proxy.bit_width())), scale=_scalar(proxy.scale()),
                     signed=bool(proxy.is_signed), narrow=bool(proxy.is_narrow_range))


@torch.no_grad()
def linear_constants(layer: nn.Module, input_scale: float, upstream: FixedType | None = None) -> LinearConstants:
    """A QuantLinear's integer weights and bias exactly as Brevitas' forward computes them;
    `upstream`: the register its input arrives in when the layer has no input quantizer."""
    if upstream is not None:
        from brevitas.quant_tensor import IntQuantTensor

        quant_input = IntQuantTensor(torch.zeros(1, layer.in_features), torch.tensor(upstream.scale),
                                     torch.tensor(0.0), torch.tensor(float(upstream.width)), upstream.signed, False)
    else:
        quant_input = layer.input_quant(torch.zeros(1, layer.in_features))
    quant_weight = layer.quant_weight(quant_input)
    weights, weight_scale = on_one_grid(quant_weight.value, quant_weight.scale, "weight")
    bias = bias_scale = None
    if layer.bias is not None:
        quant_bias = layer.bias_quant(layer.bias, quant_input, quant_weight)
        bias, bias_scale = on_one_grid(getattr(quant_bias, "value", quant_bias), getattr(quant_bias, "scale", None),
                                       "bias")
    return LinearConstants(weights, weight_scale, bias, bias_scale)


def on_one_grid(value: torch.Tensor, scale, what: str) -> tuple[np.ndarray, float]:
    """A quantized tensor as whole numbers on one grid, and that grid. Per-channel scales are
    put on the coarsest grid that divides every channel's scale (scales are floats, so dyadic
    rationals, and one exists): each channel's integers times its scale's multiple, exactly,
    so accumulators and requantization stay exact per channel. Refused when that needs more
    than 53 bits."""
    if scale is None:
        raise GatesimError(f"{what} is not quantized: the integer simulator needs a {what} quantizer")
    scale = torch.as_tensor(scale).detach().double()
    ints = torch.round(value.detach().double() / scale)
    distinct = {Fraction(float(s)) for s in scale.flatten().tolist()}
    if len(distinct) == 1:
        return ints.numpy(), float(next(iter(distinct)))
    common = math.lcm(*(f.denominator for f in distinct))
    grid = Fraction(math.gcd(*(int(f * common) for f in distinct)), common)
    multiples = torch.as_tensor(np.vectorize(lambda s: float(Fraction(s) / grid))(scale.numpy()))
    out = (ints * multiples).numpy()
    if float(np.abs(out).max(initial=0)) >= 2.0 ** 53:
        raise GatesimError(f"{what} has per-channel scales {float(min(distinct)):g}..{float(max(distinct)):g}: on one "
                           f"grid ({float(grid):g}) its integers need more than 53 bits; the integer simulator "
                           "cannot hold them exactly")
    return out, float(grid)


@torch.no_grad()
def act_table(proxy, in_scale: float, lo: int, hi: int, before=()) -> tuple[np.ndarray, float]:
    """The proxy (activation + quantizer) evaluated on every input integer in [lo, hi], after
    the float functions `before`: a 2^k-entry table, exact by construction because torch and
    Brevitas compute each entry the way the module does."""
    grid = torch.arange(lo, hi + 1, dtype=torch.float32) * in_scale
    for fn in before:
        grid = fn(grid)
    out = proxy(grid)
    scale = _exact_scalar(out.scale, "activation output")
    return _ints(out.value, scale), scale


class LinearConstants(NamedTuple):
    weights: np.ndarray  # (out, in) whole numbers
    weight_scale: float
    bias: np.ndarray | None
    bias_scale: float | None


def _exact_scalar(t, what: str) -> float:
    if t is None:
        raise GatesimError(f"{what} is not quantized: the integer simulator needs a {what} quantizer")
    t = torch.as_tensor(t)
    if t.numel() != 1 and not bool((t == t.flatten()[0]).all()):
        raise GatesimError(f"{what} has per-channel scales; the integer simulator handles "
                           "per-tensor scales")
    return float(t.flatten()[0])


def _ints(value: torch.Tensor, scale: float) -> np.ndarray:
    ints = torch.round(value.double() / scale)
    return ints.numpy()
