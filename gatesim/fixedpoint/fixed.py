"""A register format: width, grid, signedness, rounding and overflow behaviour.

`QType` (qtype.py) says which integers a value can take; `FixedType` says how a register
stores them: what happens to a value that must be rounded onto its grid or that does not fit.
Integer arrays here are NumPy arrays holding whole numbers (int64, or float64 while every
value stays below 2**53, where float arithmetic on whole numbers is exact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable, Literal

import numpy as np

Rounding = Literal["half_even", "floor"]
Overflow = Literal["wrap", "saturate"]


def frac_bits_of(scale: float) -> int | None:
    """n when scale == 2**-n, else None (the grid is not a fixed-point one)."""
    mantissa, exponent = math.frexp(scale)
    return 1 - exponent if mantissa == 0.5 else None


@dataclass(frozen=True)
class FixedType:
    """`width` bits on the grid `scale` (2**-frac_bits for fixed point); Brevitas rounds half
    to even (torch.round) and clips, which is `half_even` + `saturate`."""

    width: int
    scale: float
    signed: bool = True
    narrow: bool = False
    rounding: Rounding = "half_even"
    overflow: Overflow = "saturate"

    def __post_init__(self):
        if not 1 <= self.width <= 63:
            raise ValueError(f"width {self.width}: a register holds 1..63 bits")
        if not self.scale > 0:
            raise ValueError(f"scale {self.scale}: must be > 0")

    @property
    def frac_bits(self) -> int | None:
        return frac_bits_of(self.scale)

    @property
    def min_int(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.width - 1)) + (1 if self.narrow else 0)

    @property
    def max_int(self) -> int:
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    @property
    def min(self) -> float:
        return self.min_int * self.scale

    @property
    def max(self) -> float:
        return self.max_int * self.scale

    def with_width(self, width: int, overflow: Overflow | None = None) -> FixedType:
        """The same grid in a register of another width (a narrower state or accumulator)."""
        return replace(self, width=width, overflow=overflow or self.overflow)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Real values -> integers on this grid, rounded and fitted (float64 whole numbers)."""
        scaled = np.asarray(values, dtype=np.float64) / self.scale  # exact on power-of-two grids
        return self.fit(np.rint(scaled) if self.rounding == "half_even" else np.floor(scaled))[0]

    def requantizer(self, from_scale: float) -> Callable[[np.ndarray], np.ndarray]:
        """A function taking integers on grid `from_scale` into this register (round, then
        saturate or wrap); the ratio of the two grids is worked out once, here."""
        rescale = self.rescaler(from_scale)
        lo, span = self.min_int, self.max_int - self.min_int + 1
        if self.overflow == "saturate":
            clamp = Clamp(self.min_int, self.max_int)
            return lambda ints: clamp(rescale(ints))
        return lambda ints: _wrap(rescale(ints), lo, span)

    def rescaler(self, from_scale: float) -> Callable[[np.ndarray], np.ndarray]:
        """Only the rounding onto this grid, no range check (for a caller that clips anyway)."""
        return rounding_rescaler(Fraction(from_scale) / Fraction(self.scale), self.rounding)

    def fit(self, ints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the overflow rule to whole numbers; returns (fitted, mask of overflowed)."""
        lo, hi = self.min_int, self.max_int
        over = (ints < lo) | (ints > hi)
        if self.overflow == "saturate":
            return Clamp(lo, hi)(ints), over
        return _wrap(ints, lo, hi - lo + 1), over


class Clamp:
    """x limited to [lo, hi] (either may be None). NumPy 1.x runs min/max against a scalar on
    a slow path and against a same-shape array on a fast one, so the bounds are kept as
    arrays, one pair per shape and dtype seen."""

    def __init__(self, lo: float | None, hi: float | None):
        self.lo, self.hi = lo, hi
        self.bounds: dict[tuple, tuple[np.ndarray | None, np.ndarray | None]] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        key = (x.shape, x.dtype)
        bounds = self.bounds.get(key)
        if bounds is None:
            bounds = self.bounds[key] = tuple(None if b is None else np.full(x.shape, b, x.dtype)
                                              for b in (self.lo, self.hi))
        lo, hi = bounds
        out = x if hi is None else np.minimum(x, hi)
        if lo is not None:
            out = np.maximum(out, lo, out=out if out is not x else None)
        return out


def _wrap(ints: np.ndarray, lo: int, span: int) -> np.ndarray:
    """Two's-complement wrap-around into [lo, lo + span)."""
    return ints - span * np.floor_divide(ints - lo, span)


def rounding_rescaler(ratio: Fraction, rounding: Rounding) -> Callable[[np.ndarray], np.ndarray]:
    """A function computing round(ints * ratio) exactly for whole numbers (float64 or int64).

    A power-of-two ratio is one exact float multiply; any other ratio of two (dyadic) scales
    goes through exact integer division, as an integer multiplier + shift datapath would.
    """
    p, q = ratio.numerator, ratio.denominator
    if p == q:
        return lambda ints: ints
    round_ = np.rint if rounding == "half_even" else np.floor
    if q & (q - 1) == 0:
        factor = float(ratio)

        def by_power_of_two(ints: np.ndarray) -> np.ndarray:
            if ints.dtype.kind != "f":
                return _divide(ints, p, q, rounding)
            scaled = ints * factor
            return round_(scaled, out=scaled) if q > 1 else scaled

        return by_power_of_two
    return lambda ints: _divide(ints, p, q, rounding)


def _divide(ints: np.ndarray, p: int, q: int, rounding: Rounding) -> np.ndarray:
    """round(ints * p / q) in exact integer arithmetic (Python ints past 62 bits)."""
    widest = float(np.max(np.abs(ints), initial=0)) * p
    big = np.asarray(ints).astype(np.int64 if widest < 2**62 else object) * p
    quotient, remainder = np.divmod(big, q)
    if rounding == "half_even":
        twice = 2 * remainder
        quotient = quotient + ((twice > q) | ((twice == q) & (quotient % 2 == 1)))
    return quotient.astype(ints.dtype)
