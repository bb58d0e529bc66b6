"""Multiply-gated LSTM (PyTorch convention), Brevitas-quantized."""
from __future__ import annotations

import brevitas.nn as qnn

from gatesim.cells.layers import RecurrentCell, identity, linear


class LSTMCell(RecurrentCell):
    """i, f, o = sigmoid(.); g = tanh(.); c' = f*c + i*g; h' = o * tanh(c')."""

    n_states = 2

    def __init__(self, input_size, hidden_size, config=None):
        super().__init__(input_size, hidden_size, config)
        q, H = self.q, hidden_size
        self.state_in = identity(q.state)
        self.cell_in = identity(q.cell)
        self.input_linear = linear(input_size, 4 * H, q, q.input)
        self.hidden_linear = linear(H, 4 * H, q, self.state_in.act_quant)
        self.input_gate = qnn.QuantSigmoid(input_quant=q.preact, act_quant=q.gate)
        self.forget_gate = qnn.QuantSigmoid(input_quant=q.preact, act_quant=q.gate)
        self.output_gate = qnn.QuantSigmoid(input_quant=q.preact, act_quant=q.gate)
        self.candidate = qnn.QuantTanh(input_quant=q.preact, act_quant=q.state)
        self.cell_out = identity(self.cell_in.act_quant)
        self.cell_tanh = qnn.QuantTanh(act_quant=q.state)
        self.state_out = identity(self.state_in.act_quant)

    def forward(self, x, h, c):
        h, c = self.state_in(h), self.cell_in(c)
        i, f, g, o = (self.input_linear(x) + self.hidden_linear(h)).chunk(4, dim=-1)
        i, f, o = self.input_gate(i), self.forget_gate(f), self.output_gate(o)
        c = self.cell_out(f * c + i * self.candidate(g))
        return self.state_out(o * self.cell_tanh(c)), c
