"""Targets are records and op kinds are priced through one dispatch per model: a new target
needs no edit outside its own module, and no model prices a kind silently."""
import importlib
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pytest
from pydantic import BaseModel, ConfigDict, Field

import gatesim
from gatesim import GatesimError, ops
from gatesim.costs import TARGETS, Estimate, Option, Target, by_kind
from gatesim.costs.base import per_kind, price_of
from gatesim.ops import KINDS, Op
from gatesim.pipeline import estimate_cell
from gatesim.report import write_report
from gatesim.trace import OpGraph


def one_node_graph(kind: str) -> OpGraph:
    """A single op of `kind` (8-bit, on a variable and a constant where it takes two), its
    result stored as the step's output (work no output needs is dead to an HE compiler)."""
    two = ops.KINDS[kind].product or ops.KINDS[kind].addition
    op = Op(kind, 16, (8, 8) if two else (8,), (True, False) if two else (True,), 8,
            reduction=4 if ops.KINDS[kind].weighted_sum else 0, label="weights" if kind == "load" else "")
    graph = nx.DiGraph()
    graph.add_node(0, op=op, fx_node=f"the_{kind}")
    if kind != "store":
        graph.add_node(1, op=Op("store", 4, (8,), (True,), 8, label="state"), fx_node="output")
        graph.add_edge(0, 1)
    return OpGraph(graph, {"batch": 1, "input_size": 4, "hidden_size": 4})


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_prices_or_refuses_every_kind_by_name(target, kind):
    try:
        est = TARGETS[target].model.estimate(one_node_graph(kind), {})
    except GatesimError as exc:
        assert target in str(exc) and kind in str(exc)
        return
    assert est.latency_s >= 0 and est.energy_pj >= 0
    model = importlib.import_module(type(TARGETS[target].model).__module__)
    assert kind in model.PRICES  # an explicit price (zero where the model says why), not a default
    if not KINDS[kind].memory and target in ("cpu", "fpga", "tfhe"):
        assert est.latency_s > 0


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_kind_no_model_knows_is_refused_naming_model_node_and_kind(target, monkeypatch):
    monkeypatch.setitem(ops.KINDS, "popcount", ops.Kind("bits set in a word"))
    with pytest.raises(GatesimError, match=rf"{target}: node 'the_popcount': no price for op kind 'popcount'"):
        TARGETS[target].model.estimate(one_node_graph("popcount"), {})


def test_a_price_table_rejects_a_kind_priced_twice():
    with pytest.raises(ValueError, match="two prices"):
        per_kind((ops.PRODUCTS, 1), (ops.WEIGHTED_SUMS, 2))
    with pytest.raises(GatesimError, match="toy: node 'n'"):
        price_of("toy", {}, "mac", "n")


def test_kind_groups_derive_from_the_properties():
    assert ops.MULTIPLICATIVE == {"mul"} and ops.MEMORY == {"load", "store"}
    assert ops.UNIVARIATE == ops.NONLINEAR | ops.RESCALES
    assert all(any([k.memory, k.product, k.addition, k.table, k.compare, k.rescale]) for k in KINDS.values())


# ----------------------------------------------------------------------------- a toy target


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ns_per_op: float = Field(1.0, gt=0)
    steps: int = Field(1, ge=1)


@dataclass
class ToyModel:
    """One ns per element of every computing op; no energy."""

    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = ToyParams(**params)
        rows = [{"node": n, "kind": d["op"].kind, "energy_pj": 0.0,
                 "latency_s": 0.0 if d["op"].info.memory else d["op"].count * p.ns_per_op * 1e-9}
                for n, d in graph.graph.nodes(data=True)]
        step_s = sum(r["latency_s"] for r in rows)
        return Estimate("toy", 0.0, step_s * p.steps, {"ops": float(sum(d["op"].count for d in
                        dict(graph.graph.nodes(data=True)).values()))}, by_kind(rows), rows,
                        {"per_step": {"latency_s": step_s}})


@pytest.fixture
def toy(monkeypatch):
    record = Target(name="toy", model=ToyModel(), params=ToyParams, summary="counts elements",
                    options=(Option("ns_per_op", "--ns-per-op", "nanoseconds per element", float),),
                    second_objective=("toy_ops", "elements per step"))
    monkeypatch.setitem(TARGETS, "toy", record)
    return record


def test_a_toy_target_registered_here_estimates_sweeps_and_reports(toy, tmp_path):
    est = gatesim.estimate(gatesim.build_cell("gru", 4, 8), target="toy", ns_per_op=2.0)
    counted = gatesim.count("gru", 4, 8)["per_step"]
    computing = sum(n for k, n in counted.items() if not KINDS[k].memory)
    assert est.latency_s == pytest.approx(computing * 2e-9)

    out = estimate_cell("add_gru", 4, 8, "toy", ns_per_op=2.0)
    assert out["add_vs_mul"]["pair"] == "add_gru/gru" and out["latency_s"] > 0

    result = gatesim.sweep({"schema_version": 1, "name": "toy", "axes": {"cell": ["gru", "add_gru"],
                            "hidden_size": [4, 8], "input_size": [4]}, "targets": {"toy": {"ns_per_op": [1.0, 3.0]}}},
                           out=tmp_path, workers=1)
    table = result.table
    assert len(table) == 8 and set(table["target"]) == {"toy"} and table["feasible"].all()
    assert set(table["ns_per_op"]) == {1.0, 3.0} and "toy_ops" in table
    slow, fast = (table[table["ns_per_op"] == v].sort_values(["cell", "hidden_size"]) for v in (3.0, 1.0))
    assert list(slow["latency_s"]) == pytest.approx([3 * v for v in fast["latency_s"]])
    html = result.files["html"].read_text()
    assert "toy: latency vs elements per step" in html
    md = result.files["markdown"].read_text()
    assert "| toy |" in md
    assert write_report(table, tmp_path / "again", "toy")["markdown"].read_text() == md
