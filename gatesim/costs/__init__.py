"""Cost models: an op graph and parameters in, energy, latency and resources out.

Each target is one record (`gatesim.costs.targets.Target`) registered by its module: the
model (`estimate(graph, params) -> Estimate`), its parameters, CLI options, report objective
and entry points. Every number a model uses lives in its cost file (gatesim/costs/data/
<target>.yaml) with its source; calibrated profiles measured on a host override latencies.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Built-in targets, registered in this order (the order of CLI help and reports).
from gatesim.costs import cpu, fpga, ckks, tfhe  # noqa: F401, E401  (each registers its record)
from gatesim.costs.base import CostModel, Estimate, by_kind
from gatesim.costs.targets import TARGETS, Option, Target, get, register

if TYPE_CHECKING:
    from torch import nn

    from gatesim.trace import OpGraph

__all__ = ["Estimate", "CostModel", "Target", "Option", "TARGETS", "register", "get", "estimate", "by_kind"]


def estimate(module_or_graph: "nn.Module | OpGraph", target: str = "cpu", **params: Any) -> Estimate:
    """Cost of one step of a module (traced here) or of an op graph on `target`.

    params are the target's own (see `gatesim estimate --help`), e.g. mode="fused" or
    profile="cpu-vm" for cpu, reuse_factor=4 for fpga, and steps=T for a whole sequence.
    """
    from gatesim.trace import OpGraph, trace

    record = get(target)
    graph = module_or_graph if isinstance(module_or_graph, OpGraph) else trace(module_or_graph)
    return record.model.estimate(graph, params)
