"""Value types flowing through a traced graph: an integer interval on a scale grid.

A `QType` says "every element is `scale * k` with integer k in [lo, hi]". Widths follow
from the interval, so width growth (a product needs the sum of its operands' widths, a
sum one more bit) falls out of interval arithmetic instead of per-op special cases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from gatesim.ops import FLOAT_BITS


def bits_for(lo: int, hi: int) -> int:
    """Two's-complement (or unsigned when lo >= 0) width holding every integer in [lo, hi]."""
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1


@dataclass(frozen=True)
class QType:
    """Integer interval [lo, hi] at `scale` (None scale = float tensor, no quantizer)."""

    lo: int
    hi: int
    scale: float | None

    @property
    def is_float(self) -> bool:
        return self.scale is None

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def bits(self) -> int:
        return FLOAT_BITS if self.is_float else bits_for(self.lo, self.hi)

    @classmethod
    def from_quantizer(cls, bits: int, signed: bool, scale: float, narrow: bool = False) -> QType:
        if signed:
            hi = 2 ** (bits - 1) - 1
            return cls(-hi if narrow else -hi - 1, hi, scale)
        return cls(0, 2**bits - 1, scale)

    @classmethod
    def const(cls, value: float, scale: float | None) -> QType:
        """A constant placed on `scale`'s grid (rounded if it does not sit on it)."""
        if scale is None:
            return FLOAT
        k = round(value / scale)
        return cls(k, k, scale)


FLOAT = QType(0, 0, None)


def _align(a: QType, b: QType) -> tuple[QType, QType]:
    """Bring both intervals onto the finer scale (integer shift for power-of-two ratios)."""
    fine = min(a.scale, b.scale)

    def on(t: QType) -> QType:
        ratio = t.scale / fine
        k = round(ratio) if abs(ratio - round(ratio)) < 1e-9 else math.ceil(ratio)
        return QType(t.lo * k, t.hi * k, fine)

    return on(a), on(b)


def add(a: QType, b: QType) -> QType:
    if a.is_float or b.is_float:
        return FLOAT
    a, b = _align(a, b)
    return QType(a.lo + b.lo, a.hi + b.hi, a.scale)


def neg(a: QType) -> QType:
    return a if a.is_float else QType(-a.hi, -a.lo, a.scale)


def sub(a: QType, b: QType) -> QType:
    return add(a, neg(b))


def mul(a: QType, b: QType) -> QType:
    if a.is_float or b.is_float:
        return FLOAT
    corners = (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)
    return QType(min(corners), max(corners), a.scale * b.scale)


def relu(a: QType) -> QType:
    return a if a.is_float else QType(max(a.lo, 0), max(a.hi, 0), a.scale)


def clamp(a: QType, lo: float, hi: float) -> QType:
    if a.is_float:
        return a
    return QType(max(a.lo, math.ceil(lo / a.scale)), min(a.hi, math.floor(hi / a.scale)), a.scale)


def dot(x: QType, w: QType, terms: int) -> QType:
    """A reduction of `terms` products x*w: the exact accumulator interval."""
    p = mul(x, w)
    return p if p.is_float else QType(p.lo * terms, p.hi * terms, p.scale)


def union(a: QType, b: QType) -> QType:
    if a.is_float or b.is_float:
        return FLOAT
    a, b = _align(a, b)
    return QType(min(a.lo, b.lo), max(a.hi, b.hi), a.scale)


def with_bits(a: QType, bits: int) -> QType:
    """The same grid clipped to a narrower (or forced) register width."""
    if a.is_float:
        return a
    if a.signed:
        return QType(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, a.scale)
    return QType(0, 2**bits - 1, a.scale)
