"""What the simulator knows about a value before data flows, and what it records while it does."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from gatesim.fixedpoint.qtype import QType


@dataclass(frozen=True)
class Meta:
    """A tensor in the simulated graph: value = data * scale, data whole numbers.

    `acc` marks a dot-product sum (the accumulator a requested `acc_bits` narrows);
    `qtype` is the static interval the counting pass proved for it. `pending` holds float
    univariate functions (torch.tanh, ...) still to apply: the next quantizer folds them
    into its table, since a real-valued result has no integer form.
    """

    scale: float
    is_var: bool = True
    acc: bool = False
    qtype: QType | None = None
    pending: tuple[tuple[str, Callable], ...] = ()

    @property
    def bound(self) -> int | None:
        """Largest |integer| this value can hold, when the static interval is known."""
        return None if self.qtype is None or self.qtype.is_float else max(-self.qtype.lo, self.qtype.hi)


Kernel = Callable[..., Any]


@dataclass
class Compiled:
    """One fx node made executable: `kernel` gets the node's arguments with arrays in place of
    tensors. `const` nodes have no kernel; their value is known before the run.
    `rowwise` kernels treat dim 0 as independent rows, so all steps can be stacked there."""

    meta: Any  # Meta, a tuple of Metas, or a plain value (sizes)
    kernel: Kernel | None = None
    rowwise: bool = False
    const: Any = None
    info: dict = field(default_factory=dict)  # e.g. the BLAS path each matmul took


@dataclass
class Recorder:
    """Observed integer ranges and overflow events per (fx node, op kind), over a whole run."""

    ranges: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    overflows: dict[tuple[str, str], list] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    enabled: bool = True  # off while the kernels are traced symbolically (HE export)

    def observe(self, key: tuple[str, str], data: np.ndarray) -> np.ndarray:
        if self.enabled and data.size:  # fmin/fmax reductions skip NaN handling: faster, and whole numbers have none
            lo, hi = np.fmin.reduce(data, axis=None), np.fmax.reduce(data, axis=None)
            seen = self.ranges.get(key)
            if seen is None:
                self.ranges[key] = [lo, hi]
            else:
                if lo < seen[0]:
                    seen[0] = lo
                if hi > seen[1]:
                    seen[1] = hi
        return data

    def overflowed(self, key: tuple[str, str], mask: np.ndarray, register_bits: int) -> None:
        entry = self.overflows[key]
        entry[0] += int(np.count_nonzero(mask))
        entry[1] = register_bits

    def reset(self) -> None:
        self.ranges.clear()
        self.overflows.clear()
