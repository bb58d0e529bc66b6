"""Add-gated ("inhibitor") GRU: ReLU gates and subtraction instead of sigmoid x state."""
from __future__ import annotations

import brevitas.nn as qnn
import torch

from gatesim.cells.layers import RecurrentCell, candidate, identity, inhibit, linear


class AddGRUCell(RecurrentCell):
    """r, z = relu(.); n = act(W_in x + b_in + inhibit(W_hn h + b_hn, r));
    h' = inhibit(h, z) + inhibit(n, relu(theta - z))."""

    def __init__(self, input_size, hidden_size, config=None):
        super().__init__(input_size, hidden_size, config)
        q, H = self.q, hidden_size
        self.signed = self.config.inhibit == "signed"
        self.theta = self.config.theta
        self.state_in = identity(q.state)
        self.input_linear = linear(input_size, 3 * H, q, q.input)
        self.hidden_linear = linear(H, 3 * H, q, self.state_in.act_quant)
        self.reset_gate = qnn.QuantReLU(act_quant=q.relu_gate)
        self.update_gate = qnn.QuantReLU(act_quant=q.relu_gate)
        self.hn_quant = identity(q.preact)
        self.candidate = candidate(self.config.candidate_act, q.state)
        self.state_out = identity(self.state_in.act_quant)

    def forward(self, x, h):
        h = self.state_in(h)
        i_r, i_z, i_n = self.input_linear(x).chunk(3, dim=-1)
        h_r, h_z, h_n = self.hidden_linear(h).chunk(3, dim=-1)
        r = self.reset_gate(i_r + h_r)
        z = self.update_gate(i_z + h_z)
        n = self.candidate(i_n + inhibit(self.hn_quant(h_n), r, self.signed))
        keep = torch.relu(self.theta - z)
        return self.state_out(inhibit(h, z, self.signed) + inhibit(n, keep, self.signed))
