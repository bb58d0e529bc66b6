"""TFHE cost model (Concrete-like). Programmable bootstraps dominate:

- a univariate function of an encrypted value (a table: sigmoid, tanh, ReLU, max with a
  constant, and every requantization) is one PBS per element. A chain of them inside one
  node (a requant then a table, a ReLU then a requant) is ONE table, so one PBS: this is the
  "fused univariate chain" rule, adopted after comparing with concrete-python's count;
- an encrypted x encrypted product is two PBS at one bit more than its operands;
- additions and products with clear weights cost no PBS, only a linear-op time.
PBS latency grows with the precision of the looked-up value. Given the crypto parameters a
compiler chose for each PBS (as `gatesim validate tfhe` takes them from concrete-python),
the latency follows each PBS's FFT work instead, fitted on the calibration circuits.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictBool

from gatesim.costs.base import Estimate, by_kind, per_kind, price_of
from gatesim.costs.config import ProfilePath, Sourced, Strict, load, load_file, parameters
from gatesim.costs.targets import PROFILE_OPTION, Option, Target, register
from gatesim.errors import GatesimError
from gatesim.ops import ADDITIONS, MEMORY, MULTIPLICATIVE, PRODUCTS, UNIVARIATE, Op

if TYPE_CHECKING:
    from gatesim.trace.opgraph import OpGraph

# How each kind runs on encrypted values: a table lookup (one PBS per element, chains in one
# node fused), an encrypted product (two PBS), a linear op (no PBS), or no op at all.
PRICES: dict[str, str] = per_kind((UNIVARIATE, "table"), (MULTIPLICATIVE, "product"),
                                  (ADDITIONS | (PRODUCTS - MULTIPLICATIVE), "linear"), (MEMORY, "none"))


class Pbs(Strict):
    seconds_at_3_bits: Sourced
    growth_per_bit: Sourced
    max_precision_bits: Sourced
    mul_pbs: Sourced
    mul_extra_bits: Sourced
    narrow_tables_up_to_bits: Sourced


class Linear(Strict):
    seconds_per_op: Sourced


class Keys(Strict):
    bootstrap_key_bytes: Sourced


class Security(Strict):
    minimal_lwe_dimension_128: Sourced


class TfheCosts(Strict):
    schema_version: int
    pbs: Pbs
    linear: Linear
    keys: Keys
    security: Security


class TfheProfile(Strict):
    """PBS latency per precision and linear-op cost measured with concrete-python."""

    schema_version: int
    target: str = Field(pattern="^tfhe$")
    host: dict[str, Any]
    pbs_s: dict[int, float]
    linear_op_s: float = Field(gt=0)
    bootstrap_key_bytes: dict[int, float]
    # seconds per PBS = sum of weight x pbs_time_terms, fitted on the calibration circuits
    pbs_time_fit: dict[str, float] | None = None
    compiler: dict[str, str] | None = None  # the concrete-python whose optimizer chose the grid below
    # the parameters that optimizer picks per table precision and input noise (squared 2-norm
    # `manp` of the coefficients feeding it), compiled on this host by `gatesim calibrate tfhe`
    pbs_parameters_by_noise: list[dict[str, int]] = []


class TfheParams(Strict):
    profile: ProfilePath | None = None
    steps: int = Field(1, ge=1)
    # observed: each table sized by the range its input takes over an input set run through
    # the integer simulator, as a compiler sizes it (needs the cell: estimate_cell, the CLI,
    # sweeps; a bare op graph has no cell to run and is costed by proven bounds, as its
    # details say); proven: by the worst case (an upper bound).
    bounds: Literal["observed", "proven"] = "observed"
    inputset_sequences: int = Field(16, ge=1, le=4096)
    inputset_steps: int = Field(20, ge=1, le=10_000)
    inputset_seed: int = Field(0, ge=0)  # the cell's random weights and the input sequences
    inputset_distribution: Literal["uniform", "normal"] = "uniform"
    # round every table input wider than this to its most significant bits first
    # (concrete-python's round_bit_pattern; Concrete ML's rounding threshold bits); needs observed bounds
    rounding_bits: int | None = Field(None, ge=1, le=16)
    rounding: dict[str, int] = {}  # table node -> lsbs rounded away (derived from rounding_bits)
    rounding_overflows: frozenset[str] = frozenset()  # rounded tables whose input rounds past its type's top
    constant_nodes: frozenset[str] = frozenset()  # tables known to give one value (see below)
    observed_bits: dict[str, int] = {}  # fx node -> bits its value takes over the compile inputs
    table_noise: dict[str, float] = {}  # node looking values up -> noise figure of its input (he.noise)
    table_input_bits: dict[str, int] = {}  # table node -> bits its own input takes over the compile inputs
    rounding_output_error: dict[str, float] | None = None  # what rounding changes in the outputs (he.bounds)
    pbs_parameters: list[dict] | None = None  # crypto parameters a compiler chose, with counts
    insecure: StrictBool = False  # cost parameters below 128-bit security anyway


DIMENSIONS = ("input_lwe_dimension", "glwe_dimension", "polynomial_size", "level")


def check_security(chosen: list[dict], minimal: int, where: str, insecure: bool) -> None:
    """Each parameter set well formed, and its LWE dimensions (the input LWE's n and the
    GLWE's k x N) at least the 128-bit minimum of Concrete's security curves, at whose noise
    Concrete's optimizer sets every key; below it no noise makes the key 128-bit secure."""
    for q in chosen:
        bad = [k for k in DIMENSIONS if not (isinstance(q.get(k), int) and q[k] >= 1)]
        if "count" in q and not (isinstance(q["count"], int) and q["count"] >= 0):
            bad.append("count")
        if bad:
            raise GatesimError(f"{where}: {bad[0]}={q.get(bad[0])!r} in {q}: a parameter set needs whole numbers "
                               f">= 1 for {', '.join(DIMENSIONS)} (and a count >= 0)")
        if insecure:
            continue
        for name, dimension in (("input LWE dimension", q["input_lwe_dimension"]),
                                ("GLWE dimension x polynomial size", q["glwe_dimension"] * q["polynomial_size"])):
            if dimension < minimal:
                raise GatesimError(f"{where}: {name} {dimension} is below {minimal}, the least that reaches 128-bit "
                                   "security (Concrete's security curves); pass --insecure to cost it anyway")


def pbs_time_terms(q: dict) -> dict[str, float]:
    """What one PBS with these parameters does, in the units its time is fitted on: per step of
    the blind rotation (n of them), the products with the bootstrap key ((k+1)^2 x level
    polynomials of N coefficients) and the FFTs ((k+1) polynomials, N log N); and a fixed part."""
    n, k, level, size = q["input_lwe_dimension"], q["glwe_dimension"], q["level"], q["polynomial_size"]
    return {"key_products": n * (k + 1) ** 2 * level * size, "ffts": n * (k + 1) * size * math.log2(size),
            "fixed": 1.0}


def pbs_nodes(graph: OpGraph, constant: frozenset[str] = frozenset(),
              observed: dict[str, int] | None = None, rounding: dict[str, int] | None = None,
              product_extra_bits: int = 1, narrow_up_to: int = 8,
              input_bits: dict[str, int] | None = None, overflows: frozenset[str] = frozenset()) -> list[dict]:
    """One entry per node that bootstraps: its fx node, PBS count, precision and kind.

    `constant` names nodes whose table gives a single value over the inputs the circuit is
    compiled for ("constant table" rule: Concrete folds such a table into a clear constant,
    and a product with it into a clear product, so neither bootstraps). `observed` gives the
    bits each node's value takes over those inputs ("measured bounds" rule: Concrete sizes a
    table by the range its input takes, not by the worst case); without it, proven widths.
    Work that reaches the outputs only through constant tables is dead ("dead code" rule:
    Concrete drops it, found where a cell's state never leaves one value). A table whose input
    loses l bits to rounding first looks up at l bits less (plus one where its input rounds past
    the top of its type: `overflows`, round_bit_pattern's overflow protection), after l one-bit
    bootstraps that do the rounding ("rounding" rule,
    measured: an int7 input rounded by 2 and 4 bits took 2 and 4 extra PBS per element).
    A table whose input is encoded wider than the bits the input itself takes (`input_bits`,
    per table node, over the input set; else the bits of the node feeding it) (its group is
    wider), up to `narrow_up_to` bits, is looked up at the input's own width after a clear
    multiplication by 2^shift ("original bit width" rule: concrete-python's
    optimize_tlu_based_on_original_bit_width), which multiplies the input's noise by 4^shift."""
    rounding = rounding or {}
    observed = observed or {}
    input_bits = input_bits or {}
    by_node: dict[str, list[tuple[int, Op]]] = defaultdict(list)
    how: dict[int, str] = {}
    for nid, data in graph.graph.nodes(data=True):
        by_node[data["fx_node"]].append((nid, data["op"]))
        how[nid] = price_of("tfhe", PRICES, data["op"].kind, data["fx_node"])
    live = _live_nodes(graph, constant)
    width = _group_widths(graph, how, observed, product_extra_bits)
    tables_of = {fx: [(n, o) for n, o in ops if how[n] == "table" and any(o.operand_is_var)]
                 for fx, ops in by_node.items()}
    fused = _fused_tables(graph, tables_of, constant, rounding.keys())  # table node -> the next one it joins
    fed_by = {target: source for source, target in fused.items()}
    out = []
    for fx_node, ops in by_node.items():
        if fx_node not in live:
            continue
        tables = tables_of[fx_node]
        if tables and fx_node not in constant and fx_node not in fused:  # a fused chain: one table
            first, last = tables[0][1], tables[-1][1]
            start = fx_node
            while start in fed_by:  # a composed lookup runs on the first table's input
                start = fed_by[start]
            head = tables_of[start][0][0]
            feeding = list(graph.graph.predecessors(head))
            encoded = max((width[p] for p in feeding), default=first.bits)
            own = input_bits.get(start) or max(
                (observed.get(graph.graph.nodes[p]["fx_node"], graph.graph.nodes[p]["op"].out_bits) for p in feeding),
                default=encoded)
            precision, shift = encoded, 0
            lsbs = rounding.get(start, 0)  # the composed lookup's input is the first table's
            if lsbs:
                precision = max(own - lsbs, 1) + (start in overflows)
                out.append({"fx_node": fx_node, "node": tables[-1][0], "kind": last.kind, "how": "rounding",
                            "pbs": last.count * lsbs, "precision": 1, "per_element": lsbs, "noise_node": start,
                            "shift": 0})
            elif own < encoded and own <= narrow_up_to:
                precision, shift = own, encoded - own
            out.append({"fx_node": fx_node, "node": tables[-1][0], "kind": last.kind, "how": "table", "pbs": last.count,
                        "precision": precision, "per_element": 1, "noise_node": start, "shift": shift})
        for n, o in ops:
            sources = _sources(graph, n)
            if how[n] == "product" and not sources & constant:
                precision = max((width[p] for p in graph.graph.predecessors(n)), default=width[n])  # its operands' width
                out.append({"fx_node": fx_node, "node": n, "kind": o.kind, "how": "product", "pbs": None,
                            "precision": precision, "per_element": None, "count": o.count, "noise_node": fx_node,
                            "shift": 0})
    return out


def _group_widths(graph: OpGraph, how: dict[int, str], observed: dict[str, int], extra: int) -> dict[int, int]:
    """The bit width each value is encoded with, as Concrete assigns it (concrete-python's
    bit-width assignment): the operands and the result of an addition, a product with clear
    values, a matrix product or a move share one width, so each connected group takes the
    widest value in it; the two operands of an encrypted product share one width at least
    `extra` bit wider than each (its lookups take a + b and a - b), its result starts a value
    of its own, as a table's output does, except for a signed x unsigned product, which the
    export traces centred, (u - c) v + c v, joining v to the result. A value's width is what
    it takes over the input set (`observed`, per fx node, clear weights and biases included)
    or else its proven width."""
    g = graph.graph
    parent = {n: n for n in g.nodes}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in g.nodes:
        preds = list(g.predecessors(n))
        if how[n] in ("linear", "none"):
            for p in preds:
                parent[root(p)] = root(n)
        elif how[n] == "product":
            for p in preds[1:]:
                parent[root(p)] = root(preds[0])
            if len(set(g.nodes[n]["op"].operand_signed)) > 1:  # traced centred: (u - c) v + c v
                parent[root(n)] = root(preds[0])
    bits_of = {n: observed.get(d["fx_node"], d["op"].out_bits) for n, d in g.nodes(data=True)}
    widest: dict[int, int] = defaultdict(int)
    for n in g.nodes:
        widest[root(n)] = max(widest[root(n)], bits_of[n])
        if how[n] == "product":
            for p in g.predecessors(n):
                widest[root(p)] = max(widest[root(p)], bits_of[p] + extra)
    return {n: widest[root(n)] for n in g.nodes}


def _fused_tables(graph: OpGraph, tables_of: dict[str, list], constant: frozenset[str], rounded) -> dict[str, str]:
    """Table nodes whose value feeds nothing but the next node's table: Concrete composes the
    two functions into one lookup on the first one's input ("fused univariate chain" across
    nodes, found where an unsigned inhibitor's ReLU feeds the state's requantization). Constant
    tables take no part; a table whose input is rounded first takes none into it."""
    g = graph.graph
    heads = {tables[0][0]: fx for fx, tables in tables_of.items() if tables}  # op node starting a chain
    fused = {}
    for fx, tables in tables_of.items():
        if not tables or fx in constant:
            continue
        consumers = list(g.successors(tables[-1][0]))
        target = heads.get(consumers[0]) if len(consumers) == 1 else None
        if target not in (None, fx, *constant, *rounded) and g.in_degree(consumers[0]) == 1:
            fused[fx] = target
    return fused


def _live_nodes(graph: OpGraph, constant: frozenset[str]) -> set[str]:
    """The fx nodes whose values reach a stored output other than through a constant table."""
    g = graph.graph
    todo = [n for n, d in g.nodes(data=True) if d["op"].kind == "store"]
    seen: set[int] = set(todo)
    while todo:
        node = todo.pop()
        if g.nodes[node]["fx_node"] in constant:
            continue  # a clear constant: what feeds it is not needed
        for p in g.predecessors(node):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return {g.nodes[n]["fx_node"] for n in seen}


def _sources(graph: OpGraph, node: int) -> set[str]:
    """The fx nodes whose values feed op node `node`."""
    return {graph.graph.nodes[p]["fx_node"] for p in graph.graph.predecessors(node)}


class TfheModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(TfheParams, "tfhe", params)
        if p.rounding_bits is not None and not p.observed_bits:
            raise GatesimError("tfhe: rounding_bits needs the cell to find each table's input width over the input "
                               "set; an op graph alone has none (estimate the cell: gatesim estimate CELL ...)")
        costs = load(TfheCosts, "tfhe")
        profile = load_file(TfheProfile, p.profile) if p.profile else None
        limit = int(costs.pbs.max_precision_bits.value)
        entries = pbs_nodes(graph, p.constant_nodes, p.observed_bits, p.rounding, int(costs.pbs.mul_extra_bits.value),
                            int(costs.pbs.narrow_tables_up_to_bits.value), p.table_input_bits, p.rounding_overflows)
        for entry in entries:
            if entry["how"] == "product":
                entry["pbs"] = int(costs.pbs.mul_pbs.value) * entry.pop("count")
            if entry["precision"] > limit:
                raise GatesimError(f"node {entry['fx_node']!r}: a table lookup on a {entry['precision']}-bit "
                                   f"value; the TFHE backend takes at most {limit} bits: narrow that value")
            entry["manp"] = p.table_noise.get(entry["noise_node"], 1.0) * 4 ** entry["shift"]
        chosen = partition_parameters(entries, profile) if p.table_noise and profile else {}
        minimal = int(costs.security.minimal_lwe_dimension_128.value)
        check_security(list(chosen.values()), minimal, f"tfhe profile {p.profile}", p.insecure)
        check_security(p.pbs_parameters or [], minimal, "tfhe pbs_parameters", p.insecure)
        rows, pbs_total, precisions = [], 0, []
        for entry in entries:
            q = chosen.get(entry["precision"])
            seconds = entry["pbs"] * (pbs_work_seconds(q, profile) if q else
                                      self.pbs_seconds(entry["precision"], costs, profile))
            rows.append({"node": entry["node"], "fx_node": entry["fx_node"], "kind": entry["kind"],
                         "pbs": entry["pbs"], "precision_bits": entry["precision"], "energy_pj": 0.0,
                         "latency_s": seconds})
            pbs_total += entry["pbs"]
            precisions.append(entry["precision"])
        linear_ops = sum(d["op"].count for _, d in graph.graph.nodes(data=True) if PRICES[d["op"].kind] == "linear")
        linear_s = linear_ops * (profile.linear_op_s if profile else costs.linear.seconds_per_op.value)
        rows.append({"node": None, "fx_node": None, "kind": "add", "pbs": 0, "precision_bits": None,
                     "energy_pj": 0.0, "latency_s": linear_s})
        step_s = sum(r["latency_s"] for r in rows)
        if p.pbs_parameters is not None:  # the parameters a compiler picked: cost from their work
            if not (profile and profile.pbs_time_fit):
                raise GatesimError("tfhe: pbs_parameters need a profile with pbs_time_fit "
                                   "(gatesim calibrate tfhe)")
            step_s = linear_s + sum(q["count"] * pbs_work_seconds(q, profile) for q in p.pbs_parameters)
        widest = max(precisions, default=0)
        keys = (profile.bootstrap_key_bytes.get(widest) if profile and widest in profile.bootstrap_key_bytes
                else costs.keys.bootstrap_key_bytes.value)
        if p.rounding_output_error is not None:
            rounding_figures = {"rounding_max_lsb": p.rounding_output_error["max_lsb"],
                                "rounding_mismatch_fraction": p.rounding_output_error["mismatched_elements"]
                                / max(p.rounding_output_error["elements_compared"], 1)}
        else:
            rounding_figures = {}
        resources = {"pbs_per_step": pbs_total, "max_precision_bits": widest, **rounding_figures,
                     "pbs_depth": graph.depth()["nonlinear"] + graph.depth()["multiplicative"],
                     "bootstrap_key_bytes": keys, "linear_ops_per_step": linear_ops}
        counts: dict[int, int] = defaultdict(int)
        for entry in entries:
            counts[entry["precision"]] += entry["pbs"]
        details = {"steps": p.steps, "profile": str(p.profile) if p.profile else None,
                   "bounds": "observed" if p.observed_bits else "proven" if p.bounds == "proven" else
                   "proven (an op graph alone: no cell to run an input set through; estimate the cell for observed)",
                   "pbs_parameters": [{"precision": bits, "count": counts[bits], **q} for bits, q in sorted(chosen.items())],
                   "seconds_per_pbs_from": ("the parameters Concrete picks for each precision and input noise (profile's "
                                            "noise grid), priced by the profile's time fit" if chosen else
                                            "the profile's measured seconds per precision" if profile else "tfhe.yaml"),
                   "per_step": {"latency_s": step_s, "pbs": pbs_total}}
        return Estimate("tfhe", 0.0, step_s * p.steps, resources, by_kind(rows), rows, details)

    @staticmethod
    def pbs_seconds(precision: int, costs: TfheCosts, profile: TfheProfile | None) -> float:
        """Measured for the precision when the profile has it; beyond its widest, grown by the
        measured ratio of its two widest precisions; without a profile, from the yaml."""
        if profile and profile.pbs_s:
            if precision in profile.pbs_s:
                return profile.pbs_s[precision]
            top, low = max(profile.pbs_s), min(profile.pbs_s)
            if precision > top and top - 1 in profile.pbs_s:
                growth = profile.pbs_s[top] / profile.pbs_s[top - 1]
                return profile.pbs_s[top] * growth ** (precision - top)
            return profile.pbs_s[low if precision < low else top]
        return costs.pbs.seconds_at_3_bits.value * costs.pbs.growth_per_bit.value ** (precision - 3)


def partition_parameters(entries: list[dict], profile: TfheProfile) -> dict[int, dict]:
    """precision -> the crypto parameters of its bootstraps. Concrete gives every precision a
    partition with one parameter set, chosen for the noisiest table in it: the noise grid's
    point at that precision with the smallest noise figure that covers it. Precisions the
    grid does not hold (wider than a classic bootstrap) are left to the per-precision times."""
    if not (profile.pbs_parameters_by_noise and profile.pbs_time_fit):
        return {}
    grid: dict[int, list[dict]] = defaultdict(list)
    for q in profile.pbs_parameters_by_noise:
        grid[q["precision"]].append(q)
    worst: dict[int, tuple[float, str]] = {}
    for e in entries:
        if e["precision"] in grid:
            worst[e["precision"]] = max(worst.get(e["precision"], (0.0, "")), (e["manp"], e["fx_node"]))
    chosen = {}
    for bits, (manp, node) in worst.items():
        covering = [q for q in sorted(grid[bits], key=lambda q: q["manp"]) if q["manp"] >= manp]
        if not covering:
            top = max(q["manp"] for q in grid[bits])
            raise GatesimError(f"node {node!r}: a {bits}-bit table whose input amplifies noise by {manp:.3g} "
                               f"(squared 2-norm of its coefficients); Concrete found parameters up to {top:g} "
                               f"at {bits} bits (profile's noise grid): use narrower weights or fewer terms")
        chosen[bits] = {k: v for k, v in covering[0].items() if k != "precision"}
    return chosen


def pbs_work_seconds(q: dict, profile: TfheProfile) -> float:
    terms = pbs_time_terms(q)
    return sum(weight * terms[name] for name, weight in profile.pbs_time_fit.items())


def observed_params(cell: Any, input_size: int, hidden_size: int, config: Any, params: dict[str, Any]) -> dict:
    """bounds=observed: the bits each node's value takes over the input set, and the tables
    that give one value there, for the design's own cell (gatesim.he.bounds)."""
    p = parameters(TfheParams, "tfhe", params)
    if p.rounding_bits is not None and p.bounds == "proven":
        raise GatesimError("tfhe: rounding_bits rounds each table input to the bits it takes over the input set; "
                           "it needs bounds: observed")
    if p.bounds == "proven" or p.observed_bits:
        return {}
    from gatesim.he.bounds import InputSet, observed

    found = observed(cell, input_size, hidden_size, config, InputSet(
        p.inputset_sequences, p.inputset_steps, p.inputset_seed, p.inputset_distribution), p.rounding_bits)
    return {"observed_bits": found.bits, "constant_nodes": found.constant, "rounding": dict(found.rounding),
            "rounding_overflows": found.rounding_overflows,
            "table_noise": found.noise, "table_input_bits": found.table_inputs,
            "rounding_output_error": found.rounding_error}


def check_sweep(axes: Any, params: dict[str, list]) -> None:
    """TFHE computes on small integers: every width must be a table it can take."""
    limit = int(load(TfheCosts, "tfhe").pbs.max_precision_bits.value)
    for name in ("weight_bits", "act_bits", "gate_bits"):
        for bits in getattr(axes, name):
            if bits is None and name != "gate_bits":
                raise ValueError(f"axes.{name}: null (float) with target tfhe; TFHE computes on integers: "
                                 f"use widths 2..{limit} or drop the tfhe target")
            if bits is not None and bits > limit:
                raise ValueError(f"axes.{name}: {bits} with target tfhe; the TFHE backend takes tables of at "
                                 f"most {limit} bits: use 2..{limit} or drop the tfhe target")


TARGET = register(Target(
    name="tfhe", model=TfheModel(), params=TfheParams,
    summary="Concrete-like: programmable bootstraps per step at their precision, linear ops nearly free",
    options=(PROFILE_OPTION,
             Option("bounds", "--bounds", "observed (default: each table sized by the range its input takes over "
                                          "an input set run through the integer simulator, as a compiler sizes it; "
                                          "what validate tfhe checks) or proven (by the worst case of its input, an "
                                          "upper bound)"),
             Option("inputset_sequences", "--inputset-sequences", "random sequences in that input set (16)", int),
             Option("inputset_steps", "--inputset-steps", "steps per sequence (20)", int),
             Option("inputset_seed", "--inputset-seed", "seed of the cell's weights and the sequences (0)", int),
             Option("inputset_distribution", "--inputset-distribution", "uniform (default) or normal inputs"),
             Option("rounding_bits", "--rounding-bits", "round every table input wider than this to its most "
                                                        "significant bits first (observed bounds only)", int),
             Option("insecure", "--insecure", "accept crypto parameters below 128-bit security", bool)),
    # rounding trades more PBS for narrower, faster ones: a real second objective per design
    second_objective=("tfhe_pbs_per_step", "PBS per step"),
    validation_only=frozenset({"constant_nodes", "observed_bits", "pbs_parameters", "rounding", "rounding_overflows",
                               "table_noise",
                               "table_input_bits", "rounding_output_error"}),
    check_sweep=check_sweep, derived_params=observed_params,
    calibrate="gatesim.calibrate.tfhe", validate="gatesim.validate.tfhe",
    calibrate_options=frozenset({"max_bits"})))
