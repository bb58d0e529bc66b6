"""What every cost model shares: the Estimate it returns and the per-kind price dispatch."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, TypeVar

from gatesim.errors import GatesimError
from gatesim.ops import KINDS

if TYPE_CHECKING:
    from gatesim.trace.opgraph import OpGraph

Price = TypeVar("Price")


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
    def estimate(self, graph: "OpGraph", params: dict[str, Any]) -> Estimate: ...


def by_kind(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Sum per-node rows into {kind: {"energy_pj", "latency_s"}} in vocabulary order."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"energy_pj": 0.0, "latency_s": 0.0})
    for row in rows:
        totals[row["kind"]]["energy_pj"] += row["energy_pj"]
        totals[row["kind"]]["latency_s"] += row["latency_s"]
    return {k: totals[k] for k in KINDS if k in totals}


def per_kind(*groups: tuple[frozenset[str], Price]) -> dict[str, Price]:
    """A model's price table from (group of kinds, price) pairs; a kind in two groups is a bug."""
    table: dict[str, Price] = {}
    for group, price in groups:
        for kind in group:
            if kind in table:
                raise ValueError(f"op kind {kind!r} has two prices")
            table[kind] = price
    return table


def price_of(model: str, prices: Mapping[str, Price], kind: str, node: Any) -> Price:
    """The price of `kind`, or a refusal naming the model, the node and the kind."""
    try:
        return prices[kind]
    except KeyError:
        raise GatesimError(f"{model}: node {node!r}: no price for op kind {kind!r} (priced: "
                           f"{', '.join(k for k in KINDS if k in prices)}); add one to "
                           f"gatesim/costs/{model}.py") from None


