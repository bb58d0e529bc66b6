"""Add-gated ("inhibitor") LSTM: ReLU gates and subtraction instead of sigmoid x state."""
from __future__ import annotations

import brevitas.nn as qnn

from gatesim.cells.layers import RecurrentCell, candidate, identity, inhibit, linear


class AddLSTMCell(RecurrentCell):
    """i, f, o = relu(.); g = act(.); c' = inhibit(c, f) + inhibit(g, i);
    h' = inhibit(act(c'), o)."""

    n_states = 2

    def __init__(self, input_size, hidden_size, config=None):
        super().__init__(input_size, hidden_size, config)
        q, H = self.q, hidden_size
        self.signed = self.config.inhibit == "signed"
        self.state_in = identity(q.state)
        self.cell_in = identity(q.cell)
        self.input_linear = linear(input_size, 4 * H, q, q.input)
        self.hidden_linear = linear(H, 4 * H, q, self.state_in.act_quant)
        self.input_gate = qnn.QuantReLU(act_quant=q.relu_gate)
        self.forget_gate = qnn.QuantReLU(act_quant=q.relu_gate)
        self.output_gate = qnn.QuantReLU(act_quant=q.relu_gate)
        self.candidate = candidate(self.config.candidate_act, q.state)
        self.cell_out = identity(self.cell_in.act_quant)
        self.cell_act = candidate(self.config.candidate_act, q.state)
        self.state_out = identity(self.state_in.act_quant)

    def forward(self, x, h, c):
        h, c = self.state_in(h), self.cell_in(c)
        i, f, g, o = (self.input_linear(x) + self.hidden_linear(h)).chunk(4, dim=-1)
        i, f, o = self.input_gate(i), self.forget_gate(f), self.output_gate(o)
        c = self.cell_out(inhibit(c, f, self.signed) + inhibit(self.candidate(g), i, self.signed))
        return self.state_out(inhibit(self.cell_act(c), o, self.signed)), c
