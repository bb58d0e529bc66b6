"""A cell over a sequence plus a quantized readout of its last state: the model trained on a
task, and evaluated both through Brevitas and through the bit-accurate simulator."""
from __future__ import annotations

import numpy as np
import torch
from brevitas.nn import QuantLinear
from torch import nn

from gatesim.cells import CellConfig, Sequence, build_cell
from gatesim.cells.quant import Quantizers
from gatesim.simulate import simulate


class Readout(nn.Module):
    """y = W h_T + b with fixed-point weights, on the state's grid, bias on the accumulator
    grid; the output is the accumulator itself (no output quantizer)."""

    def __init__(self, hidden_size: int, output_size: int, config: CellConfig):
        super().__init__()
        q = Quantizers(config)
        self.linear = QuantLinear(hidden_size, output_size, bias=True, weight_quant=q.weight, input_quant=q.state,
                                  bias_quant=q.bias, return_quant_tensor=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)

    def initial_state(self, batch: int) -> tuple:
        return ()  # stateless: the simulator runs it as one step on h_T


class SequenceModel(nn.Module):
    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, config: CellConfig):
        super().__init__()
        self.sequence = Sequence(build_cell(cell, input_size, hidden_size, config))
        self.readout = Readout(hidden_size, output_size, config)

    @property
    def cell(self) -> nn.Module:
        return self.sequence.cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.sequence(x)
        return self.readout(state[0])


@torch.no_grad()
def brevitas_predictions(model: SequenceModel, x: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Brevitas' fake-quantized forward pass (eval mode), as float64."""
    model.eval()
    device = next(model.parameters()).device
    return np.concatenate([model(x[i:i + batch].to(device)).double().cpu().numpy() for i in range(0, len(x), batch)])


def simulator_predictions(model: SequenceModel, x: torch.Tensor) -> tuple[np.ndarray, dict]:
    """The same model run by gatesim's integer simulator: the cell over the sequence, then the
    readout on its last state. Returns the outputs (exact, float64) and what the runs saw."""
    model.eval()
    cell = simulate(model.cell, x)
    h_last = cell.outputs[0][:, -1]
    head = simulate(model.readout, h_last[:, None, :])
    info = {"float32_exact": not (cell.float32_limits or head.float32_limits),
            "overflowed": cell.overflowed or head.overflowed,
            "cell_steps_per_s": round(cell.cell_steps_per_s, 1)}
    return head.outputs[0][:, 0], info
