"""The closed op vocabulary every gatesim module speaks, and each kind's properties.

`KINDS` is the one table: every group of kinds any module uses (what a cost model prices as
a multiplier, what bootstraps under TFHE, what counts towards a depth) is derived from these
properties below, so a new kind is one row here plus a price in each cost model; a model
with no price for it refuses by name (see docs/architecture.md).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """What an op kind is, as far as any module needs to know."""

    meaning: str
    memory: bool = False  # memory traffic (elements moved), no arithmetic
    product: bool = False  # a product of two operands: a multiplier in hardware
    variable_product: bool = False  # both operands variable: ct x ct under HE, double width in fixed point
    weighted_sum: bool = False  # products with constant weights summed over a row (a matmul)
    addition: bool = False  # a sum or difference of two values (or a negation)
    table: bool = False  # a univariate function kept as a table (an approximated polynomial under CKKS)
    compare: bool = False  # a comparison with a constant or another value (ReLU, max, clamp)
    rescale: bool = False  # moves a value between fixed-point types (round, shift, clip)

    @property
    def nonlinear(self) -> bool:
        """Counts towards the nonlinear depth: a PBS under TFHE, a polynomial under CKKS."""
        return self.table or self.compare

    @property
    def univariate(self) -> bool:
        """A function of one encrypted value: one table lookup (PBS) per element under TFHE."""
        return self.nonlinear or self.rescale

    @property
    def compute(self) -> bool:
        return not self.memory


# The order is the display order everywhere.
KINDS: dict[str, Kind] = {
    "mac": Kind("constant-weight multiply-accumulate (matmul / linear with weights)", product=True,
                weighted_sum=True),
    "mul": Kind("variable x variable elementwise product (gate x state)", product=True, variable_product=True),
    "mul_const": Kind("variable x constant elementwise product", product=True),
    "add": Kind("addition, subtraction or negation of variables / bias", addition=True),
    "relu": Kind("ReLU", compare=True),
    "max": Kind("max / min / compare / clamp", compare=True),
    "sigmoid": Kind("logistic sigmoid", table=True),
    "tanh": Kind("hyperbolic tangent", table=True),
    "lut": Kind("other univariate nonlinearity (table lookup)", table=True),
    "requant": Kind("rescale / round / clip between fixed-point types", rescale=True),
    "load": Kind("weight and state memory reads (elements)", memory=True),
    "store": Kind("state memory writes (elements)", memory=True),
}


def kinds(prop: str) -> frozenset[str]:
    """The kinds whose property `prop` is true (a group every module derives from KINDS)."""
    return frozenset(name for name, kind in KINDS.items() if getattr(kind, prop))


MEMORY = kinds("memory")
COMPUTE = kinds("compute")
PRODUCTS = kinds("product")
MULTIPLICATIVE = kinds("variable_product")
WEIGHTED_SUMS = kinds("weighted_sum")
ADDITIONS = kinds("addition")
COMPARES = kinds("compare")
RESCALES = kinds("rescale")
TABLES = kinds("table")
NONLINEAR = kinds("nonlinear")
UNIVARIATE = kinds("univariate")
# What a step's time holds beyond its ops, each a results column step_latency_s_<part>: a call's
# or a run's fixed cost (dispatch, launch, session) and the wait for weights that do not fit
# the cache; with the op kinds they sum to the step's latency.
BEYOND_KINDS = ("overhead", "memory_stall")
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
    reduction: int = 0  # terms summed per output (weighted sums only)
    label: str = ""
    proven_bits: int = 0  # bits the result provably needs, where its register (out_bits) is narrower

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}; allowed: {', '.join(KINDS)}")

    @property
    def info(self) -> Kind:
        return KINDS[self.kind]

    @property
    def bits(self) -> int:
        """The widest operand: the width the op's hardware must handle."""
        return max(self.operand_bits) if self.operand_bits else self.out_bits
