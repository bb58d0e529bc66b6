"""An op graph and the figures read off it: counts by kind and width, and depths."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator

import networkx as nx

from gatesim.ops import KINDS, MEMORY, MULTIPLICATIVE, NONLINEAR, Op


@dataclass
class OpGraph:
    """Op nodes (attribute `op`: Op, `fx_node`: name) for one step at the given sizes."""

    graph: nx.DiGraph
    sizes: dict[str, int] = field(default_factory=dict)

    def ops(self) -> Iterator[Op]:
        for _, data in self.graph.nodes(data=True):
            yield data["op"]

    def calls(self) -> dict[str, int]:
        """Framework calls one eager step makes, by kind: a node that computes is one call
        (named by its first op; linear layers are `mac`), and so is each split or concat."""
        return dict(self.graph.graph.get("calls", {}))

    def strided_calls(self) -> dict[str, int]:
        """Of those calls, the ones reading a slice of a split tensor (strided for batch > 1)."""
        return dict(self.graph.graph.get("strided_calls", {}))

    @property
    def dispatches(self) -> int:
        return sum(self.calls().values())

    def counts(self) -> dict[str, int]:
        """Elements per kind for one step (every kind listed, zeros included)."""
        totals = dict.fromkeys(KINDS, 0)
        for o in self.ops():
            totals[o.kind] += o.count
        return totals

    def counts_by_bits(self) -> list[dict]:
        """Counts per (kind, operand widths), widest operand first within a kind."""
        totals: dict[tuple, int] = defaultdict(int)
        for o in self.ops():
            totals[(o.kind, o.bits, o.operand_bits, o.is_float)] += o.count
        order = list(KINDS)
        rows = [
            {"kind": k, "bits": b, "operand_bits": list(ob), "float": f, "count": n}
            for (k, b, ob, f), n in totals.items()
        ]
        return sorted(rows, key=lambda r: (order.index(r["kind"]), -r["bits"], r["operand_bits"]))

    def overflow_possible(self) -> list[dict]:
        """Registers narrower than the values they hold provably need (e.g. --acc-bits below
        the proven width): some inputs can overflow there. One row per fx node and kind."""
        rows: dict[tuple, dict] = {}
        for _, data in self.graph.nodes(data=True):
            o = data["op"]
            if o.proven_bits:
                row = rows.setdefault((data["fx_node"], o.kind), {"fx_node": data["fx_node"], "kind": o.kind,
                                                                  "register_bits": o.out_bits, "proven_bits": 0})
                row["proven_bits"] = max(row["proven_bits"], o.proven_bits)
        return list(rows.values())

    def depth(self) -> dict[str, int]:
        """Longest path in compute ops; var x var products and nonlinearities on any path."""
        best: dict[int, tuple[int, int, int]] = {}
        for n in nx.topological_sort(self.graph):
            kind = self.graph.nodes[n]["op"].kind
            prev = [best[p] for p in self.graph.predecessors(n)] or [(0, 0, 0)]
            best[n] = (
                max(p[0] for p in prev) + (kind not in MEMORY),
                max(p[1] for p in prev) + (kind in MULTIPLICATIVE),
                max(p[2] for p in prev) + (kind in NONLINEAR),
            )
        crit, mult, nonlin = (max((b[i] for b in best.values()), default=0) for i in range(3))
        return {"critical_path": crit, "multiplicative": mult, "nonlinear": nonlin}

    def accumulator_bits(self) -> int:
        """Widest accumulator: dot-product sums and sums of them (0 if none is integer)."""
        acc: set[int] = set()
        for n in nx.topological_sort(self.graph):
            o = self.graph.nodes[n]["op"]
            # a node's bias add follows its mac without an edge (ops of one fx node are not chained)
            if o.kind == "mac" or (o.kind == "add" and (o.label == "bias" or any(
                    p in acc for p in self.graph.predecessors(n)))):
                acc.add(n)
        return max((self.graph.nodes[n]["op"].out_bits for n in acc
                    if not self.graph.nodes[n]["op"].is_float), default=0)
