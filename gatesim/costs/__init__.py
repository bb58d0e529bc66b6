"""Cost models: an op graph and parameters in, energy, latency and resources out.

A cost model is anything with a `name` and `estimate(graph, params) -> Estimate`; `MODELS`
is a plain registry. Every number a model uses lives in configs/costs/<name>.yaml with its
source; calibrated profiles measured on a host override the latency figures.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from gatesim.errors import GatesimError
from gatesim.ops import KINDS
from gatesim.trace import OpGraph, trace


@dataclass
class Estimate:
    """What one step (or `steps` steps) of a cell costs on a target."""

    target: str
    energy_pj: float
    latency_s: float
    resources: dict[str, float]
    by_kind: dict[str, dict[str, float]]
    by_node: list[dict]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "energy_pj": self.energy_pj, "latency_s": self.latency_s,
                "resources": self.resources, "by_kind": self.by_kind, **self.details,
                "by_node": self.by_node}


class CostModel(Protocol):
    name: str

    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate: ...


def by_kind(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Sum per-node rows into {kind: {"energy_pj", "latency_s"}} in vocabulary order."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"energy_pj": 0.0, "latency_s": 0.0})
    for row in rows:
        totals[row["kind"]]["energy_pj"] += row["energy_pj"]
        totals[row["kind"]]["latency_s"] += row["latency_s"]
    return {k: totals[k] for k in KINDS if k in totals}


def _models() -> dict[str, CostModel]:
    from gatesim.costs.ckks import CkksModel
    from gatesim.costs.cpu import CpuModel
    from gatesim.costs.fpga import FpgaModel
    from gatesim.costs.tfhe import TfheModel

    return {m.name: m for m in (CpuModel(), FpgaModel(), CkksModel(), TfheModel())}


MODELS: dict[str, CostModel] = _models()


def estimate(module_or_graph: nn.Module | OpGraph, target: str = "cpu", **params: Any) -> Estimate:
    """Cost of one step of a module (traced here) or of an op graph on `target`.

    params are the target's own (see `gatesim estimate --help`), e.g. mode="fused" or
    profile="configs/calibration/host.json" for cpu, reuse_factor=4 for fpga, and
    steps=T for a whole sequence.
    """
    model = MODELS.get(target)
    if model is None:
        raise GatesimError(f"unknown target {target!r}; allowed: {', '.join(MODELS)}")
    graph = module_or_graph if isinstance(module_or_graph, OpGraph) else trace(module_or_graph)
    return model.estimate(graph, params)
