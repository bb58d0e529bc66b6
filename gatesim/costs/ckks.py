"""CKKS cost model (TenSEAL/SEAL-like): variables encrypted, weights plain, one vector per
ciphertext (slot packing of the hidden vector).

- depth: a product with plain weights (a matrix-vector product, a scalar) or of two
  ciphertexts consumes one level (rescale); an activation is a polynomial of degree d of
  depth ceil(log2(d + 1)); additions consume none. The ring size N is the smallest whose
  128-bit-security modulus budget (HE standard) holds the chain 60 + depth x 40 + 60 bits.
- ops: a matrix-vector product per batch row and output gate block, costing one rotation,
  product and add per input element (the diagonal method TenSEAL uses), or with
  `matvec="bsgs"` about 2 sqrt(n) rotations and n products and adds; an elementwise op
  is one ciphertext op per N/2 values (the batch's values packed into the slots); a degree-d
  polynomial is d - 1 ct x ct products, d plain products and d additions (scaled to the
  measured cost of a degree-3 evaluation, which also aligns levels).
- latency: each op's time at this N grows with the primes left at its level (NTT cost).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Literal

import networkx as nx
from pydantic import Field, StrictBool

from gatesim.costs.base import Estimate, by_kind, per_kind, price_of
from gatesim.costs.config import ProfilePath, Sourced, Strict, load, load_file, parameters
from gatesim.costs.targets import PROFILE_OPTION, Option, Target, register
from gatesim.errors import GatesimError
from gatesim.ops import ADDITIONS, MEMORY, MULTIPLICATIVE, NONLINEAR, PRODUCTS, RESCALES, WEIGHTED_SUMS

if TYPE_CHECKING:
    from gatesim.trace.opgraph import OpGraph

BASE_N = 8192


class Security(Strict):
    max_modulus_bits: dict[str, Sourced]


class Chain(Strict):
    outer_prime_bits: Sourced
    scale_bits: Sourced


class Activation(Strict):
    poly_degree: Sourced


class Latency(Strict):
    ct_ct_mul_s: Sourced
    ct_pt_mul_s: Sourced
    add_s: Sourced
    mm_per_input_s: Sourced


class CkksCosts(Strict):
    schema_version: int
    security: Security
    chain: Chain
    activation: Activation
    latency: Latency


class CkksProfile(Strict):
    """Op latencies measured with TenSEAL: {N: {op: seconds}}, each N on a chain of
    primes[N] primes (its longest at 128-bit security)."""

    schema_version: int
    target: str = Field(pattern="^ckks$")
    host: dict[str, Any]
    primes: dict[int, int]
    ops_s: dict[int, dict[str, float]]
    short_primes: int = Field(ge=2)  # every ring also measured on this short chain
    short_ops_s: dict[int, dict[str, float]]


class CkksParams(Strict):
    poly_degree: int | None = Field(None, ge=1, le=31)
    matvec: Literal["diagonal", "bsgs"] = "diagonal"
    poly_modulus_degree: int | None = None  # force N (checked against 128-bit security)
    insecure: StrictBool = False  # "yes" is not true: a typo must not switch security off
    profile: ProfilePath | None = None
    steps: int = Field(1, ge=1)


def poly_depth(degree: int) -> int:
    """Levels a degree-d polynomial consumes (TenSEAL polyval: measured 1, 2, 2, 3, 3, 3, 3, 4 for d = 1..8)."""
    return math.ceil(math.log2(degree + 1))


def levels(graph: OpGraph, degree: int) -> tuple[int, dict[int, int]]:
    """Multiplicative depth of the step and the level each op starts at."""
    start: dict[int, int] = {}
    end: dict[int, int] = {}
    for n in nx.topological_sort(graph.graph):
        kind = graph.graph.nodes[n]["op"].kind
        start[n] = max((end[p] for p in graph.graph.predecessors(n)), default=0)
        end[n] = start[n] + (1 if kind in PRODUCTS else poly_depth(degree) if kind in NONLINEAR else 0)
    return max(end.values(), default=0), start


def _matvec(o, batch: int, gate: int | None, matvec: str, slots: int) -> dict[str, int]:
    """One vector-matrix product per batch row and output gate block."""
    outputs = o.count // max(o.reduction, 1) // batch
    products = batch * (max(1, outputs // gate) if gate else 1)
    if matvec == "diagonal":  # a rotation, product and add per input element
        return {"mm_inputs": products * o.reduction}
    baby = math.ceil(math.sqrt(o.reduction))  # baby-step giant-step: ~2 sqrt(n) rotations, n products, adds
    return {"rotation": products * (baby + math.ceil(o.reduction / baby)),
            "ct_pt": products * o.reduction, "add": products * o.reduction}


# Per kind: ciphertext operations of one op node, given (op, batch, gate size, matvec, slots).
# Rescales cost nothing: CKKS computes on approximate reals, and memory traffic is not timed.
PRICES: dict[str, Callable[..., dict[str, int]]] = per_kind(
    (WEIGHTED_SUMS, _matvec),
    (MULTIPLICATIVE, lambda o, batch, gate, matvec, slots: {"ct_ct": math.ceil(o.count / slots)}),
    (PRODUCTS - WEIGHTED_SUMS - MULTIPLICATIVE, lambda o, batch, gate, matvec, slots: {"ct_pt": math.ceil(o.count / slots)}),
    (NONLINEAR, lambda o, batch, gate, matvec, slots: {"poly": math.ceil(o.count / slots)}),
    (ADDITIONS, lambda o, batch, gate, matvec, slots: {"add": math.ceil(o.count / slots)}),
    (RESCALES | MEMORY, lambda o, batch, gate, matvec, slots: {}),
)


class CkksModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(CkksParams, "ckks", params)
        costs = load(CkksCosts, "ckks")
        profile = load_file(CkksProfile, p.profile) if p.profile else None
        degree = p.poly_degree or int(costs.activation.poly_degree.value)
        depth, start = levels(graph, degree)
        outer, scale = costs.chain.outer_prime_bits.value, costs.chain.scale_bits.value
        modulus_bits = 2 * outer + depth * scale
        budget = {int(n): v.value for n, v in costs.security.max_modulus_bits.items()}
        secure = [n for n in sorted(budget) if budget[n] >= modulus_bits]
        if p.poly_modulus_degree is not None:
            n = p.poly_modulus_degree
            if n not in budget:
                raise GatesimError(f"ckks: poly_modulus_degree={n}; allowed: {', '.join(map(str, sorted(budget)))}")
            if budget[n] < modulus_bits and not p.insecure:
                raise GatesimError(f"ckks: N={n} holds {budget[n]:.0f} modulus bits at 128-bit security, the "
                                   f"depth-{depth} chain needs {modulus_bits:.0f}; choose N >= "
                                   f"{secure[0] if secure else 'none'} or pass --insecure")
        elif not secure:
            raise GatesimError(f"ckks: depth {depth} needs {modulus_bits:.0f} modulus bits, more than any ring "
                               f"size holds at 128-bit security ({max(budget.values()):.0f} at N=32768)")
        else:
            n = secure[0]
        primes = depth + 2
        op_at = self._op_seconds(costs, profile, n)
        gate, batch, slots = graph.sizes.get("hidden_size"), graph.sizes.get("batch", 1), n // 2
        rows = []
        for nid, data in graph.graph.nodes(data=True):
            o = data["op"]
            op_s = op_at(primes - start[nid])  # an op works on the primes left at its level
            # elementwise ops: the batch's values packed into the slots
            counts = price_of("ckks", PRICES, o.kind, data["fx_node"])(o, batch, gate, p.matvec, slots)
            seconds = sum(n_ops * (poly_seconds(op_s, degree) if k == "poly" else op_s[k])
                          for k, n_ops in counts.items())
            rows.append({"node": nid, "fx_node": data["fx_node"], "kind": o.kind, "level": start[nid],
                         **counts, "energy_pj": 0.0, "latency_s": seconds})
        step_s = sum(r["latency_s"] for r in rows)
        ct_bytes = 2 * n * (2 * outer + depth * scale) / 8
        resources = {"depth": depth, "poly_modulus_degree": n, "modulus_bits": modulus_bits,
                     "secure_128": budget[n] >= modulus_bits, "slots": n // 2,
                     "ct_ct_mults": sum(r.get("ct_ct", 0) + r.get("poly", 0) * (degree - 1) for r in rows),
                     "ct_pt_mults": sum(r.get("ct_pt", 0) + r.get("mm_inputs", 0) + r.get("poly", 0) * degree
                                        for r in rows),
                     "rotations": sum(r.get("mm_inputs", 0) + r.get("rotation", 0) for r in rows),
                     "additions": sum(r.get("add", 0) + r.get("mm_inputs", 0) + r.get("poly", 0) * degree
                                      for r in rows),
                     "ciphertext_bytes": ct_bytes,
                     "relin_key_bytes": 2 * (depth + 1) * ct_bytes,
                     "galois_key_bytes": 2 * math.log2(n) * (depth + 1) * ct_bytes}
        details = {"steps": p.steps, "poly_degree": degree, "profile": str(p.profile) if p.profile else None,
                   "per_step": {"latency_s": step_s}}
        return Estimate("ckks", 0.0, step_s * p.steps, resources, by_kind(rows), rows, details)

    @staticmethod
    def _op_seconds(costs: CkksCosts, profile: CkksProfile | None, n: int):
        """primes -> {op: seconds} at ring size n. A profile measured each ring on a long and a
        short chain: a power law through both (key switching grows faster than the primes).
        Otherwise the yaml's N = 8192 figures (4 primes), scaled by N log N and the primes."""
        if profile and n in profile.ops_s:
            long_p, short_p = profile.primes[n], profile.short_primes
            long_s, short_s = profile.ops_s[n], profile.short_ops_s[n]
            exponent = {k: math.log(long_s[k] / short_s[k]) / math.log(long_p / short_p) for k in long_s}
            return lambda primes: _with_rotation({k: short_s[k] * (primes / short_p) ** exponent[k] for k in long_s})
        lat = costs.latency
        base = {"ct_ct": lat.ct_ct_mul_s.value, "ct_pt": lat.ct_pt_mul_s.value, "add": lat.add_s.value,
                "mm_inputs": lat.mm_per_input_s.value}
        factor = (n * math.log2(n)) / (BASE_N * math.log2(BASE_N))
        return lambda primes: _with_rotation({k: v * factor * primes / 4 for k, v in base.items()})


def poly_seconds(op_s: dict[str, float], degree: int) -> float:
    """A degree-d polynomial: d - 1 ct x ct products, d plain products and d adds; scaled to
    the measured degree-3 evaluation when the profile has one (level alignment included)."""
    def parts(d: int) -> float:
        return (d - 1) * op_s["ct_ct"] + d * (op_s["ct_pt"] + op_s["add"])

    return parts(degree) * (op_s["poly3"] / parts(3) if "poly3" in op_s else 1.0)


def _with_rotation(ops: dict[str, float]) -> dict[str, float]:
    """A rotation's time: what a diagonal product's step costs beyond its product and add."""
    return {**ops, "rotation": max(ops["mm_inputs"] - ops["ct_pt"] - ops["add"], 0.0)}


def ring_for(depth: int, costs: CkksCosts) -> int | None:
    """The smallest ring size holding a chain of `depth` levels at 128-bit security."""
    bits = 2 * costs.chain.outer_prime_bits.value + depth * costs.chain.scale_bits.value
    fitting = [int(n) for n, v in costs.security.max_modulus_bits.items() if v.value >= bits]
    return min(fitting) if fitting else None


TARGET = register(Target(
    name="ckks", model=CkksModel(), params=CkksParams,
    summary="levelled HE (TenSEAL/SEAL-like): depth, ring size at 128-bit security, time per ciphertext op",
    options=(PROFILE_OPTION,
             Option("poly_degree", "--poly-degree", "degree of the sigmoid/tanh/ReLU polynomials (default 3)", int),
             Option("poly_modulus_degree", "--poly-modulus-degree",
                    "ring size N (default: the smallest holding the depth at 128-bit security)", int),
             Option("insecure", "--insecure", "accept an N below 128-bit security for its chain", bool),
             Option("matvec", "--matvec", "matrix-vector method, diagonal (default, as TenSEAL does it) or bsgs "
                                          "(baby-step giant-step)")),
    second_objective=("ckks_poly_modulus_degree", "ring size N"),  # what the depth forces; keys and ciphertexts grow with it
    quantized=False,  # CKKS computes on approximate reals: it costs the cell without quantizers
    calibrate="gatesim.calibrate.ckks", validate="gatesim.validate.ckks"))
