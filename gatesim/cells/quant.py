"""Brevitas quantizers for the built-in cells: power-of-two (fixed-point) scales throughout."""
from __future__ import annotations

from functools import lru_cache

from brevitas.quant.fixed_point import (
    Int8ActPerTensorFixedPointMinMaxInit,
    Int8WeightPerChannelFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPointMaxInit,
)
from brevitas.quant.scaled_int import IntBias

from gatesim.cells.config import CellConfig

BIAS_BITS = 32  # bias on the accumulator grid, as wide as any accumulator it joins


@lru_cache(maxsize=None)
def weight_quant(bits: int | None, per_channel: bool = False):
    """Narrow-range signed weights, radix point from the weights' max |w| (of the matrix, or
    of each output channel's row)."""
    if bits is None:
        return None
    if per_channel:
        return type(f"Int{bits}WeightPerChannelFixedPoint", (Int8WeightPerChannelFixedPoint,), {"bit_width": bits})
    return type(f"Int{bits}WeightFixedPoint", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


@lru_cache(maxsize=None)
def signed_act_quant(bits: int | None, max_val: float):
    """Signed activations on [-max_val, max_val) with a power-of-two step."""
    if bits is None:
        return None
    attrs = {"bit_width": bits, "min_val": -max_val, "max_val": max_val}
    return type(f"Int{bits}ActFixedPoint", (Int8ActPerTensorFixedPointMinMaxInit,), attrs)


@lru_cache(maxsize=None)
def unsigned_act_quant(bits: int | None, max_val: float):
    """Unsigned activations (gates) on [0, max_val) with a power-of-two step."""
    if bits is None:
        return None
    attrs = {"bit_width": bits, "max_val": max_val}
    return type(f"Uint{bits}ActFixedPoint", (Uint8ActPerTensorFixedPointMaxInit,), attrs)


@lru_cache(maxsize=None)
def bias_quant(quantized: bool):
    """Bias on the accumulator grid (scale = input scale x weight scale). Its register is the
    accumulator's (`acc_bits` narrows both, in counting and simulation alike)."""
    if not quantized:
        return None
    return type(f"Int{BIAS_BITS}Bias", (IntBias,), {"bit_width": BIAS_BITS})


class Quantizers:
    """The quantizer classes one cell uses, named by the tensor they quantize."""

    def __init__(self, cfg: CellConfig):
        a, g = cfg.act_bits, cfg.effective_gate_bits
        self.weight = weight_quant(cfg.weight_bits, cfg.weight_scaling == "per_channel")
        self.bias = bias_quant(cfg.weight_bits is not None and a is not None)
        self.input = signed_act_quant(a, cfg.input_range)
        self.state = signed_act_quant(a, cfg.state_range)
        self.cell = signed_act_quant(a, cfg.cell_range)
        self.preact = signed_act_quant(a, cfg.preact_range)
        self.gate = unsigned_act_quant(g, 1.0)
        self.relu_gate = unsigned_act_quant(g, cfg.gate_range)
