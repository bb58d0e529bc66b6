"""Small constructors so each cell reads like its equations."""
from __future__ import annotations

import warnings

import brevitas.nn as qnn
import torch
from torch import nn

from gatesim.cells.config import CellConfig
from gatesim.cells.quant import Quantizers

# Brevitas warns about unused keyword arguments when a quantizer is None (float cells).
warnings.filterwarnings("ignore", message="Keyword arguments are being passed")


def linear(in_features: int, out_features: int, q: Quantizers, input_quant) -> qnn.QuantLinear:
    """Weights x quantized input + bias on the accumulator grid; the output stays wide."""
    return qnn.QuantLinear(
        in_features, out_features, bias=True,
        weight_quant=q.weight, bias_quant=q.bias, input_quant=input_quant,
        return_quant_tensor=False,
    )


def identity(act_quant) -> qnn.QuantIdentity:
    return qnn.QuantIdentity(act_quant=act_quant, return_quant_tensor=False)


def candidate(kind: str, act_quant) -> nn.Module:
    """The add-gated candidate activation: hardtanh | relu | identity, output on act_quant.

    With a quantizer, hardtanh is the quantizer's own saturation (as Brevitas does it), so a
    quantized hardtanh and a quantized identity are the same layer; they differ in float.
    """
    if kind == "relu":
        return qnn.QuantReLU(act_quant=act_quant, return_quant_tensor=False)
    if act_quant is None:
        return nn.Hardtanh() if kind == "hardtanh" else nn.Identity()
    return identity(act_quant)


def inhibit(v: torch.Tensor, s: torch.Tensor, signed: bool = True) -> torch.Tensor:
    """Shrink v toward 0 by s >= 0 (add-gated 'gate'): no product, no sigmoid."""
    if signed:
        return torch.relu(v - s) - torch.relu(-v - s)
    return torch.relu(v - s)


class RecurrentCell(nn.Module):
    """Base for the built-in cells: sizes, config and the state layout a sequence needs."""

    n_states = 1

    def __init__(self, input_size: int, hidden_size: int, config: CellConfig | None = None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.config = config or CellConfig()
        self.q = Quantizers(self.config)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros(batch, self.hidden_size) for _ in range(self.n_states))

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.input_size), *self.initial_state(batch))
