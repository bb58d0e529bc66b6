"""The reference: the same module run by Brevitas (fake-quant, float) on the same inputs."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def run_reference(module: nn.Module, x: np.ndarray, states: tuple[np.ndarray, ...],
                  dtype: torch.dtype = torch.float32) -> list[np.ndarray]:
    """Step the module over x (B, T, I) from `states`; every returned state at every step."""
    module = copy.deepcopy(module).to(dtype) if dtype != torch.float32 else module
    was_training = module.training
    module.eval()
    try:
        state = tuple(torch.as_tensor(s, dtype=dtype) for s in states)
        xs = torch.as_tensor(x, dtype=dtype)
        steps: list[tuple[torch.Tensor, ...]] = []
        for t in range(xs.shape[1]):
            out = module(xs[:, t], *state)
            out = out if isinstance(out, tuple) else (out,)
            steps.append(out)
            state = out[: len(state)]
    finally:
        module.train(was_training)
    return [torch.stack([s[i] for s in steps], dim=1).double().numpy() for i in range(len(steps[0]))]


def compare(sim_ints: list[np.ndarray], scales: list[float], reference: list[np.ndarray]) -> dict:
    """Element-for-element: reference / scale against the simulator's integers."""
    mismatches = compared = 0
    worst = 0.0
    for ints, scale, ref in zip(sim_ints, scales, reference):
        ref_units = ref / scale
        diff = np.abs(ref_units - ints)
        mismatches += int(np.count_nonzero(diff))
        compared += ints.size
        worst = max(worst, float(diff.max(initial=0.0)))
    return {"mismatches": mismatches, "elements_compared": compared, "max_error_lsb": worst}
