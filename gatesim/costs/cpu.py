"""CPU cost model: energy per op by kind and width plus memory traffic; latency in two modes.

eager  one framework call per computing node (a PyTorch loop): calls x dispatch overhead +
       the arithmetic of every op at its per-element cost.
fused  one call per step (a compiled kernel): launch overhead + the same arithmetic at fused
       throughput, with weights streamed from memory when they do not fit the cache.
Per-element times come from SIMD theory (gatesim/costs/data/cpu.yaml) unless a profile
measured by `gatesim calibrate cpu` is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field

from gatesim.costs.base import Estimate, by_kind, per_kind, price_of
from gatesim.costs.config import ProfilePath, Sourced, Strict, load, load_file, parameters
from gatesim.costs.targets import PROFILE_OPTION, Option, Target, register
from gatesim.ops import ADDITIONS, COMPARES, MEMORY, PRODUCTS, RESCALES, TABLES, WEIGHTED_SUMS, Op

if TYPE_CHECKING:
    from gatesim.trace.opgraph import OpGraph


class CpuEnergy(Strict):
    int_add_pj_per_bit: Sourced
    int_mul_pj_per_bit2: Sourced
    int_mul_pj_per_bit: Sourced
    float32_add_pj: Sourced
    float32_mul_pj: Sourced
    float16_add_pj: Sourced
    float16_mul_pj: Sourced
    float_function_mul_adds: Sourced
    sram_pj_per_bit: Sourced
    cache_pj_per_bit: Sourced
    dram_pj_per_bit: Sourced
    cache_bytes: Sourced


class OpsPerCycle(Strict):
    add: Sourced
    mul: Sourced
    max: Sourced
    function: Sourced
    table: Sourced


class CpuLatency(Strict):
    clock_hz: Sourced
    simd_bits: Sourced
    vector_ops_per_cycle: OpsPerCycle
    int8_macs_per_lane_per_op: Sourced
    dispatch_s: Sourced
    strided_s: Sourced
    step_s: Sourced
    fused_launch_s: Sourced
    fused_module_s: Sourced
    fused_extern_s: Sourced
    memory_bytes_per_s: Sourced


class CpuCosts(Strict):
    schema_version: int
    energy: CpuEnergy
    latency: CpuLatency


PerDtype = dict[Literal["int8", "int16", "int32", "float32"], float]


class CpuProfile(Strict):
    """Latency figures measured on one host by `gatesim calibrate cpu`."""

    schema_version: int
    target: Literal["cpu"]
    host: dict[str, Any]
    dispatch_s: dict[str, float]
    strided_s: float = Field(gt=0)
    step_s: float = Field(gt=0)
    fused_module_s: float = Field(gt=0)
    fused_extern_s: float = Field(gt=0)
    fused_launch_s: float = Field(gt=0)
    memory_bytes_per_s: float = Field(gt=0)
    mac_s: PerDtype
    element_s: dict[Literal["eager", "fused"], dict[str, PerDtype]]


class CpuParams(Strict):
    mode: Literal["eager", "fused"] = "eager"
    profile: ProfilePath | None = None
    steps: int = Field(1, ge=1)


def load_profile(path) -> CpuProfile:
    return load_file(CpuProfile, path)


def dtype_of(op: Op) -> str:
    """The machine type an op runs in: float32, or the smallest integer container."""
    if op.is_float:
        return "float32"
    bits = max(op.bits, 0 if op.info.weighted_sum else op.out_bits)
    return "int8" if bits <= 8 else "int16" if bits <= 16 else "int32"


class Timing:
    """Seconds per element / per MAC, from a profile or from SIMD theory."""

    def __init__(self, costs: CpuCosts, profile: CpuProfile | None, mode: str):
        self.lat, self.profile, self.mode = costs.latency, profile, mode
        ops = self.lat.vector_ops_per_cycle
        self.rates = {dtype: per_kind((PRODUCTS, ops.mul), (COMPARES, ops.max), (ADDITIONS | RESCALES, ops.add),
                                      (TABLES, ops.function if dtype == "float32" else ops.table))
                      for dtype in ("int8", "int16", "int32", "float32")}

    def _lanes(self, dtype: str) -> float:
        return self.lat.simd_bits.value / (32 if dtype == "float32" else int(dtype[3:]))

    def per_element(self, kind: str, dtype: str) -> float:
        if self.profile is not None:
            table = self.profile.element_s[self.mode].get(kind, {})
            if dtype in table:
                return table[dtype]
        rate = price_of("cpu", self.rates[dtype], kind, kind).value
        passes = 2 if kind in RESCALES else 1  # shift-and-round, then clip
        return passes / (self.lat.clock_hz.value * self._lanes(dtype) * rate)

    def per_mac(self, dtype: str) -> float:
        if self.profile is not None and dtype in self.profile.mac_s:
            return self.profile.mac_s[dtype]
        per_lane = self.lat.int8_macs_per_lane_per_op.value if dtype == "int8" else 1.0
        lanes = self._lanes("int32" if dtype == "int8" else dtype)
        return 1 / (self.lat.clock_hz.value * lanes * per_lane * self.lat.vector_ops_per_cycle.mul.value)

    def overhead(self, graph: OpGraph) -> float:
        """eager: the step's own call plus every op call by kind, plus the extra of calls on
        strided slices (a split batch); fused: one compiled call per step."""
        p, lat = self.profile, self.lat
        if self.mode == "fused":  # launch + the module's guards + each matmul called out to BLAS
            launch, module, extern = ((p.fused_launch_s, p.fused_module_s, p.fused_extern_s) if p else
                                      (lat.fused_launch_s.value, lat.fused_module_s.value,
                                       lat.fused_extern_s.value))
            return launch + module + extern * sum(graph.calls().get(k, 0) for k in WEIGHTED_SUMS)
        measured = p.dispatch_s if p else {}
        seconds = (p.step_s if p else lat.step_s.value) + sum(
            n * measured.get(kind, lat.dispatch_s.value) for kind, n in graph.calls().items())
        if graph.sizes.get("batch", 1) > 1:
            seconds += sum(graph.strided_calls().values()) * (p.strided_s if p else lat.strided_s.value)
        return seconds

    def memory_bytes_per_s(self) -> float:
        return self.profile.memory_bytes_per_s if self.profile else self.lat.memory_bytes_per_s.value


class Energy:
    """pJ per element of each op, from the QTools / Horowitz figures."""

    def __init__(self, costs: CpuCosts, weight_bytes: float):
        self.e = costs.energy
        self.weight_pj_per_bit = (self.e.cache_pj_per_bit if weight_bytes <= self.e.cache_bytes.value
                                  else self.e.dram_pj_per_bit).value

    def add(self, bits: int, is_float: bool) -> float:
        return self.e.float32_add_pj.value if is_float else self.e.int_add_pj_per_bit.value * bits

    def mul(self, bits: int, is_float: bool) -> float:
        if is_float:
            return self.e.float32_mul_pj.value
        return self.e.int_mul_pj_per_bit2.value * bits**2 + self.e.int_mul_pj_per_bit.value * bits

    def weighted_sum(self, op: Op) -> float:
        return self.mul(op.bits, op.is_float) + self.add(op.out_bits, op.is_float)

    def product(self, op: Op) -> float:
        return self.mul(op.bits, op.is_float)

    def table(self, op: Op) -> float:
        if op.is_float:
            return self.e.float_function_mul_adds.value * (self.mul(32, True) + self.add(32, True))
        return self.e.sram_pj_per_bit.value * op.out_bits  # one table read

    def adder(self, op: Op) -> float:  # add, ReLU, max, requant: one adder-sized operation
        return self.add(op.bits, op.is_float)

    def memory(self, op: Op) -> float:
        weights = op.label in ("weights", "bias")
        return op.bits * (self.weight_pj_per_bit if weights else self.e.sram_pj_per_bit.value)


@dataclass(frozen=True)
class Price:
    """How one op is priced: seconds for all its elements; picojoules per element."""

    seconds: Callable[[Timing, Op, str], float]
    energy: Callable[[Energy, Op], float]


PRICES: dict[str, Price] = per_kind(
    (WEIGHTED_SUMS, Price(lambda t, o, d: o.count * t.per_mac(d), Energy.weighted_sum)),
    (PRODUCTS - WEIGHTED_SUMS, Price(lambda t, o, d: o.count * t.per_element(o.kind, d), Energy.product)),
    (TABLES, Price(lambda t, o, d: o.count * t.per_element(o.kind, d), Energy.table)),
    (ADDITIONS | COMPARES | RESCALES, Price(lambda t, o, d: o.count * t.per_element(o.kind, d), Energy.adder)),
    (MEMORY, Price(lambda t, o, d: 0.0, Energy.memory)),  # traffic: the roofline's memory time
)


class CpuModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(CpuParams, "cpu", params)
        costs = load(CpuCosts, "cpu")
        profile = load_profile(p.profile) if p.profile else None
        timing = Timing(costs, profile, p.mode)
        nodes = list(graph.graph.nodes(data=True))
        weight_bytes = sum(d["op"].count * d["op"].bits / 8 for _, d in nodes
                           if d["op"].kind == "load" and d["op"].label in ("weights", "bias"))
        energy = Energy(costs, weight_bytes)
        rows = []
        for nid, data in nodes:
            o = data["op"]
            price = price_of("cpu", PRICES, o.kind, data["fx_node"])
            rows.append({"node": nid, "fx_node": data["fx_node"], "kind": o.kind, "count": o.count,
                         "bits": o.bits, "dtype": dtype_of(o), "energy_pj": o.count * price.energy(energy, o),
                         "latency_s": price.seconds(timing, o, dtype_of(o))})
        compute_s = sum(r["latency_s"] for r in rows)
        # weights that do not fit the cache stream from memory once per step (roofline)
        cache = costs.energy.cache_bytes.value
        memory_s = weight_bytes / timing.memory_bytes_per_s() if weight_bytes > cache else 0.0
        overhead_s = timing.overhead(graph)
        step_s = overhead_s + max(compute_s, memory_s)
        step_pj = sum(r["energy_pj"] for r in rows)
        kinds = by_kind(rows)
        details = {"mode": p.mode, "steps": p.steps, "profile": str(p.profile) if p.profile else None,
                   "per_step": {"energy_pj": step_pj, "latency_s": step_s, "overhead_s": overhead_s,
                                "compute_s": compute_s, "memory_s": memory_s}}
        resources = {"weight_bytes": weight_bytes, "dispatches_per_step": graph.dispatches}
        return Estimate("cpu", step_pj * p.steps, step_s * p.steps, resources, kinds, rows, details)


TARGET = register(Target(
    name="cpu", model=CpuModel(), params=CpuParams,
    summary="energy per op by kind and width (Horowitz, QTools) and latency of a PyTorch loop "
            "(eager) or a compiled step (fused)",
    options=(Option("mode", "--mode", "eager (a PyTorch loop, default) or fused (a compiled kernel)"),
             PROFILE_OPTION),
    calibrate="gatesim.calibrate.cpu", validate="gatesim.validate.cpu"))
