"""The closed op vocabulary every gatesim module speaks (design.md, "Op vocabulary")."""
from __future__ import annotations

from dataclasses import dataclass

# kind -> one-line meaning; the order is the display order everywhere.
KINDS: dict[str, str] = {
    "mac": "constant-weight multiply-accumulate (matmul / linear with weights)",
    "mul": "variable x variable elementwise product (gate x state)",
    "mul_const": "variable x constant elementwise product",
    "add": "addition, subtraction or negation of variables / bias",
    "relu": "ReLU",
    "max": "max / min / compare / clamp",
    "sigmoid": "logistic sigmoid",
    "tanh": "hyperbolic tangent",
    "lut": "other univariate nonlinearity (table lookup)",
    "requant": "rescale / round / clip between fixed-point types",
    "load": "weight and state memory reads (elements)",
    "store": "state memory writes (elements)",
}

MULTIPLICATIVE = frozenset({"mul"})
NONLINEAR = frozenset({"relu", "max", "sigmoid", "tanh", "lut"})
MEMORY = frozenset({"load", "store"})
FLOAT_BITS = 32  # width reported for operands that carry no quantizer (float32 tensors)


@dataclass(frozen=True)
class Op:
    """One op node: `count` elements of `kind` on operands of the given widths."""

    kind: str
    count: int
    operand_bits: tuple[int, ...]
    operand_is_var: tuple[bool, ...]
    out_bits: int
    operand_signed: tuple[bool, ...] = ()
    signed: bool = True  # of the result
    is_float: bool = False
    reduction: int = 0  # terms summed per output (mac only)
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}; allowed: {', '.join(KINDS)}")

    @property
    def bits(self) -> int:
        """The widest operand: the width the op's hardware must handle."""
        return max(self.operand_bits) if self.operand_bits else self.out_bits
