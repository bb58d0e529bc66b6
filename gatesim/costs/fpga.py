"""FPGA cost model of a recurrent layer as hls4ml builds it (io_parallel; see
gatesim/costs/data/fpga.yaml for every constant and its source).

Structure, from hls4ml's Vivado templates (nnet_recurrent.h, nnet_dense_*.h, nnet_activation.h):
- each weighted sum (the input and the recurrent matrix) is one dense kernel with its own
  reuse factor R: ceil(n_in n_out / R) multipliers (min(n_in, R) under the resource
  strategy), each fed through an R:1 multiplexer; strategy `latency` keeps the weights as
  constants in the logic, strategy `resource` reads them from block RAM reshaped R words deep;
- everything else in a step (gate products, additions, casts) is fully unrolled: hls4ml's
  reuse factor applies to the dense kernels only;
- a sigmoid/tanh is a table of hls4ml's table size; a pipelined activation reads all its
  elements at once, so a block-RAM table is copied once per two lookups (dual-port ROM);
  `activation=hard` (or `hard_tanh`, tanh only) uses comparators instead;
- hls4ml's time loop (`*_stack`) is not pipelined: a sequence takes T step latencies;
  `pipeline_steps` overlaps steps (Que et al.'s template), one step plus (T - 1) intervals,
  the interval being the longest path through the state-dependent ops.
Energy: the part's static power and the used resources' dynamic power over that time.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

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
COMPONENTS = ("input_matrix", "recurrent_matrix", "activations", "elementwise")


class FpgaResources(Strict):
    lut_per_mult_bit2: Sourced
    lut_mult_max_bits: Sourced
    dsp_a_bits: Sourced
    dsp_b_bits: Sourced
    int8_macs_per_dsp: Sourced
    lut_per_adder_bit: Sourced
    lut_mux_inputs: Sourced
    ff_per_register_bit: Sourced
    lutram_bits_per_lut: Sourced
    lutram_max_bits: Sourced
    bram18_bits: Sourced
    bram18_port_bits: Sourced
    bram18_depth: Sourced
    bram_read_ports: Sourced
    max_table_entries: Sourced
    table_index_bits: Sourced
    table_index_ops: Sourced
    hard_activation_ops: Sourced


class FpgaTiming(Strict):
    clock_mhz: Sourced
    op_cycles: Sourced
    chained_ops_per_cycle: Sourced


class FpgaPower(Strict):
    lut_uw_per_mhz: Sourced
    ff_uw_per_mhz: Sourced
    dsp_uw_per_mhz: Sourced
    bram18_uw_per_mhz: Sourced


class Part(Strict):
    lut: Sourced
    ff: Sourced
    dsp: Sourced
    bram18: Sourced
    static_w: Sourced


class FinnConstants(Strict):
    table_entries: Sourced
    index_bits: Sourced
    index_ops: Sourced


class FpgaCosts(Strict):
    schema_version: int
    resources: FpgaResources
    timing: FpgaTiming
    power: FpgaPower
    finn: FinnConstants
    parts: dict[str, Part]


class FpgaParams(Strict):
    reuse_factor: int = Field(1, ge=1)
    recurrent_reuse_factor: int | None = Field(None, ge=1)
    strategy: Literal["latency", "resource"] = "latency"
    activation: Literal["table", "hard_tanh", "hard"] = "table"
    pipeline_steps: bool = False
    # FINN-L's folded layer (Rybalkin et al., FPL 2018): PE units at a time, folds of n_in /
    # SIMD cycles, both directions on one datapath (gatesim/costs/finn.py)
    architecture: Literal["hls4ml", "finn"] = "hls4ml"
    pe: int = Field(1, ge=1)
    simd_input: int | None = Field(None, ge=1)
    simd_recurrent: int | None = Field(None, ge=1)
    directions: int = Field(1, ge=1, le=2)
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


# what one node builds: units, resources per unit, resources of the node as a whole, cycles
Built = tuple[int, dict[str, float], dict[str, float], float]


class Hardware:
    """What hls4ml builds for one op node: unit count, resources, cycles."""

    def __init__(self, costs: FpgaCosts, p: FpgaParams):
        self.r, self.t, self.p = costs.resources, costs.timing, p

    def multiplier(self, a: int, b: int) -> dict[str, float]:
        r = self.r
        if max(a, b) <= r.lut_mult_max_bits.value:
            return {"lut": r.lut_per_mult_bit2.value * a * b}
        if max(a, b) <= 8:
            return {"dsp": 1 / r.int8_macs_per_dsp.value}
        wide, narrow = max(a, b), min(a, b)
        return {"dsp": math.ceil(wide / r.dsp_a_bits.value) * math.ceil(narrow / r.dsp_b_bits.value)}

    def sharing(self, component: str, o: Op) -> int:
        """The reuse factor of a dense kernel."""
        p = self.p
        return (p.recurrent_reuse_factor or p.reuse_factor) if component == "recurrent_matrix" else p.reuse_factor

    def effective(self, o: Op, reuse: int) -> int:
        """hls4ml's effective reuse of a dense kernel: R (latency strategy, its multiplier_limit
        ceil(n_in n_out / R)); min(n_in, R) under the resource strategy (its `multfactor`)."""
        return max(1, min(reuse, o.reduction or reuse)) if self.p.strategy == "resource" else reuse

    def mux_luts(self, inputs: int, bits: int) -> float:
        """An inputs:1 multiplexer of `bits` bits in LUT6s (each a 4:1 mux per bit)."""
        if inputs <= 1:
            return 0.0
        return bits * math.ceil((inputs - 1) / (self.r.lut_mux_inputs.value - 1))

    def chained(self, ops: float) -> float:
        return ops / self.t.chained_ops_per_cycle.value

    def dense(self, o: Op, reuse: int, lookups: int) -> Built:
        """A dense kernel: its multipliers, each with an accumulator and an R:1 operand mux
        (the weights' too when they are constants, strategy latency)."""
        r = self.effective(o, reuse)
        x_bits, w_bits = (o.operand_bits + (o.bits, o.bits))[:2]
        unit = self.multiplier(x_bits, w_bits)
        unit["lut"] = unit.get("lut", 0) + o.out_bits * self.r.lut_per_adder_bit.value
        per_pass = max(1, math.ceil((o.reduction or 1) / r))  # products summed per output per pass
        if self.p.strategy == "latency":  # the scheduler shares each multiplier: both operands muxed
            unit["lut"] += self.mux_luts(r, x_bits + w_bits)
            whole = {}
        else:  # nnet_dense_resource: per cycle the multipliers read n_in / R distinct inputs, weights a BRAM word
            whole = {"lut": per_pass * self.mux_luts(r, x_bits)}
        cycles = r + math.ceil(self.chained(math.log2(per_pass))) if per_pass > 1 else r
        return math.ceil(o.count / r), unit, whole, cycles

    def weights(self, o: Op, reuse: int, kernel: Op) -> dict[str, float]:
        """Weight memory of a kernel: block RAM, R words deep, under strategy resource; constants
        in the multipliers' logic otherwise (and at R = 1, where hls4ml keeps them in registers)."""
        if self.p.strategy != "resource" or reuse <= 1:
            return {}
        r = self.r
        width = math.ceil(o.count / reuse) * o.bits
        return {"bram18": math.ceil(reuse / r.bram18_depth.value) * math.ceil(width / r.bram18_port_bits.value)}

    def hard(self, o: Op) -> bool:
        return self.p.activation == "hard" or (self.p.activation == "hard_tanh" and o.kind == "tanh")

    def activation(self, o: Op, reuse: int, lookups: int) -> Built:
        """A table op's elements: a hard clamp each, or a lookup each with its index logic; a
        LUT ROM per lookup, or block-RAM copies for the `lookups` of the activation call this op
        heads (0: its call's copies are counted at its head)."""
        r = self.r
        if self.hard(o):
            ops = r.hard_activation_ops.value
            return o.count, {"lut": ops * o.bits * r.lut_per_adder_bit.value}, {}, math.ceil(self.chained(ops))
        index_ops = r.table_index_ops.value
        unit = {"lut": index_ops * r.table_index_bits.value * r.lut_per_adder_bit.value}
        bits = table_entries(o, r) * o.out_bits
        shared = {}
        if bits <= r.lutram_max_bits.value:
            unit["lut"] += math.ceil(bits / r.lutram_bits_per_lut.value)
        elif lookups:  # block-RAM copies serve the call's lookups two at a time
            copies = math.ceil(lookups / r.bram_read_ports.value)
            shared["bram18"] = copies * math.ceil(bits / r.bram18_bits.value)
        return o.count, unit, shared, math.ceil(self.chained(index_ops)) + self.t.op_cycles.value

    def product(self, o: Op, reuse: int, lookups: int) -> Built:  # gate products: unrolled, registered
        return o.count, self.multiplier(*(o.operand_bits + (o.bits, o.bits))[:2]), {}, self.t.op_cycles.value

    def simple(self, o: Op, reuse: int, lookups: int) -> Built:  # chained within a clock period
        return o.count, {"lut": o.bits * self.r.lut_per_adder_bit.value}, {}, self.chained(1)

    def memory(self, o: Op, reuse: int, lookups: int) -> Built:  # wires and registers counted elsewhere
        return 0, {}, {}, 0.0


# Per kind: the Hardware method that builds one node (units, resources per unit and of the
# node, cycles); an architecture (gatesim/costs/finn.py) overrides the methods.
PRICES: dict[str, str] = per_kind(
    (WEIGHTED_SUMS, "dense"),
    (PRODUCTS - WEIGHTED_SUMS, "product"),
    (TABLES, "activation"),
    (ADDITIONS | COMPARES | RESCALES, "simple"),
    (MEMORY, "memory"),
)


class FpgaModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(FpgaParams, "fpga", params)
        costs = load(FpgaCosts, "fpga")
        if p.part not in costs.parts:
            raise GatesimError(f"fpga: unknown part {p.part!r}; allowed: {', '.join(costs.parts)}")
        clock_mhz = p.clock_mhz or costs.timing.clock_mhz.value
        g = graph.graph
        recurrent = recurrent_nodes(graph)
        if p.architecture == "finn":
            from gatesim.costs.finn import Folded

            hw: Hardware = Folded(costs, p, graph.sizes)
        else:
            hw = Hardware(costs, p)
        # each dense kernel's component and sharing (its reuse factor; its SIMD when folded),
        # by its traced node (its weights share it)
        kernels = {d["fx_node"]: (c, hw.sharing(c, d["op"])) for n, d in g.nodes(data=True)
                   if d["op"].kind in WEIGHTED_SUMS
                   for c in ["recurrent_matrix" if n in recurrent else "input_matrix"]}
        kernel_ops = {d["fx_node"]: d["op"] for n, d in g.nodes(data=True) if d["op"].kind in WEIGHTED_SUMS}
        effective = {fx: hw.effective(op, kernels[fx][1]) for fx, op in kernel_ops.items()}
        calls = activation_calls(graph)
        rows, cycles = [], {}
        for nid, data in g.nodes(data=True):
            o = data["op"]
            component, reuse = kernels.get(data["fx_node"], (None, 1))
            used = dict.fromkeys(RESOURCES, 0.0)
            if o.kind == "load" and o.label == "weights" and component:
                units, cycles[nid] = 0, 0.0
                used.update(hw.weights(o, effective[data["fx_node"]], kernel_ops[data["fx_node"]]))
            else:
                build = getattr(hw, price_of("fpga", PRICES, o.kind, data["fx_node"]))
                units, unit, whole, cycles[nid] = build(o, reuse, calls.get(nid, 0))
                for res, amount in unit.items():
                    used[res] += units * amount
                for res, amount in whole.items():
                    used[res] += amount
                if o.kind not in MEMORY:
                    used["ff"] += units * o.out_bits * costs.resources.ff_per_register_bit.value
            if component is None:
                component = "activations" if o.kind in TABLES else "elementwise"
            rows.append({"node": nid, "fx_node": data["fx_node"], "kind": o.kind, "count": o.count,
                         "bits": o.bits, "units": units,
                         "reuse_factor": reuse if o.kind in WEIGHTED_SUMS and p.architecture == "hls4ml" else 1,
                         "component": component, **{r: math.ceil(used[r] - 1e-9) for r in RESOURCES},
                         "cycles": cycles[nid]})
        path = _critical_path(graph, cycles)
        on_path = sum(cycles[n] for n in path)
        step_cycles = math.ceil(on_path - 1e-9)
        stretch = step_cycles / on_path if on_path else 0.0
        loop = _critical_path(graph, {n: (c if n in recurrent else 0) for n, c in cycles.items()})
        interval = math.ceil(sum(cycles[n] for n in loop if n in recurrent) - 1e-9) or step_cycles
        sequence_cycles = (step_cycles + (p.steps - 1) * interval) if p.pipeline_steps else p.steps * step_cycles
        hz = clock_mhz * 1e6
        step_s, sequence_s = step_cycles / hz, sequence_cycles / hz
        totals = {r: sum(row[r] for row in rows) for r in RESOURCES}
        pw = costs.power
        per_mhz = {"lut": pw.lut_uw_per_mhz, "ff": pw.ff_uw_per_mhz, "dsp": pw.dsp_uw_per_mhz,
                   "bram18": pw.bram18_uw_per_mhz}
        for row in rows:  # dynamic energy of each node's hardware over one step
            dynamic_w = sum(row[r] * per_mhz[r].value * clock_mhz * 1e-6 for r in RESOURCES)
            row["energy_pj"] = dynamic_w * step_s * 1e12
            # chained ops share cycles: the path's nodes split the whole cycles of a step
            row["latency_s"] = cycles[row["node"]] * stretch / hz if row["node"] in path else 0.0
        part = costs.parts[p.part]
        static_w = part.static_w.value
        dynamic_w = sum(totals[r] * per_mhz[r].value * clock_mhz * 1e-6 for r in RESOURCES)
        static_pj, dynamic_pj = static_w * sequence_s * 1e12, dynamic_w * sequence_s * 1e12
        utilization = {r: totals[r] / getattr(part, r).value for r in RESOURCES}
        resources = {**totals, "multipliers": sum(r["units"] for r in rows if r["kind"] in PRODUCTS),
                     "cycles_per_step": step_cycles, "initiation_interval_cycles": interval if p.pipeline_steps
                     else step_cycles, "sequence_cycles": sequence_cycles,
                     "clock_mhz": clock_mhz, "part": p.part, "utilization": utilization,
                     "fits": all(u <= 1 for u in utilization.values())}
        over = {r: u for r, u in utilization.items() if u > 1}
        shape = ({"architecture": "finn", "pe": p.pe, "simd_input": hw.simd_i, "simd_recurrent": hw.simd_r,
                  "directions": p.directions} if p.architecture == "finn" else
                 {"reuse_factor": p.reuse_factor, "recurrent_reuse_factor": p.recurrent_reuse_factor or p.reuse_factor,
                  "strategy": p.strategy, "activation": p.activation, "pipeline_steps": p.pipeline_steps})
        details = {"steps": p.steps, **shape,
                   "static_energy_pj": static_pj, "dynamic_energy_pj": dynamic_pj,
                   "static_power_w": static_w, "dynamic_power_w": dynamic_w,
                   "components": {c: {r: sum(row[r] for row in rows if row["component"] == c) for r in RESOURCES}
                                  for c in COMPONENTS},
                   "per_step": {"energy_pj": (static_w + dynamic_w) * step_s * 1e12, "latency_s": step_s,
                                "static_energy_pj": static_w * step_s * 1e12, "cycles": step_cycles},
                   # a design the part cannot hold is not built, so not costed as if it were
                   "infeasible": (f"does not fit {p.part}: " + ", ".join(
                       f"{r} {u:.0%} of {getattr(part, r).value:,.0f}" for r, u in over.items())) if over else None}
        return Estimate("fpga", static_pj + dynamic_pj, sequence_s, resources, by_kind(rows), rows, details)


def activation_calls(graph: OpGraph) -> dict[int, int]:
    """hls4ml applies one activation call to every gate that needs it at once (sigmoid over
    r and z; over i, f and o): table ops of one kind with no path between them are one call.
    Returns each call's first node and the call's lookups."""
    g = graph.graph
    groups: list[list[int]] = []
    for n in nx.topological_sort(g):
        if g.nodes[n]["op"].kind not in TABLES:
            continue
        kind, before = g.nodes[n]["op"].kind, nx.ancestors(g, n)
        home = next((grp for grp in groups if g.nodes[grp[0]]["op"].kind == kind
                     and not any(m in before for m in grp)), None)
        if home is None:
            groups.append([n])
        else:
            home.append(n)
    return {grp[0]: sum(g.nodes[m]["op"].count for m in grp) for grp in groups}


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
    summary="the layer as hls4ml builds it: resources (LUT, FF, DSP, BRAM), cycles, static and dynamic energy",
    options=(Option("reuse_factor", "--reuse-factor",
                    "hls4ml ReuseFactor of the input-matrix kernel (default 1); other ops are unrolled", int),
             Option("recurrent_reuse_factor", "--recurrent-reuse-factor",
                    "reuse factor of the recurrent (state) matrix kernel; default --reuse-factor", int),
             Option("strategy", "--strategy", "hls4ml Strategy: latency (weights as constants, the default) or "
                                              "resource (weights in block RAM)"),
             Option("activation", "--activation", "sigmoid/tanh as hls4ml tables (table, the default), "
                                                  "hard_tanh (tanh only) or hard (both)"),
             Option("pipeline_steps", "--pipeline-steps", "overlap consecutive steps (hls4ml's loop does not)", bool),
             Option("architecture", "--architecture", "hls4ml (the default) or finn: FINN-L's folded layer, "
                                                      "shaped by --pe, --simd-input, --simd-recurrent, --directions"),
             Option("pe", "--pe", "finn: hidden units computed at once (default 1)", int),
             Option("simd_input", "--simd-input", "finn: SIMD of the input product; the fold n_in / SIMD is the "
                                                  "cycles per unit group (default: n_in)", int),
             Option("simd_recurrent", "--simd-recurrent", "finn: SIMD of the recurrent product (default: H)", int),
             Option("directions", "--directions", "finn: 2 for a bidirectional layer on one datapath", int),
             Option("clock_mhz", "--clock-mhz", "clock (default from the fpga cost file)", float),
             Option("part", "--part", "part whose totals give utilization and static power "
                                      "(xcvu9p, xcku115, xcu50, xc7z020)")),
    second_objective=("fpga_lut", "LUTs"),  # area, what the reuse factor trades against cycles
    check_sweep=check_sweep))
