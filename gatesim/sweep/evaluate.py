"""One sweep point in, one flat results row out. Runs in worker processes (local pool or Dask),
so it imports only what costing needs and keeps traced cell templates between calls."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from gatesim.cells import CellConfig
from gatesim.costs import estimate
from gatesim.costs.cells import COUNTERPART
from gatesim.counting import template
from gatesim.errors import GatesimError
from gatesim.ops import KINDS
from gatesim.sweep.config import ADD_GATED_ONLY
from gatesim.sweep.points import BITS
from gatesim.trace import OpGraph

DESIGN = ("cell", "input_size", "hidden_size", "steps", "batch", "weight_bits", "act_bits", "gate_bits",
          "acc_bits", "inhibit", "candidate_act", "theta")
CONFIG_FIELDS = (*BITS, *ADD_GATED_ONLY)


def ignore_interrupts() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it saves what is done and stops
    the pool); a worker dying mid-task would only print noise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def cell_config(point: dict[str, Any]) -> CellConfig:
    """The cell's config; variant axes a point leaves unset (None) keep their defaults."""
    return CellConfig(**{k: point[k] for k in CONFIG_FIELDS if point[k] is not None or k.endswith("_bits")})


def _graph(point: dict[str, Any], config: CellConfig, graphs: dict[tuple, OpGraph]) -> OpGraph:
    """The point's op graph under `config`, built once per batch (targets share it)."""
    i, h, b = point["input_size"], point["hidden_size"], point["batch"]
    key = (point["cell"], config, i, h, b)
    if key not in graphs:
        graphs[key] = template(point["cell"], i, h, config, b).at(i, h, b)
    return graphs[key]


def _flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{name}_", value))
        elif isinstance(value, (int, float, bool, str)) or value is None:
            out[f"{prefix}{name}"] = value
    return out


def _figures(graph: OpGraph, point: dict[str, Any], config: CellConfig,
             graphs: dict[tuple, OpGraph]) -> dict[str, Any]:
    """What the graph alone says: op counts by kind, depths, widths and the overflow flag."""
    row: dict[str, Any] = {f"ops_{k}": n for k, n in graph.counts().items()}
    row.update({f"depth_{k}": v for k, v in graph.depth().items()})
    products = [o.out_bits for o in graph.ops() if o.kind == "mul" and not o.is_float]
    row["widest_product_bits"] = max(products, default=0)
    needed = graph.accumulator_bits()
    if config.acc_bits is not None:  # proven need of the same cell with wide accumulators
        needed = _graph(point, config.model_copy(update={"acc_bits": None}), graphs).accumulator_bits()
    row["acc_bits_needed"] = needed
    row["acc_overflow_possible"] = config.acc_bits is not None and needed > config.acc_bits
    return row


def evaluate_point(point: dict[str, Any], graphs: dict[tuple, OpGraph] | None = None) -> dict[str, Any]:
    """The results row of one point; a point the target cannot take is a row with its reason."""
    graphs = {} if graphs is None else graphs
    cell, target, params = point["cell"], point["target"], dict(point["params"])
    row: dict[str, Any] = {k: point[k] for k in DESIGN}
    row.update(pair=cell.removeprefix("add_") if cell in COUNTERPART else cell,
               gating="add" if cell.startswith("add_") else "mul" if cell in COUNTERPART else "other",
               target=target, **params, feasible=True, error=None, energy_pj=None, latency_s=None)
    if params.get("profile"):  # the file's name: the key already holds its content
        row["profile"] = Path(params["profile"]).name
    try:
        config = cell_config(point)
        graph = _graph(point, config, graphs)
        row.update(_figures(graph, point, config, graphs))
        est = estimate(graph, target, steps=point["steps"], **params)
    except GatesimError as exc:
        row.update(feasible=False, error=str(exc))
        return row
    per_step = est.details.get("per_step", {})
    row.update(energy_pj=est.energy_pj, latency_s=est.latency_s,
               step_energy_pj=per_step.get("energy_pj", est.energy_pj / point["steps"]),
               step_latency_s=per_step.get("latency_s", est.latency_s / point["steps"]))
    row.update(_flatten(f"{target}_", {k: v for k, v in est.resources.items() if k not in params}))
    for kind in KINDS:
        figures = est.by_kind.get(kind, {})
        row[f"step_latency_s_{kind}"] = figures.get("latency_s", 0.0)
        row[f"step_energy_pj_{kind}"] = figures.get("energy_pj", 0.0)
    return row


def evaluate(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Rows for a batch of (key, point); points sharing a cell and sizes share one graph."""
    graphs: dict[tuple, OpGraph] = {}
    return [(key, {"key": key, **evaluate_point(point, graphs)}) for key, point in batch]
