"""FPGA cost model, hls4ml style: every op of a step is unrolled into hardware units, each
unit reused `reuse_factor` times; resources per unit from its operand widths, cycles from
the longest path, energy from the part's power figures (gatesim/costs/data/fpga.yaml).

A step depends on the previous step's state only through its recurrent part: the work on
x for the next step overlaps the current one, so the initiation interval (II) is the longest
path through the state-dependent ops, and a sequence of T steps takes one full step's
latency plus (T - 1) intervals.
Matrix work on the input x (not the state) may use its own `reuse_factor`; the recurrent
matrix work uses `recurrent_reuse_factor` (default: the same).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import networkx as nx
from pydantic import Field

from gatesim.costs.base import Estimate, by_kind, per_kind, price_of
from gatesim.costs.config import Sourced, Strict, load, parameters
from gatesim.costs.targets import Option, Target, register
from gatesim.errors import GatesimError
from gatesim.ops import ADDITIONS, COMPARES, MEMORY, PRODUCTS, RESCALES, TABLES, WEIGHTED_SUMS, Op

if TYPE_CHECKING:
    from gatesim.trace.opgraph import OpGraph

RESOURCES = ("lut", "ff", "dsp", "bram18")


class FpgaResources(Strict):
    lut_per_mult_bit2: Sourced
    lut_mult_max_bits: Sourced
    dsp_a_bits: Sourced
    dsp_b_bits: Sourced
    int8_macs_per_dsp: Sourced
    lut_per_adder_bit: Sourced
    ff_per_register_bit: Sourced
    lutram_bits_per_lut: Sourced
    lutram_max_bits: Sourced
    bram18_bits: Sourced
    max_table_entries: Sourced


class FpgaTiming(Strict):
    clock_mhz: Sourced
    op_cycles: Sourced


class FpgaPower(Strict):
    static_w: Sourced
    lut_uw_per_mhz: Sourced
    ff_uw_per_mhz: Sourced
    dsp_uw_per_mhz: Sourced
    bram18_uw_per_mhz: Sourced


class Part(Strict):
    lut: Sourced
    ff: Sourced
    dsp: Sourced
    bram18: Sourced


class FpgaCosts(Strict):
    schema_version: int
    resources: FpgaResources
    timing: FpgaTiming
    power: FpgaPower
    parts: dict[str, Part]


class FpgaParams(Strict):
    reuse_factor: int = Field(1, ge=1)
    recurrent_reuse_factor: int | None = Field(None, ge=1)
    clock_mhz: float | None = Field(None, gt=0)
    part: str = "xcvu9p"
    steps: int = Field(1, ge=1)


def recurrent_nodes(graph: OpGraph) -> set[int]:
    """Op nodes downstream of a state input (every input after the first, x)."""
    g = graph.graph
    inputs = sorted(n for n, d in g.nodes(data=True) if d["op"].kind == "load" and d["op"].label == "input")
    reached: set[int] = set()
    for state in inputs[1:]:
        reached |= nx.descendants(g, state)
    return reached


def table_entries(op: Op, resources: FpgaResources | None = None) -> int:
    """Entries of a table unit: one per input value, at most hls4ml's table_size (a wider or
    real-valued input indexes it by its top bits)."""
    limit = int((resources or load(FpgaCosts, "fpga").resources).max_table_entries.value)
    return limit if op.is_float else min(2**op.bits, limit)


class Units:
    """Resources of one hardware unit of an op, from its operand widths."""

    def __init__(self, r: FpgaResources):
        self.r = r

    def multiplier(self, a: int, b: int) -> dict[str, float]:
        r = self.r
        if max(a, b) <= r.lut_mult_max_bits.value:
            return {"lut": r.lut_per_mult_bit2.value * a * b}
        if max(a, b) <= 8:
            return {"dsp": 1 / r.int8_macs_per_dsp.value}
        wide, narrow = max(a, b), min(a, b)
        return {"dsp": math.ceil(wide / r.dsp_a_bits.value) * math.ceil(narrow / r.dsp_b_bits.value)}

    def table(self, op: Op) -> dict[str, float]:
        r = self.r
        bits = table_entries(op, r) * op.out_bits
        if bits <= r.lutram_max_bits.value:
            return {"lut": math.ceil(bits / r.lutram_bits_per_lut.value)}
        return {"bram18": math.ceil(bits / r.bram18_bits.value)}

    def multiplier_of(self, op: Op) -> dict[str, float]:
        a, b = (op.operand_bits + (op.bits,))[:2]
        unit = self.multiplier(a, b)
        if op.info.weighted_sum:  # the accumulator behind each multiplier
            unit["lut"] = unit.get("lut", 0) + op.out_bits * self.r.lut_per_adder_bit.value
        return unit

    def adder(self, op: Op) -> dict[str, float]:  # adders, ReLU, max, requant
        return {"lut": op.bits * self.r.lut_per_adder_bit.value}


# Per kind: the hardware unit of one element (None: memory, no unit) and the cycles of one op
# given its reuse factor and the part's cycles per simple op.
Unit = Callable[[Units, Op], dict[str, float]] | None
Cycles = Callable[[Op, int, float], float]
PRICES: dict[str, tuple[Unit, Cycles]] = per_kind(
    # each multiplier used `reuse` times, then the adder tree
    (WEIGHTED_SUMS, (Units.multiplier_of, lambda o, reuse, c: reuse + math.ceil(math.log2(max(o.reduction, 1))))),
    (PRODUCTS - WEIGHTED_SUMS, (Units.multiplier_of, lambda o, reuse, c: math.ceil(c) * reuse)),
    (TABLES, (Units.table, lambda o, reuse, c: math.ceil(c))),
    (ADDITIONS | COMPARES | RESCALES, (Units.adder, lambda o, reuse, c: math.ceil(c))),
    (MEMORY, (None, lambda o, reuse, c: 0)),
)


class FpgaModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(FpgaParams, "fpga", params)
        costs = load(FpgaCosts, "fpga")
        if p.part not in costs.parts:
            raise GatesimError(f"fpga: unknown part {p.part!r}; allowed: {', '.join(costs.parts)}")
        clock_mhz = p.clock_mhz or costs.timing.clock_mhz.value
        recurrent = recurrent_nodes(graph)
        reuse_of = {n: (p.recurrent_reuse_factor or p.reuse_factor) if n in recurrent else p.reuse_factor
                    for n in graph.graph.nodes}
        mac_reuse = {d["fx_node"]: reuse_of[n] for n, d in graph.graph.nodes(data=True)
                     if d["op"].info.weighted_sum}
        units, rows, cycles = Units(costs.resources), [], {}
        for nid, data in graph.graph.nodes(data=True):
            o, reuse = data["op"], reuse_of[nid]
            unit, op_cycles = price_of("fpga", PRICES, o.kind, data["fx_node"])
            used = dict.fromkeys(RESOURCES, 0.0)
            if o.kind == "load" and o.label in ("weights", "bias") and mac_reuse.get(data["fx_node"], 1) > 1:
                # shared multipliers read their weights from block RAM; fully parallel ones
                # have them as constants in the logic
                used["bram18"] = math.ceil(o.count * o.bits / costs.resources.bram18_bits.value)
            elif unit is not None:
                n_units = math.ceil(o.count / reuse)
                for res, amount in unit(units, o).items():
                    used[res] += n_units * amount
                used["ff"] += n_units * o.out_bits * costs.resources.ff_per_register_bit.value
            cycles[nid] = op_cycles(o, reuse, costs.timing.op_cycles.value)
            rows.append({"node": nid, "fx_node": data["fx_node"], "kind": o.kind, "count": o.count,
                         "bits": o.bits, "reuse_factor": reuse, **{r: math.ceil(used[r]) for r in RESOURCES},
                         "cycles": cycles[nid]})
        path = self._critical_path(graph, cycles)
        step_cycles = sum(cycles[n] for n in path)
        loop = self._critical_path(graph, {n: (c if n in recurrent else 0) for n, c in cycles.items()})
        interval = sum(cycles[n] for n in loop if n in recurrent) or step_cycles
        step_s = step_cycles / (clock_mhz * 1e6)
        sequence_s = (step_cycles + (p.steps - 1) * interval) / (clock_mhz * 1e6)
        totals = {r: sum(row[r] for row in rows) for r in RESOURCES}
        pw = costs.power
        per_mhz = {"lut": pw.lut_uw_per_mhz, "ff": pw.ff_uw_per_mhz, "dsp": pw.dsp_uw_per_mhz,
                   "bram18": pw.bram18_uw_per_mhz}
        for row in rows:  # dynamic energy of each node's hardware over the step
            dynamic_w = sum(row[r] * per_mhz[r].value * clock_mhz * 1e-6 for r in RESOURCES)
            row["energy_pj"] = dynamic_w * step_s * 1e12
            row["latency_s"] = cycles[row["node"]] / (clock_mhz * 1e6) if row["node"] in path else 0.0
        static_pj = pw.static_w.value * step_s * 1e12
        step_pj = static_pj + sum(row["energy_pj"] for row in rows)
        # the hardware is busy for the whole sequence (a graph of memory traffic alone takes no cycles)
        sequence_pj = step_pj * sequence_s / step_s if step_s else step_pj * p.steps
        part = costs.parts[p.part]
        utilization = {r: totals[r] / getattr(part, r).value for r in RESOURCES}
        resources = {**totals, "multipliers": sum(math.ceil(r["count"] / r["reuse_factor"]) for r in rows
                                                  if r["kind"] in PRODUCTS),
                     "cycles_per_step": step_cycles, "initiation_interval_cycles": interval,
                     "sequence_cycles": step_cycles + (p.steps - 1) * interval,
                     "clock_mhz": clock_mhz, "part": p.part, "utilization": utilization,
                     "fits": all(u <= 1 for u in utilization.values())}
        scale = sequence_pj / step_pj if step_pj else p.steps  # the sequence's energy per step's
        over = {r: u for r, u in utilization.items() if u > 1}
        details = {"steps": p.steps, "reuse_factor": p.reuse_factor,
                   "recurrent_reuse_factor": p.recurrent_reuse_factor or p.reuse_factor,
                   "static_energy_pj": static_pj * scale, "dynamic_energy_pj": (step_pj - static_pj) * scale,
                   "per_step": {"energy_pj": step_pj, "latency_s": step_s, "static_energy_pj": static_pj,
                                "cycles": step_cycles},
                   # a design the part cannot hold is not built, so not costed as if it were
                   "infeasible": (f"does not fit {p.part}: " + ", ".join(
                       f"{r} {u:.0%} of {getattr(part, r).value:,.0f}" for r, u in over.items())) if over else None}
        return Estimate("fpga", sequence_pj, sequence_s, resources, by_kind(rows), rows, details)

    @staticmethod
    def _critical_path(graph: OpGraph, cycles: dict[int, float]) -> list[int]:
        best: dict[int, tuple[float, list[int]]] = {}
        for n in nx.topological_sort(graph.graph):
            prev = max((best[p] for p in graph.graph.predecessors(n)), default=(0.0, []), key=lambda b: b[0])
            best[n] = (prev[0] + cycles[n], prev[1] + [n])
        return max(best.values(), key=lambda b: b[0])[1] if best else []


def check_sweep(axes: Any, params: dict[str, list]) -> None:
    parts = load(FpgaCosts, "fpga").parts
    for part in params.get("part", []):
        if part not in parts:
            raise ValueError(f"targets.fpga.part: {part!r}; allowed: {', '.join(parts)}")


TARGET = register(Target(
    name="fpga", model=FpgaModel(), params=FpgaParams,
    summary="hls4ml-style resources (LUT, FF, DSP, BRAM), cycles and energy from the part's power",
    options=(Option("reuse_factor", "--reuse-factor", "uses of each hardware unit per step (default 1)", int),
             Option("recurrent_reuse_factor", "--recurrent-reuse-factor",
                    "reuse factor of the recurrent (state) matrix work; default --reuse-factor", int),
             Option("clock_mhz", "--clock-mhz", "clock (default from the fpga cost file)", float),
             Option("part", "--part", "part whose totals give utilization (xcvu9p, xcku115)")),
    second_objective=("fpga_lut", "LUTs"),  # area, what the reuse factor trades against cycles
    check_sweep=check_sweep))
