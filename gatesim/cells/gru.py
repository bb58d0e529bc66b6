"""Multiply-gated GRU (PyTorch convention), Brevitas-quantized."""
from __future__ import annotations

import brevitas.nn as qnn

from gatesim.cells.layers import RecurrentCell, identity, linear


class GRUCell(RecurrentCell):
    """r, z = sigmoid(.); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1-z)*n + z*h."""

    def __init__(self, input_size, hidden_size, config=None):
        super().__init__(input_size, hidden_size, config)
        q, H = self.q, hidden_size
        self.state_in = identity(q.state)  # h arrives on the state grid
        self.input_linear = linear(input_size, 3 * H, q, q.input)
        self.hidden_linear = linear(H, 3 * H, q, self.state_in.act_quant)
        self.reset_gate = qnn.QuantSigmoid(input_quant=q.preact, act_quant=q.gate)
        self.update_gate = qnn.QuantSigmoid(input_quant=q.preact, act_quant=q.gate)
        self.hn_quant = identity(q.preact)  # b-bit operand for the r * (.) product
        self.candidate = qnn.QuantTanh(input_quant=q.preact, act_quant=q.state)
        self.state_out = identity(self.state_in.act_quant)

    def forward(self, x, h):
        h = self.state_in(h)
        i_r, i_z, i_n = self.input_linear(x).chunk(3, dim=-1)
        h_r, h_z, h_n = self.hidden_linear(h).chunk(3, dim=-1)
        r = self.reset_gate(i_r + h_r)
        z = self.update_gate(i_z + h_z)
        n = self.candidate(i_n + r * self.hn_quant(h_n))
        return self.state_out((1 - z) * n + z * h)
