"""Run a one-step cell over T steps, batch-first like torch.nn.GRU(batch_first=True)."""
from __future__ import annotations

import torch
from torch import nn


class Sequence(nn.Module):
    """outputs (B, T, H) and the final state tuple from inputs (B, T, I)."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None):
        if x.dim() != 3:
            raise ValueError(f"Sequence expects (batch, steps, features), got shape {tuple(x.shape)}")
        state = tuple(state) if state is not None else tuple(s.to(x.device) for s in self.cell.initial_state(x.shape[0]))
        outputs = []
        for t in range(x.shape[1]):
            new = self.cell(x[:, t], *state)
            state = new if isinstance(new, tuple) else (new,)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), state
