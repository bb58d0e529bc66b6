"""A sum of products of encrypted vectors with plain matrices, kept unevaluated until used.

Encrypted libraries slice ciphertexts badly (TenSEAL needs rotations; concrete-python 2.11
fails to compile some slices of signed tensors), so a chunk of a linear layer's output is
taken on the plain weights instead: one product per block.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Product = Callable[[Any, np.ndarray, np.ndarray], Any]  # (encrypted x, weights, bias) -> x @ W + b


class LazyLinear:
    def __init__(self, terms: list[tuple[Any, np.ndarray, np.ndarray]], product: Product):
        self.terms, self.product = terms, product

    def chunk(self, parts: int) -> tuple[LazyLinear, ...]:
        """torch.chunk along the last dim: blocks of ceil(n / parts) outputs."""
        n = self.terms[0][1].shape[1]
        size = -(-n // parts)
        return tuple(LazyLinear([(x, w[:, i:i + size], b[i:i + size]) for x, w, b in self.terms], self.product)
                     for i in range(0, n, size))

    def __add__(self, other: LazyLinear) -> LazyLinear:
        return LazyLinear(self.terms + other.terms, self.product)

    def value(self) -> Any:
        out = None
        for x, w, b in self.terms:
            term = self.product(x, w, b)
            out = term if out is None else out + term
        return out


def evaluated(value: Any) -> Any:
    """The value itself, with any lazy linear part computed (tuples element by element)."""
    if isinstance(value, LazyLinear):
        return value.value()
    if isinstance(value, tuple):
        return tuple(evaluated(v) for v in value)
    return value
