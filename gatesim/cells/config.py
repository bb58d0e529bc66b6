"""Cell configuration: bit widths and the add-gated design axes, validated by pydantic."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Bits = Optional[int]
BITS_FIELD = dict(ge=2, le=32)
BITS = ("weight_bits", "act_bits", "gate_bits", "acc_bits")  # the widths a design sets
VARIANT_AXES = ("inhibit", "candidate_act", "theta")  # shape only the add-gated cells


class CellConfig(BaseModel):
    """Everything that shapes a built-in cell besides its input and hidden sizes.

    A bit width of None switches that quantizer off; with `weight_bits` and `act_bits`
    both None the cell is plain float and matches torch.nn.GRU / torch.nn.LSTM.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_bits: Bits = Field(8, **BITS_FIELD, description="weight width (signed, narrow range)")
    weight_scaling: Literal["per_tensor", "per_channel"] = Field(
        "per_tensor", description="one power-of-two weight scale per matrix, or one per output channel (row)")
    act_bits: Bits = Field(8, **BITS_FIELD, description="activation and state width (signed)")
    acc_bits: Bits = Field(None, **BITS_FIELD, description="accumulator register width (sums of products "
                           "and their bias); None = what the sums provably need, narrower wraps or saturates")
    gate_bits: Bits = Field(None, **BITS_FIELD, description="gate output width (unsigned); None = act_bits")
    input_range: float = Field(1.0, gt=0, description="|x| the input quantizer covers")
    state_range: float = Field(1.0, gt=0, description="|h| the hidden-state quantizer covers")
    cell_range: float = Field(4.0, gt=0, description="|c| the LSTM cell-state quantizer covers")
    preact_range: float = Field(4.0, gt=0, description="input range of the sigmoid/tanh tables")
    gate_range: float = Field(1.0, gt=0, description="upper end of an add-gated gate (ReLU output)")
    inhibit: Literal["signed", "unsigned"] = "signed"
    candidate_act: Literal["hardtanh", "relu", "identity"] = "hardtanh"
    theta: float = Field(1.0, ge=0, description="add-gated GRU: constant gate range in relu(theta - z)")

    @property
    def quantized(self) -> bool:
        return self.weight_bits is not None or self.act_bits is not None

    @property
    def effective_gate_bits(self) -> Bits:
        return self.gate_bits if self.gate_bits is not None else self.act_bits

    @classmethod
    def unquantized(cls, **overrides) -> "CellConfig":
        """No quantization anywhere: the reference float cell."""
        return cls(weight_bits=None, act_bits=None, **overrides)
