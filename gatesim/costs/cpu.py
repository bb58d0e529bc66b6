"""CPU cost model: energy per op by kind and width plus memory traffic; latency in four modes,
one per execution a user really runs.

eager    one framework call per computing node (a PyTorch loop): calls x dispatch overhead +
         the arithmetic of every op at its per-element cost.
fused    one call per step (a compiled kernel): launch overhead + the same arithmetic at fused
         throughput, with weights streamed from memory when they do not fit the cache.
library  torch's whole-sequence layer (nn.LSTM, nn.GRU; float32; the multiply-gated cells
         only, the add-gated ones have none): one call per sequence + a per-step overhead +
         the matmuls at the layer's own rate + its pointwise work per hidden unit.
library-int8  the same layer after PyTorch dynamic quantization (int8 weights; each
         product's input quantized on the fly; pointwise work in float32), priced the same
         way from its own measured figures.
int8     ONNX Runtime on the cell exported from Brevitas (QCDQ), one session run per step:
         run overhead + per node + int8 GEMMs at MLAS' rate for their operand types (unsigned
         activations take the fast u8s8 kernel, signed ones s8s8) + elementwise work.
Per-element times of eager and fused come from SIMD theory (gatesim/costs/data/cpu.yaml)
unless a profile measured by `gatesim calibrate cpu` is given; the other modes need one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field

from gatesim.costs.base import Estimate, by_kind, per_kind, price_of
from gatesim.costs.config import ProfilePath, Sourced, Strict, load, load_file, parameters
from gatesim.costs.targets import PROFILE_OPTION, Option, Target, register
from gatesim.errors import GatesimError
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


class LibraryFigures(Strict):
    """One torch whole-sequence layer: its call's overhead, each step's, and the pointwise
    work of a step per hidden unit and batch row and per batch row."""

    call_s: float = Field(gt=0)
    step_s: float = Field(ge=0)
    mac_scale: float = Field(gt=0)  # the layer's products' time over torch's GEMM (oneDNN's LSTM runs its own)
    # the same for the recurrent product, run step by step on the batch's rows (absent in
    # profiles calibrated before it: mac_scale)
    recurrent_mac_scale: float | None = Field(None, gt=0)
    unit_s: float = Field(gt=0)
    # a batch row's own pointwise cost per step, beyond its units' (absent in profiles calibrated
    # before it: there unit_s carries it at the calibration's 64 units)
    row_s: float = Field(0.0, ge=0)
    # a call's cost per weight of the layer (oneDNN's LSTM reorders its weights on every call;
    # absent in profiles calibrated before it)
    call_weight_s: float = Field(0.0, ge=0)
    # the same at one row (batch 1), over torch's one-row product: int8 weights are a quarter of
    # the bytes a matrix-vector product reads; absent, the GEMM's scale holds at every batch
    gemv_mac_scale: float | None = Field(None, gt=0)


class OnnxRuntimeFigures(Strict):
    """ONNX Runtime on one thread: a session run, a node, an element of elementwise work, an
    int8 GEMM MAC with unsigned (u8s8) and signed (s8s8) activations, and a QGemm's output."""

    run_s: float = Field(gt=0)
    node_s: float = Field(gt=0)
    element_s: float = Field(gt=0)
    mac_s: dict[Literal["u8s8", "s8s8"], float]  # at GEMM_ROWS rows
    gemv_mac_s: dict[Literal["u8s8", "s8s8"], float]  # at one row
    # a QGemm's time per output at a narrow reduction (summed, dequantized, stored; s8s8 also
    # packs its rows): the least a product takes, however few its MACs; absent (profiles from
    # before it was measured): its MACs' time alone
    output_s: dict[Literal["u8s8", "s8s8"], float] = Field(default_factory=dict)


class CpuProfile(Strict):
    """Latency figures measured on one host by `gatesim calibrate cpu`."""

    schema_version: int
    target: Literal["cpu"]
    host: dict[str, Any]
    dispatch_s: dict[str, float]
    strided_s: float = Field(ge=0)
    step_s: float = Field(ge=0)
    fused_module_s: float = Field(ge=0)
    fused_extern_s: float = Field(gt=0)
    fused_launch_s: float = Field(gt=0)
    memory_bytes_per_s: float = Field(gt=0)
    mac_s: PerDtype  # a product of GEMM_ROWS rows
    gemv_mac_s: PerDtype = Field(default_factory=dict)  # a product of one row (batch 1)
    element_s: dict[Literal["eager", "fused"], dict[str, PerDtype]]
    library: dict[str, LibraryFigures] = Field(default_factory=dict)  # torch layer class -> figures
    library_int8: dict[str, LibraryFigures] = Field(default_factory=dict)  # the same, dynamically quantized
    onnxruntime: OnnxRuntimeFigures | None = None
    spread: dict[str, float | str] = Field(default_factory=dict)  # how noisy the timings were (within and between passes)
    cache_bytes: int | None = Field(None, gt=0)  # one core's L2, as the host reports it (else the cost file's)
    # the last-level cache as the host reports it and its streaming speed at half its size
    # (absent: weights beyond the L2 come from memory)
    l3_cache_bytes: int | None = Field(None, gt=0)
    l3_bytes_per_s: float | None = Field(None, gt=0)


MODES = ("eager", "fused", "library", "int8", "library-int8")
LIBRARY_MODES = ("library", "library-int8")  # torch's whole-sequence layers
GEMM_ROWS = 64  # rows of the product calibration times per MAC (gatesim.calibrate.cpu.MATMUL)


def by_rows(gemm: float, gemv: float | None, rows: int) -> float:
    """Seconds per MAC of a product of `rows` rows: log-linear between the one-row figure
    (matrix-vector work, bound by reading the weights) and the GEMM figure, which holds from
    GEMM_ROWS rows on."""
    if gemv is None or rows >= GEMM_ROWS:
        return gemm
    share = math.log(max(rows, 1)) / math.log(GEMM_ROWS)
    return math.exp(math.log(gemv) + (math.log(gemm) - math.log(gemv)) * share)


class CpuParams(Strict):
    mode: Literal["eager", "fused", "library", "int8", "library-int8"] = "eager"
    profile: ProfilePath | None = None
    steps: int = Field(1, ge=1)
    layer: str | None = None  # derived (library): torch's layer computing the cell
    engine: dict[str, Any] | None = None  # derived (int8): the ONNX Runtime graph (gatesim.costs.ort_graph)


def torch_layer_name(cell: Any) -> str | None:
    """torch.nn's whole-sequence layer computing a built-in cell: the multiply-gated cells,
    which torch names in capitals (GRU, LSTM); the add-gated cells have none."""
    from gatesim.cells import CELLS

    if isinstance(cell, str) and cell in CELLS and CELLS[cell].gating == "mul":
        return cell.upper()
    return None


def execution_params(cell: Any, input_size: int, hidden_size: int, config: Any, params: dict[str, Any]) -> dict:
    """What the mode's execution takes from the design: library, torch's layer for the cell;
    int8, the graph ONNX Runtime runs for it."""
    p = parameters(CpuParams, "cpu", params)
    if p.mode in LIBRARY_MODES and p.layer is None:
        layer = torch_layer_name(cell)
        if layer is None:
            raise GatesimError(f"cpu mode {p.mode}: torch has no whole-sequence layer for {cell!r} (it has nn.GRU "
                               "and nn.LSTM, for the multiply-gated cells); cost it with mode eager, fused or int8")
        return {"layer": layer}
    if p.mode == "int8" and p.engine is None:
        from gatesim.costs.ort_graph import engine_graph

        return {"engine": engine_graph(cell, config, input_size, hidden_size)}
    return {}


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

    def __init__(self, costs: CpuCosts, profile: CpuProfile | None, mode: str, rows: int = GEMM_ROWS):
        self.lat, self.profile, self.mode, self.rows = costs.latency, profile, mode, rows
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

    def per_mac(self, dtype: str, rows: int | None = None) -> float:
        """Seconds per MAC of a product of `rows` rows (default: the batch)."""
        if self.profile is not None and dtype in self.profile.mac_s:
            return by_rows(self.profile.mac_s[dtype], self.profile.gemv_mac_s.get(dtype),
                           self.rows if rows is None else rows)
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

    def memory_bytes_per_s(self, weight_bytes: float) -> float:
        """How fast weights of this size stream in each step: from the L3 where they fit in
        half of it (as calibrate measured it), else from memory."""
        p = self.profile
        if p and p.l3_bytes_per_s and p.l3_cache_bytes and weight_bytes <= p.l3_cache_bytes / 2:
            return p.l3_bytes_per_s
        return p.memory_bytes_per_s if p else self.lat.memory_bytes_per_s.value


class Energy:
    """pJ per element of each op, from the QTools / Horowitz figures."""

    def __init__(self, costs: CpuCosts, weight_bytes: float, cache_bytes: float):
        self.e = costs.energy
        self.weight_pj_per_bit = (self.e.cache_pj_per_bit if weight_bytes <= cache_bytes
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


def _needs_profile(profile: CpuProfile | None, mode: str, figures: Any) -> Any:
    if figures is None:
        raise GatesimError(f"cpu mode {mode}: the cost file has no figures for this execution; give a profile "
                           f"that measured it (`gatesim calibrate cpu` writes one; --profile PATH)")
    return figures


def library_step(graph: OpGraph, p: CpuParams, profile: CpuProfile | None, rows: list[dict]) -> tuple[float, float]:
    """(call seconds per sequence, seconds per step) of torch's layer, float (library) or
    dynamically quantized (library-int8); rows get their share."""
    if p.mode == "library" and any(r["dtype"] != "float32" for r in rows if r["kind"] not in MEMORY):
        raise GatesimError("cpu mode library: torch's recurrent layers compute in float32; estimate the cell "
                           "unquantized (--float), or at 8 bits with mode library-int8")
    if p.mode == "library-int8":
        _require_int8(p.mode, rows, "PyTorch dynamic quantization stores weights in int8")
    figures = _needs_profile(profile, p.mode, profile and (profile.library if p.mode == "library"
                                                           else profile.library_int8).get(p.layer))
    batch, inputs, hidden = (graph.sizes.get(k, 1) for k in ("batch", "input_size", "hidden_size"))
    # the layer projects every step's input in one product of steps x batch rows up front;
    # only the recurrent product runs step by step, on `batch` rows
    def rate(n: int, scale: float) -> float:  # seconds per MAC of the layer's product of n rows
        gemv = profile.gemv_mac_s.get("float32")
        return by_rows(profile.mac_s["float32"] * scale, gemv and gemv * (figures.gemv_mac_scale or scale), n)

    mac = (inputs * rate(p.steps * batch, figures.mac_scale)
           + hidden * rate(batch, figures.recurrent_mac_scale or figures.mac_scale)) / (inputs + hidden)
    pointwise = [r for r in rows if r["kind"] not in WEIGHTED_SUMS | MEMORY]
    elements = sum(r["count"] for r in pointwise) or 1
    pointwise_s = (batch - 1) * figures.row_s + batch * hidden * figures.unit_s
    for r in rows:
        r["latency_s"] = (r["count"] * mac if r["kind"] in WEIGHTED_SUMS else
                          0.0 if r["kind"] in MEMORY else pointwise_s * r["count"] / elements)
    weights = sum(r["count"] for r in rows if r["kind"] in WEIGHTED_SUMS) / batch
    return figures.call_s + weights * figures.call_weight_s, figures.step_s + sum(r["latency_s"] for r in rows)


def _require_int8(mode: str, rows: list[dict], why: str) -> None:
    wide = [r for r in rows if r["kind"] not in MEMORY and (r["dtype"] == "float32" or
                                                             (r["kind"] in WEIGHTED_SUMS and r["bits"] > 8))]
    if wide:
        raise GatesimError(f"cpu mode {mode}: node {wide[0]['fx_node']!r} computes in {wide[0]['dtype']} "
                           f"({wide[0]['bits']} bits); {why}: give weights and activations of 8 bits "
                           "or fewer (--weight-bits 8 --act-bits 8)")


def int8_step(p: CpuParams, profile: CpuProfile | None, rows: list[dict], batch: int) -> float:
    """Seconds per step of one ONNX Runtime session run; rows get their share."""
    _require_int8(p.mode, rows, "the int8 engine computes in 8 bits")
    ort = _needs_profile(profile, "int8", profile and profile.onnxruntime)
    signed, floating = set(p.engine.get("signed_gemms", ())), set(p.engine.get("float_gemms", ()))
    for r in rows:
        kernel = "s8s8" if r["fx_node"] in signed else "u8s8"
        rate = (by_rows(profile.mac_s["float32"], profile.gemv_mac_s.get("float32"), batch)
                if r["fx_node"] in floating else by_rows(ort.mac_s[kernel], ort.gemv_mac_s[kernel], batch))
        if r["kind"] in WEIGHTED_SUMS:  # a QGemm takes its MACs' time or its outputs', whichever is more
            outputs = 0 if r["fx_node"] in floating else r["count"] // max(r["reduction"], 1)
            r["latency_s"] = max(r["count"] * rate, outputs * ort.output_s.get(kernel, 0.0))
        else:
            r["latency_s"] = 0.0 if r["kind"] in MEMORY else r["count"] * ort.element_s
    return ort.run_s + p.engine["nodes"] * ort.node_s + sum(r["latency_s"] for r in rows)


class CpuModel:
    def estimate(self, graph: OpGraph, params: dict[str, Any]) -> Estimate:
        p = parameters(CpuParams, "cpu", params)
        costs = load(CpuCosts, "cpu")
        profile = load_profile(p.profile) if p.profile else None
        timing = Timing(costs, profile, p.mode if p.mode in ("eager", "fused") else "fused", graph.sizes.get("batch", 1))
        nodes = list(graph.graph.nodes(data=True))
        weight_bytes = sum(d["op"].count * d["op"].bits / 8 for _, d in nodes
                           if d["op"].kind == "load" and d["op"].label in ("weights", "bias"))
        cache = profile.cache_bytes if profile and profile.cache_bytes else costs.energy.cache_bytes.value
        energy = Energy(costs, weight_bytes, cache)
        rows = []
        for nid, data in nodes:
            o = data["op"]
            price = price_of("cpu", PRICES, o.kind, data["fx_node"])
            rows.append({"node": nid, "fx_node": data["fx_node"], "kind": o.kind, "count": o.count,
                         "reduction": o.reduction, "bits": o.bits, "dtype": dtype_of(o),
                         "energy_pj": o.count * price.energy(energy, o),
                         "latency_s": price.seconds(timing, o, dtype_of(o))})
        call_s, memory_s, stall_s = 0.0, 0.0, 0.0
        if p.mode in LIBRARY_MODES:
            call_s, step_s = library_step(graph, p, profile, rows)
            overhead_s = step_s - sum(r["latency_s"] for r in rows)
        elif p.mode == "int8":
            step_s = int8_step(p, profile, rows, graph.sizes.get("batch", 1))
            overhead_s = step_s - sum(r["latency_s"] for r in rows)
        else:
            compute_s = sum(r["latency_s"] for r in rows)
            # weights that do not fit the cache stream in once per step, from the L3 or memory (roofline)
            memory_s = weight_bytes / timing.memory_bytes_per_s(weight_bytes) if weight_bytes > cache else 0.0
            overhead_s = timing.overhead(graph)
            stall_s = max(0.0, memory_s - compute_s)  # the arithmetic waits for the weights
            step_s = overhead_s + compute_s + stall_s
        compute_s = sum(r["latency_s"] for r in rows)
        step_pj = sum(r["energy_pj"] for r in rows)
        kinds = by_kind(rows)
        details = {"mode": p.mode, "execution": EXECUTIONS[p.mode].format(layer=p.layer), "steps": p.steps,
                   "profile": str(p.profile) if p.profile else None,
                   "per_step": {"energy_pj": step_pj, "latency_s": step_s + call_s / p.steps,
                                "overhead_s": overhead_s + call_s / p.steps, "compute_s": compute_s,
                                "memory_s": memory_s, "memory_stall_s": stall_s},
                   "per_sequence_call_s": call_s}
        resources = {"weight_bytes": weight_bytes, "dispatches_per_step": graph.dispatches}
        if p.engine:
            resources["engine_nodes"] = p.engine["nodes"]
        return Estimate("cpu", step_pj * p.steps, call_s + step_s * p.steps, resources, kinds, rows, details)


EXECUTIONS = {
    "eager": "PyTorch ops called one by one from a Python loop over the steps",
    "fused": "one torch.compile'd step per call (TorchInductor C++ kernels, BLAS matmuls)",
    "library": "torch.nn.{layer}: one call for the whole sequence (float32)",
    "int8": "ONNX Runtime on the Brevitas QCDQ export, one session run per step (int8 GEMMs)",
    "library-int8": "torch.nn.{layer} after PyTorch dynamic quantization (int8 weights): one call for the whole "
                    "sequence",
}


TARGET = register(Target(
    name="cpu", model=CpuModel(), params=CpuParams,
    summary="energy per op by kind and width (Horowitz, QTools) and latency of a PyTorch loop "
            "(eager), a compiled step (fused), torch's nn.GRU/nn.LSTM (library), ONNX Runtime int8 (int8) or "
            "torch's dynamically quantized nn.GRU/nn.LSTM (library-int8)",
    options=(Option("mode", "--mode", "eager (a PyTorch loop, default), fused (torch.compile'd step), library "
                                      "(torch's nn.GRU/nn.LSTM over the whole sequence; with --float), int8 "
                                      "(ONNX Runtime on the Brevitas export; 8-bit widths or fewer) or "
                                      "library-int8 (PyTorch dynamic quantization of nn.GRU/nn.LSTM; 8 bits)"),
             PROFILE_OPTION),
    calibrate="gatesim.calibrate.cpu", validate="gatesim.validate.cpu", derived_params=execution_params,
    validation_only=frozenset({"layer", "engine"}), calibrate_options=frozenset({"rounds"})))
