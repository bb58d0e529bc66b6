"""Estimates of built-in (or `module:`) cells by name, with the add-gated / multiply-gated
ratio for the same sizes and bits: the comparison the tool exists for."""
from __future__ import annotations

from typing import Any

from gatesim.cells import CellConfig
from gatesim.costs import Estimate, estimate
from gatesim.counting import template

COUNTERPART = {"gru": "add_gru", "add_gru": "gru", "lstm": "add_lstm", "add_lstm": "lstm"}


def _ratio(a: float, m: float) -> float | None:
    return a / m if m else None


def add_vs_mul(add: Estimate, mul: Estimate, pair: str) -> dict[str, Any]:
    """Every figure of the add-gated estimate over the multiply-gated one."""
    numeric = {k: v for k, v in add.resources.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"pair": pair, "energy_pj": _ratio(add.energy_pj, mul.energy_pj),
            "latency_s": _ratio(add.latency_s, mul.latency_s),
            "resources": {k: _ratio(v, mul.resources.get(k, 0)) for k, v in numeric.items()}}


def estimate_cell(cell: str, input_size: int, hidden_size: int, target: str = "cpu", batch: int = 1,
                  config: CellConfig | None = None, **params: Any) -> dict[str, Any]:
    """The dict `gatesim estimate --json` prints."""
    config = config or CellConfig()
    if target == "ckks":  # CKKS computes on approximate reals: the cell without quantizers
        config = config.model_copy(update={"weight_bits": None, "act_bits": None, "gate_bits": None})

    def run(name: str) -> Estimate:
        graph = template(name, input_size, hidden_size, config, batch).at(input_size, hidden_size, batch)
        return estimate(graph, target, **params)

    result = run(cell)
    out = {"cell": cell, "input_size": input_size, "hidden_size": hidden_size, "batch": batch,
           "weight_bits": config.weight_bits, "act_bits": config.act_bits, **result.to_json(),
           "add_vs_mul": None}
    if isinstance(cell, str) and cell in COUNTERPART:
        other = run(COUNTERPART[cell])
        add_name, mul_name = (cell, COUNTERPART[cell]) if cell.startswith("add") else (COUNTERPART[cell], cell)
        add, mul = (result, other) if cell.startswith("add") else (other, result)
        out["add_vs_mul"] = add_vs_mul(add, mul, f"{add_name}/{mul_name}")
    return out
