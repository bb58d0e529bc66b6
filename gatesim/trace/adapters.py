"""Brevitas' own recurrent layers (QuantLSTM, QuantRNN) mapped onto traceable step cells.

Their sequence loop is TorchScript-style Python that fx cannot trace as a whole, but each
step is `_QuantLSTMCell.forward_iter` / `_QuantRNNCell.forward_iter`: plain linears, adds,
products and the layer's own quantizer proxies. The adapter calls that very method with the
layer's quantized weights and biases as constants, so the op graph is built from Brevitas'
code and quantizers, not from a re-implementation. Single-layer, one direction.
"""
from __future__ import annotations

import numpy as np
import torch
from brevitas.nn import QuantLSTM, QuantRNN
from brevitas.nn.quant_rnn import _QuantLSTMCell, _QuantRNNCell
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.brevitas_adapter import on_one_grid
from gatesim.fixedpoint.qtype import FLOAT, QType


class ConstTensor(nn.Module):
    """A quantized constant (weight or bias) with its fixed-point type and its whole numbers
    on that grid (per-channel scales: on one grid that divides them all, `on_one_grid`)."""

    gatesim_leaf = True

    def __init__(self, quant_tensor):
        super().__init__()
        value = getattr(quant_tensor, "value", quant_tensor)
        self.register_buffer("value", value.detach().clone())
        self.qtype, self.ints, self.refusal = FLOAT, None, None
        if getattr(quant_tensor, "scale", None) is not None:
            try:
                self.ints, scale = on_one_grid(value, quant_tensor.scale, "constant")
            except GatesimError as exc:  # counting still sizes it; simulating it is refused by node
                self.refusal, scale = str(exc), float(quant_tensor.scale.max())
                self.ints = torch.round(value.double() / scale).numpy()
            self.qtype = QType(int(self.ints.min()), int(self.ints.max()), scale)

    @classmethod
    def zero(cls, scale: float) -> ConstTensor:
        """The bias of a layer without one: an exact zero, put on `scale`'s grid."""
        out = cls(torch.zeros(1))
        out.ints, out.qtype = np.zeros(1), QType(0, 0, scale)
        return out

    def forward(self):
        return self.value


class QuantOnesLike(nn.Module):
    """A quantizer applied to ones shaped like its input (a CIFG LSTM's forget gate is
    `tensor_quant(ones_like(input_gate)) - input_gate`): 1 as that quantizer stores it (e.g.
    255/256 on an 8-bit unsigned grid), a constant, no arithmetic."""

    gatesim_leaf = True

    def __init__(self, tensor_quant):
        super().__init__()
        with torch.no_grad():
            value, scale, *_ = tensor_quant(torch.ones(1))
        self.value, scale = float(value), float(scale)
        k = round(self.value / scale)
        self.qtype = QType(k, k, scale)

    def forward(self, x):
        return (torch.full_like(x, self.value), None, None, None)


class ProxyAct(nn.Module):
    """A Brevitas activation-quantizer proxy called the way forward_iter expects (a tuple)."""

    gatesim_leaf = True

    def __init__(self, proxy):
        super().__init__()
        self.proxy = proxy

    def forward(self, x):
        y = self.proxy(x)
        return (getattr(y, "value", y), None, None, None)


def _single_layer(rnn: nn.Module) -> nn.Module:
    if len(rnn.layers) != 1 or len(rnn.layers[0]) != 1:
        raise GatesimError(f"{type(rnn).__name__}: the adapter maps single-layer, unidirectional "
                           "layers; trace each layer and direction separately")
    return rnn.layers[0][0]


class _StepBase(nn.Module):
    def __init__(self, layer: nn.Module, gates: list[str]):
        super().__init__()
        self.input_size, self.hidden_size = layer.input_size, layer.hidden_size
        self.io_quant = ProxyAct(layer.io_quant)
        with torch.no_grad():
            quant_input = layer.io_quant(torch.zeros(1, layer.input_size))
            for gate in gates:
                params = getattr(layer, f"{gate}_params")
                w_ih, w_hh, bias = layer.gate_params_fwd(params, quant_input)
                setattr(self, f"{gate}_w_ih", ConstTensor(w_ih))
                setattr(self, f"{gate}_w_hh", ConstTensor(w_hh))
                # bias=False: Brevitas adds a zero; put it on the input product's grid
                setattr(self, f"{gate}_bias", ConstTensor(bias) if bias is not None else ConstTensor.zero(
                    float(quant_input.scale) * getattr(self, f"{gate}_w_ih").qtype.scale))

    def example_inputs(self, batch: int = 1):
        states = [torch.zeros(batch, self.hidden_size) for _ in range(self.n_states)]
        return (torch.zeros(batch, self.input_size), *states)


class QuantLSTMStep(_StepBase):
    """One step of a Brevitas QuantLSTM: x, h, c -> h', c'."""

    n_states = 2
    GATES = ["input_gate", "forget_gate", "cell_gate", "output_gate"]

    def __init__(self, lstm: QuantLSTM):
        layer = _single_layer(lstm)
        self.cifg = bool(layer.cifg)
        # coupled input-forget gates: no forget weights (forward_iter never reads the slot)
        super().__init__(layer, [g for g in self.GATES if not (self.cifg and g == "forget_gate")])
        c = layer.cell
        names = ["output_quant", "cell_state_quant", "input_acc_quant", "forget_acc_quant",
                 "cell_acc_quant", "output_acc_quant", "input_sigmoid_quant",
                 "forget_sigmoid_quant", "cell_tanh_quant", "output_sigmoid_quant",
                 "hidden_state_tanh_quant"]
        self.cell = _QuantLSTMCell(
            **{n: ProxyAct(getattr(c, n)) for n in names},
            reverse_input=False, batch_first=True, cifg=self.cifg, output_quant_enabled=True,
            cell_state_quant_enabled=True, fast_impl=True)
        if self.cifg:
            self.cell.input_sigmoid_quant.tensor_quant = QuantOnesLike(
                c.input_sigmoid_quant.fused_activation_quant_proxy.tensor_quant)

    def forward(self, x, h, c):
        x = self.io_quant(x)[0]
        h = self.cell.output_quant(h)[0]
        c = self.cell.cell_state_quant(c)[0]
        g = [n if not (self.cifg and n == "forget_gate") else "input_gate" for n in self.GATES]
        w_ih = [getattr(self, f"{n}_w_ih")() for n in g]
        w_hh = [getattr(self, f"{n}_w_hh")() for n in g]
        bias = [getattr(self, f"{n}_bias")() for n in g]
        h_tuple, c_tuple = self.cell.forward_iter(x, h, c, *w_ih, *w_hh, *bias)
        return h_tuple[0], c_tuple[0]


class QuantRNNStep(_StepBase):
    """One step of a Brevitas QuantRNN: x, h -> h'."""

    n_states = 1

    def __init__(self, rnn: QuantRNN):
        layer = _single_layer(rnn)
        super().__init__(layer, ["gate"])
        c = layer.cell
        self.cell = _QuantRNNCell(c.act_fn, ProxyAct(c.gate_acc_quant), ProxyAct(c.output_quant),
                                  reverse_input=False, batch_first=True,
                                  output_quant_enabled=True, fast_impl=True)

    def forward(self, x, h):
        x = self.io_quant(x)[0]
        h = self.cell.output_quant(h)[0]
        out = self.cell.forward_iter(x, h, self.gate_w_ih(), self.gate_w_hh(), self.gate_bias())
        return out[0]


ADAPTERS = {QuantLSTM: QuantLSTMStep, QuantRNN: QuantRNNStep}


def adapt(module: nn.Module) -> nn.Module:
    """The traceable step cell for a Brevitas recurrent layer; other modules unchanged."""
    step = ADAPTERS.get(type(module))
    return step(module) if step else module
