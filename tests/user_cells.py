"""A user's own cell (not built in): a quantized Elman RNN with a ReLU 'forget' trick."""
import brevitas.nn as qnn
import torch
from torch import nn
from brevitas.quant.fixed_point import Int8ActPerTensorFixedPointMinMaxInit, Int8WeightPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias


class Act6(Int8ActPerTensorFixedPointMinMaxInit):
    bit_width = 6
    min_val = -1.0
    max_val = 1.0


class Elman(nn.Module):
    """h' = tanh(W x + U h + b) - relu(h) * 0.5: mac = H(I+H), tanh = H, mul_const = H."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.wx = qnn.QuantLinear(input_size, hidden_size, bias=True, input_quant=Act6,
                                  weight_quant=Int8WeightPerTensorFixedPoint, return_quant_tensor=False)
        self.uh = qnn.QuantLinear(hidden_size, hidden_size, bias=False, input_quant=Act6,
                                  weight_quant=Int8WeightPerTensorFixedPoint, return_quant_tensor=False)
        self.act = qnn.QuantTanh(input_quant=Act6, act_quant=Act6, return_quant_tensor=False)

    def forward(self, x, h):
        return self.act(self.wx(x) + self.uh(h)) - torch.relu(h) * 0.5

    def example_inputs(self, batch=1):
        return torch.zeros(batch, self.input_size), torch.zeros(batch, self.hidden_size)


def elman(input_size, hidden_size):
    return Elman(input_size, hidden_size)


class UsesExp(Elman):
    """torch.exp has no counting rule: tracing must name the node and the op."""

    def forward(self, x, h):
        return torch.exp(self.wx(x)) + h


def uses_exp(input_size, hidden_size):
    return UsesExp(input_size, hidden_size)


class DataDependent(Elman):
    """Python control flow on tensor values cannot be traced by torch.fx."""

    def forward(self, x, h):
        if h.sum() > 0:
            return h
        return self.wx(x)


def data_dependent(input_size, hidden_size):
    return DataDependent(input_size, hidden_size)


def needs_even_hidden(input_size, hidden_size):
    if hidden_size % 2:
        raise ValueError("hidden_size must be even")
    return Elman(input_size, hidden_size)


class Act8Range4(Int8ActPerTensorFixedPointMinMaxInit):
    min_val = -4.0
    max_val = 4.0


class FixedElman(nn.Module):
    """h' = q(tanh(q4(W x + U h + b))): integer weights, bias on the accumulator grid, and a float
    torch.tanh that the simulator folds into the output quantizer's table."""

    def __init__(self, input_size, hidden_size, weight_quant=Int8WeightPerTensorFixedPoint):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.wx = qnn.QuantLinear(input_size, hidden_size, bias=True, input_quant=Act6,
                                  weight_quant=weight_quant, bias_quant=Int32Bias,
                                  return_quant_tensor=False)
        self.uh = qnn.QuantLinear(hidden_size, hidden_size, bias=False, input_quant=Act6,
                                  weight_quant=weight_quant, return_quant_tensor=False)
        self.pre = qnn.QuantIdentity(act_quant=Act8Range4, return_quant_tensor=False)
        self.out = qnn.QuantIdentity(act_quant=Act6, return_quant_tensor=False)

    def forward(self, x, h):
        return self.out(torch.tanh(self.pre(self.wx(x) + self.uh(h))))

    def example_inputs(self, batch=1):
        return torch.zeros(batch, self.input_size), torch.zeros(batch, self.hidden_size)


def fixed_elman(input_size, hidden_size):
    return FixedElman(input_size, hidden_size)


class UpstreamElman(nn.Module):
    """FixedElman written the other common way: x and h quantized by QuantIdentity layers that
    hand QuantTensors on, and QuantLinears with no input quantizer of their own. No
    example_inputs: zero inputs and states come from forward's signature."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.xq = qnn.QuantIdentity(act_quant=Act6, return_quant_tensor=True)
        self.hq = qnn.QuantIdentity(act_quant=Act6, return_quant_tensor=True)
        self.wx = qnn.QuantLinear(input_size, hidden_size, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                                  bias_quant=Int32Bias, return_quant_tensor=False)
        self.uh = qnn.QuantLinear(hidden_size, hidden_size, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                                  return_quant_tensor=False)
        self.pre = qnn.QuantIdentity(act_quant=Act8Range4, return_quant_tensor=False)
        self.out = qnn.QuantIdentity(act_quant=Act6, return_quant_tensor=False)

    def forward(self, x, h):
        return self.out(torch.tanh(self.pre(self.wx(self.xq(x)) + self.uh(self.hq(h)))))


class Leaky(Elman):
    """h' = tanh(W x + U h) - relu(h) * 0.5, the state returned as computed: its grid is finer
    than the one it is read on, and relu(h) reads it unquantized (Brevitas carries the exact
    value, an integer datapath cannot). With requantize=True the state is stored on Act6."""

    def __init__(self, input_size, hidden_size, requantize=False):
        super().__init__(input_size, hidden_size)
        self.wx = qnn.QuantLinear(input_size, hidden_size, bias=False, input_quant=Act6,
                                  weight_quant=Int8WeightPerTensorFixedPoint, return_quant_tensor=False)
        self.store = qnn.QuantIdentity(act_quant=Act6, return_quant_tensor=False) if requantize else None

    def forward(self, x, h):
        new = self.act(self.wx(x) + self.uh(h)) - torch.relu(h) * 0.5
        return self.store(new) if self.store is not None else new
