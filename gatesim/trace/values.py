"""What flows along a traced edge while the fx graph is lowered to op nodes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gatesim.fixedpoint.qtype import FLOAT, QType


@dataclass(frozen=True)
class Val:
    """A tensor value: its shape, fixed-point type, data dependence and producing ops."""

    shape: tuple[int, ...]
    qtype: QType
    is_var: bool
    producers: frozenset[int] = frozenset()

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def const_val(value: float) -> Val:
    """A Python number used in the graph: a constant on the coarsest exact dyadic grid."""
    if value == 0:
        return Val((), QType(0, 0, 1.0), False)
    for exp in range(0, 25):  # the first power-of-two step that holds it exactly
        k = value * 2**exp
        if k == int(k):
            return Val((), QType(int(k), int(k), 2.0**-exp), False)
    return Val((), FLOAT, False)


def vals_in(obj: Any) -> list[Val]:
    """Every Val inside an argument structure."""
    if isinstance(obj, Val):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [v for o in obj for v in vals_in(o)]
    if isinstance(obj, dict):
        return [v for o in obj.values() for v in vals_in(o)]
    return []
