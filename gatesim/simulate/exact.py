"""Exact integer dot products, on the fastest unit that is provably exact.

For whole numbers x and w, every partial sum of x @ w.T is bounded by
max|x| * max_j sum_k |w_jk|. When both operands fit int8 and the bound fits int32, the
product runs as an int8 x int8 -> int32 GEMM (what integer hardware does; torch's CPU
`_int_mm`, checked against exact arithmetic before first use). Otherwise float32 BLAS is
exact below 2**24, float64 below 2**53, and int64 (no BLAS, slow) below 2**63.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from gatesim.errors import GatesimError

PATHS = (("float32", 2**24, np.float32), ("float64", 2**53, np.float64), ("int64", 2**63, np.int64))
INT8 = (-128, 127)


def carrier(bits: int) -> type:
    """The cheapest dtype holding every whole number of `bits` bits exactly."""
    return np.float32 if bits <= 24 else np.float64 if bits <= 53 else np.int64


def dot_bound(x_bound: int, weights: np.ndarray) -> int:
    """Largest |partial sum| of x @ weights.T when |x| <= x_bound elementwise."""
    if weights.size == 0:
        return 0
    return int(x_bound) * int(np.abs(weights).sum(axis=-1).max())


@lru_cache(maxsize=1)
def int8_gemm_available() -> bool:
    """torch's int8 GEMM, if this build has it on CPU and it agrees with exact arithmetic."""
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (5, 37)).astype(np.int8)
    b = rng.integers(-128, 128, (37, 3)).astype(np.int8)
    try:
        got = torch._int_mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    except (AttributeError, RuntimeError):
        return False
    return bool((got == a.astype(np.int64) @ b.astype(np.int64)).all())


def _fits_int8(lo: int, hi: int) -> bool:
    return INT8[0] <= lo and hi <= INT8[1]


class ExactMatmul:
    """x @ weights.T for whole-number x in [x_lo, x_hi], on the cheapest exact path.

    `extra` widens the bound for a bias added to the result in the same register.
    """

    def __init__(self, weights: np.ndarray, x_lo: int, x_hi: int, where: str = "", extra: int = 0):
        self.bound = dot_bound(max(-x_lo, x_hi), weights) + extra
        w_lo, w_hi = (int(weights.min()), int(weights.max())) if weights.size else (0, 0)
        if (self.bound < 2**31 and _fits_int8(x_lo, x_hi) and _fits_int8(w_lo, w_hi)
                and int8_gemm_available()):
            self.path = "int8"
            self.dtype = carrier(self.bound.bit_length() + 1)  # the result's carrier
            self.weights_t = torch.from_numpy(np.ascontiguousarray(weights.T.astype(np.int8)))
            return
        for name, limit, dtype in PATHS:
            if self.bound < limit:
                self.path, self.dtype = name, dtype
                break
        else:
            raise GatesimError(f"{where}: a dot product may reach {self.bound}, beyond 63 bits; "
                               "narrow the weights or inputs")
        self.weights_t = np.ascontiguousarray(weights.T.astype(self.dtype))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.path == "int8":
            rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.int8)
            out = torch._int_mm(torch.from_numpy(rows), self.weights_t).numpy()
            return out.astype(self.dtype).reshape(*x.shape[:-1], out.shape[-1])
        return x.astype(self.dtype, copy=False) @ self.weights_t
