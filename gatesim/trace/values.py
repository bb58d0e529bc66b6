"""What flows along a traced edge while the fx graph is lowered to op nodes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from gatesim.fixedpoint.qtype import FLOAT, QType


@dataclass(frozen=True)
class Val:
    """A tensor value: its shape, fixed-point type, data dependence and producing ops.
    `acc` marks a sum held in the accumulator register (a dot product, its bias, sums of
    those): what `acc_bits` narrows, here as in the simulator."""

    shape: tuple[int, ...]
    qtype: QType
    is_var: bool
    producers: frozenset[int] = frozenset()
    acc: bool = False

    def view(self, shape: Any) -> "Val":
        """The same value seen with another shape (a view, slice or copy)."""
        return Val(shape, self.qtype, self.is_var, acc=self.acc)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def const_val(value: float) -> Val:
    """A Python number used in the graph, as torch applies it to a float32 tensor (rounded to
    float32): a whole number on the coarsest power-of-two grid that holds it exactly."""
    if not math.isfinite(value):
        return Val((), FLOAT, False)
    exact = Fraction(float(np.float32(value)))
    scale = Fraction(1, exact.denominator)
    k = int(exact / scale)
    return Val((), QType(k, k, float(scale)), False)


def vals_in(obj: Any) -> list[Val]:
    """Every Val inside an argument structure."""
    if isinstance(obj, Val):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [v for o in obj for v in vals_in(o)]
    if isinstance(obj, dict):
        return [v for o in obj.values() for v in vals_in(o)]
    return []
