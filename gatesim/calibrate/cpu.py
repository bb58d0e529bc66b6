"""Measure this host for the CPU cost model: eager call overhead per call kind, per-element
time per op kind and dtype, matmul throughput, a compiled kernel's launch overhead, memory
bandwidth, torch's whole-sequence recurrent layers, float (mode library) and dynamically
quantized (library-int8), and ONNX Runtime's int8 engine (mode int8). Micro-benchmarks on
one thread; each figure is the median of repeated runs with outliers dropped
(gatesim.calibrate.timing), and a constant the timings cannot resolve stops the calibration
with its name instead of being written as a floor value."""
from __future__ import annotations

import datetime
import platform
import statistics
from typing import Callable

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from gatesim.calibrate.match import cache_bytes, host_cpu, l2_cache_bytes
from gatesim.calibrate.timing import Noise, Unresolved
from gatesim.costs.config import SCHEMA_VERSION
from gatesim.simulate.exact import int8_gemm_available

DTYPES = {"int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "float32": torch.float32}
SMALL, LARGE = 4096, 65536  # elements: the slope between them is the per-element time
MATMUL = (64, 512, 1536)  # rows, reduction, outputs: a GRU step at H=512, batch 64
LONG = 100  # steps of the long sequence a whole-sequence layer is timed over


NOISE = Noise()  # the spreads of this calibration's timings (reset by measure)


def best_seconds(fn: Callable[[], object], inner: int = 200, repeats: int = 7, warmup: int = 10) -> float:
    """Per-call seconds at the machine's own speed (timing.timed: the fastest third of timings
    of `inner` calls spread over a stretch of time)."""
    return NOISE.time(fn, inner, repeats, warmup)


def _operands(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    if dtype.is_floating_point:
        return torch.randn(n, dtype=dtype), torch.randn(n, dtype=dtype)
    return torch.randint(-60, 60, (n,), dtype=dtype), torch.randint(-60, 60, (n,), dtype=dtype)


def _elementwise(kind: str, dtype: torch.dtype) -> Callable[[torch.Tensor, torch.Tensor], object]:
    """The torch call an eager loop makes for one element of `kind` (ints: tables by index)."""
    table = torch.arange(256, dtype=dtype)
    floating = dtype.is_floating_point
    calls = {
        "add": lambda a, b: a + b,
        "mul": lambda a, b: a * b,
        "mul_const": lambda a, b: a * 3,
        "relu": lambda a, b: torch.relu(a),
        "max": lambda a, b: torch.clamp(a, -20, 20),
        "sigmoid": (lambda a, b: torch.sigmoid(a)) if floating else (lambda a, b: table[(a & 255).long()]),
        "tanh": (lambda a, b: torch.tanh(a)) if floating else (lambda a, b: table[(a & 255).long()]),
        "lut": lambda a, b: table[(a.long() & 255)],
        "requant": ((lambda a, b: torch.clamp(torch.round(a * 0.25), -128, 127)) if floating
                    else (lambda a, b: torch.clamp(a >> 2, -128, 127))),
    }
    return calls[kind]


def element_seconds(progress: Callable[[], None]) -> dict[str, dict[str, float]]:
    """Seconds per element in eager mode: the slope of call time between two sizes."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("add", "mul", "mul_const", "relu", "max", "sigmoid", "tanh", "lut", "requant"):
        out[kind] = {}
        for name, dtype in DTYPES.items():
            fn = _elementwise(kind, dtype)
            small, large = _operands(SMALL, dtype), _operands(LARGE, dtype)
            slope = NOISE.difference(f"element_s.eager.{kind}.{name}", lambda: fn(*large), lambda: fn(*small),
                                     (50, 200))
            out[kind][name] = slope / (LARGE - SMALL)
            progress()
    return out


def dispatch_seconds(progress: Callable[[], None]) -> dict[str, float]:
    """Seconds per eager call on a tiny tensor, by call kind, in the form PyTorch code uses."""
    a, b = torch.randn(1, 8), torch.randn(1, 8)
    linear, sigmoid, tanh, hardtanh = nn.Linear(8, 8), nn.Sigmoid(), nn.Tanh(), nn.Hardtanh()
    table = torch.arange(256.0)
    calls = {
        "mac": lambda: linear(a), "add": lambda: a + b, "mul": lambda: a * b, "mul_const": lambda: a * 3,
        "relu": lambda: torch.relu(a), "max": lambda: hardtanh(a), "sigmoid": lambda: sigmoid(a),
        "tanh": lambda: tanh(a), "lut": lambda: table[(a.long() & 255)],
        "requant": lambda: torch.clamp(torch.round(a), -128, 127), "split": lambda: a.chunk(4, -1),
        "concat": lambda: torch.cat([a, b], -1),
    }
    out = {}
    for kind, fn in calls.items():
        out[kind] = best_seconds(fn, inner=2000)
        progress()
    return out


def strided_seconds() -> float:
    """Extra time of an elementwise call on a slice of a chunked batch (strided memory)
    over the same call on a contiguous tensor of the same size."""
    whole = torch.randn(64, 32)
    view, contiguous = whole.chunk(4, -1)[1], torch.randn(64, 8)
    extra = [NOISE.difference("strided_s", lambda: fn(view), lambda: fn(contiguous), (2000, 2000), may_be_zero=True)
             for fn in (torch.sigmoid, torch.relu, lambda t: t * t)]
    return sum(extra) / len(extra)


def step_call_seconds() -> float:
    """Calling a traced cell's forward itself (an fx GraphModule), beyond the ops inside."""
    gm = torch.fx.symbolic_trace(_AddModule())
    a, b = torch.randn(1, 8), torch.randn(1, 8)
    return NOISE.difference("step_s", lambda: gm(a, b), lambda: a + b, (2000, 2000), may_be_zero=True)


class _AddModule(nn.Module):
    def forward(self, a, b):
        return a + b


def mac_seconds(progress: Callable[[], None]) -> dict[str, float]:
    """Seconds per multiply-accumulate of a GEMM, per dtype: float32 BLAS; int8 as the
    int8 x int8 -> int32 GEMM; int16/int32 products ride on float BLAS (as the simulator
    does), so they take the float32 figure."""
    rows, k, n = MATMUL
    x, w = torch.randn(rows, k), torch.randn(n, k)
    f32 = best_seconds(lambda: F.linear(x, w), inner=20) / (rows * k * n)
    progress()
    out = {"float32": f32, "int16": f32, "int32": f32}
    if int8_gemm_available():
        x8 = torch.randint(-128, 128, (rows, k), dtype=torch.int8)
        w8 = torch.randint(-128, 128, (k, n), dtype=torch.int8)
        out["int8"] = best_seconds(lambda: torch._int_mm(x8, w8), inner=20) / (rows * k * n)
    else:
        out["int8"] = f32
    progress()
    return out


def gemv_seconds() -> dict[str, float]:
    """Seconds per MAC of a one-row product (a step at batch 1): matrix-vector work reads
    every weight once per row and runs far below the GEMM rate; per dtype as mac_seconds."""
    k, n = MATMUL[1:]
    x, w = torch.randn(1, k), torch.randn(n, k)
    f32 = best_seconds(lambda: F.linear(x, w), inner=200) / (k * n)
    return {"float32": f32, "int16": f32, "int32": f32}


class _OneLinear(nn.Module):
    def __init__(self, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(layers))

    def forward(self, a):
        return torch.relu(sum(layer(a) for layer in self.layers))


def fused_seconds() -> dict[str, float]:
    """torch.compile'd calls on tiny inputs: a bare function (launch and guards), then a
    module with one and with two linear layers: the module's own guard cost and the cost of
    each matmul the compiled code calls out to (BLAS is not fused into generated loops)."""
    a = torch.randn(4, 8)
    bare = torch.compile(lambda x: torch.relu(x * x + x), dynamic=False)
    one, two = (torch.compile(_OneLinear(n).eval(), dynamic=False) for n in (1, 2))
    extern = NOISE.difference("fused_extern_s", lambda: two(a), lambda: one(a), (1000, 1000))
    # two calls of one less (two + bare) leaves the module's own guards once
    module = NOISE.difference("fused_module_s", lambda: (one(a), one(a)), lambda: (two(a), bare(a)), (500, 500),
                              may_be_zero=True)
    return {"fused_launch_s": best_seconds(lambda: bare(a), inner=1000), "fused_extern_s": extern,
            "fused_module_s": module}


def fused_element_seconds() -> dict[str, dict[str, float]]:
    """Seconds per element inside generated (fused) float32 loops: the slope between two sizes
    of a compiled function; cheap elementwise kinds share the add figure."""
    out: dict[str, dict[str, float]] = {}
    for kind, fn in (("add", lambda x: x + x * 0.5), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        compiled = torch.compile(fn, dynamic=False)
        small, large = torch.randn(SMALL), torch.randn(LARGE)
        slope = NOISE.difference(f"element_s.fused.{kind}.float32", lambda: compiled(large), lambda: compiled(small),
                                 (50, 200)) / (LARGE - SMALL)
        out[kind] = {"float32": slope}
    for kind in ("mul", "mul_const", "relu", "max", "requant"):
        out[kind] = dict(out["add"])
    return out


def memory_bytes_per_s(working_set: int = 128 * 2**20) -> float:
    """Streaming copy within `working_set` bytes (source and destination; by default far
    larger than the caches): bytes read + written per second."""
    src = np.ones(working_set // 2 // 8)
    dst = np.empty_like(src)
    seconds = best_seconds(lambda: np.copyto(dst, src), inner=max(3, 2**27 // working_set), repeats=3)
    return 2 * src.nbytes / seconds


def l3_figures() -> dict:
    """The last-level cache (L3) as the kernel reports it and its streaming speed at a working
    set of half its size (weights that fit there are read from it each step, not from memory);
    nothing where the host reports no L3 at least four times its L2."""
    l2, l3 = l2_cache_bytes(), cache_bytes(3)
    if not l3 or (l2 and l3 < 4 * l2):
        return {}
    return {"l3_cache_bytes": l3, "l3_bytes_per_s": memory_bytes_per_s(l3 // 2)}


def library_layer(name: str, input_size: int, hidden: int, int8: bool = False) -> nn.Module:
    """torch's whole-sequence layer `name` (LSTM, GRU), in eval mode; with int8, after PyTorch
    dynamic quantization (int8 weights; each product's input quantized on the fly)."""
    layer = getattr(nn, name)(input_size, hidden).eval()
    if not int8:
        return layer
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch announces the API's move to torchao; it still runs
        warnings.simplefilter("ignore")
        # quantize_dynamic swaps children, never the module it is given
        return quantize_dynamic(nn.Sequential(layer), {type(layer)}, dtype=torch.qint8)[0].eval()


def library_seconds(progress: Callable[[], None], profile: dict, int8: bool = False) -> dict[str, dict[str, float]]:
    """torch's whole-sequence layers (nn.LSTM, nn.GRU; dynamically quantized with int8), per
    layer class: a call's own overhead and a step's (a tiny layer over 1 and 64 steps); the
    speed of the layer's own products against torch's float GEMM (oneDNN's LSTM and the
    quantized layers run their own): two 64 x 64 layers that differ only in input width; the
    recurrent product's own speed at 64 rows and the pointwise work of a step per hidden unit
    and batch row and per batch row: what is left of the 64 x 64 layer's step, of the tiny
    layer's at 64 rows and of two wide layers' (H 128 and 256); its products at one row against
    torch's one-row product, and a call's cost per weight: the wide layers at batch 1."""
    from gatesim.cells import CELLS
    from gatesim.costs.cpu import torch_layer_name

    tag = "library_int8" if int8 else "library"
    out = {}
    for name in sorted(filter(None, map(torch_layer_name, CELLS))):
        # derived constants are differences of differences: a bad stretch of the machine's
        # speed measures the whole layer again
        out[name] = NOISE.again(lambda: _library_layer_seconds(name, tag, int8, profile))
        progress()
    return out


def _library_layer_seconds(name: str, tag: str, int8: bool, profile: dict) -> dict[str, float]:
    mac_s, gemv_s = profile["mac_s"]["float32"], profile["gemv_mac_s"]["float32"]
    rows, hidden, narrow, wide, steps, big = 64, 64, 8, 520, 16, 256
    tiny = library_layer(name, 8, 8, int8)
    one, many = torch.randn(1, 1, 8), torch.randn(64, 1, 8)
    step = NOISE.difference(f"{tag}.{name}.step_s", lambda: tiny(many), lambda: tiny(one), (20, 200),
                            may_be_zero=True) / 63
    call = NOISE.positive(f"{tag}.{name}.call_s", best_seconds(lambda: tiny(one), inner=200) - step, step)
    small, large = library_layer(name, narrow, hidden, int8), library_layer(name, wide, hidden, int8)
    gates = 4 if name == "LSTM" else 3
    x_small, x_large = torch.randn(steps, rows, narrow), torch.randn(steps, rows, wide)
    extra = NOISE.difference(f"{tag}.{name}.mac_scale", lambda: large(x_large), lambda: small(x_small), (5, 10))
    scale = extra / (steps * rows * gates * hidden * (wide - narrow) * mac_s)
    first = torch.randn(1, rows, narrow)
    per_step = NOISE.difference(f"{tag}.{name}.unit_s", lambda: small(x_small), lambda: small(first),
                                (10, 100)) / (steps - 1)
    # the pointwise work of a step on b rows of h units: (b - 1) x row_s + b x h x unit_s (a
    # row costs something of its own however narrow); the tiny layer's rows at width 8 and the
    # 64-unit layer's give the two
    x_rows, x_row = torch.randn(steps, rows, 8), torch.randn(steps, 1, 8)
    tiny_row = NOISE.difference(f"{tag}.{name}.row_s", lambda: tiny(x_rows), lambda: tiny(x_row),
                                (20, 50)) / (steps * (rows - 1)) - gates * 8 * 16 * mac_s * scale
    # the recurrent product runs step by step on `rows` rows, not in the one product of every
    # step's input (dynamic quantization also quantizes h at every step): its own speed, from
    # two layers that differ only in hidden size, solved with the pointwise work per unit
    narrower, wider = (library_layer(name, narrow, h, int8) for h in (big // 2, big))
    grown = big - big // 2
    short_rows, long_rows = torch.randn(steps, rows, narrow), torch.randn(3 * steps, rows, narrow)
    step_rows = {h: NOISE.difference(f"{tag}.{name}.recurrent_mac_scale", lambda: layer(long_rows),
                                     lambda: layer(short_rows), (2, 5)) / (2 * steps)
                 for h, layer in ((big, wider), (big // 2, narrower))}
    # what the 64-unit layer's step leaves beside its products is (rows - 1) row_s + rows x 64
    # unit_s, and row_s is what the tiny layer's row leaves beside its 8 units: first with its
    # recurrent product at the input's speed, then (once the wide layers gave the recurrent
    # product's own speed, their pointwise difference priced with that first unit_s) at its own
    own = per_step - step - rows * gates * hidden * narrow * mac_s * scale - (rows - 1) * tiny_row
    units = rows * hidden - (rows - 1) * 8
    first_unit = NOISE.positive(f"{tag}.{name}.unit_s", own - rows * gates * hidden**2 * mac_s * scale,
                                per_step) / units
    both = step_rows[big] - step_rows[big // 2] - rows * gates * grown * narrow * mac_s * scale
    rate = NOISE.positive(f"{tag}.{name}.recurrent_mac_scale", both - rows * grown * first_unit, both) / (
        rows * gates * (big**2 - (big // 2) ** 2))
    unit = NOISE.positive(f"{tag}.{name}.unit_s", own - rows * gates * hidden**2 * rate, per_step) / units
    row = NOISE.positive(f"{tag}.{name}.row_s", tiny_row - 8 * unit, tiny_row)
    # batch 1: the recurrent product is matrix-vector work; the same two layers leave it (and
    # the pointwise work, known) in the difference of their steps (each layer over a long and a
    # short sequence: oneDNN's LSTM also pays per call for its weights, reordering them, which
    # the short sequences' difference leaves)
    short, long = torch.randn(steps, 1, narrow), torch.randn(LONG, 1, narrow)
    step_of = {h: NOISE.difference(f"{tag}.{name}.gemv_mac_scale", lambda: layer(long), lambda: layer(short),
                                   (3, 10)) / (LONG - steps) for h, layer in ((big, wider), (big // 2, narrower))}
    extra = step_of[big] - step_of[big // 2]
    recurrent = NOISE.positive(f"{tag}.{name}.gemv_mac_scale", extra - unit * grown
                               - gates * grown * narrow * mac_s * scale, extra)
    gemv_macs = gates * (big**2 - (big // 2) ** 2)
    calls = NOISE.difference(f"{tag}.{name}.call_weight_s", lambda: wider(short), lambda: narrower(short),
                             (10, 20), may_be_zero=True) - steps * extra
    calls = NOISE.nonnegative(f"{tag}.{name}.call_weight_s", calls, steps * step_of[big])
    weights = gates * (big * (narrow + big) - big // 2 * (narrow + big // 2))
    return {"call_s": call, "step_s": step, "mac_scale": scale, "unit_s": unit, "row_s": row,
            "recurrent_mac_scale": rate / mac_s, "gemv_mac_scale": recurrent / (gemv_macs * gemv_s),
            "call_weight_s": calls / weights}


def _onnx_session(nodes, inputs, outputs, initializers=()):
    """An ONNX Runtime session on one thread over a graph built from `nodes`."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(nodes, "probe", inputs, outputs, list(initializers))
    domains = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]  # QGemm is Microsoft's
    model = helper.make_model(graph, opset_imports=domains)
    model.ir_version = min(model.ir_version, onnx.IR_VERSION)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _add_chain(length: int, width: int):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Add", [f"v{i}", "x"], [f"v{i + 1}"]) for i in range(length)]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, width]) for n in ("v0", "x", f"v{length}")]
    session = _onnx_session(nodes, io[:2], io[2:])
    feeds = {"v0": np.ones((1, width), np.float32), "x": np.ones((1, width), np.float32)}
    return lambda: session.run(None, feeds)


def _int_matmul(signed_rows: bool, rows: int = MATMUL[0]):
    from onnx import TensorProto, helper, numpy_helper

    k, n = MATMUL[1:]
    kind = TensorProto.INT8 if signed_rows else TensorProto.UINT8
    weights = numpy_helper.from_array(np.random.default_rng(0).integers(-128, 128, (k, n), dtype=np.int8), "w")
    node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    session = _onnx_session([node], [helper.make_tensor_value_info("a", kind, [rows, k])],
                            [helper.make_tensor_value_info("y", TensorProto.INT32, [rows, n])], [weights])
    a = np.random.default_rng(1).integers(-128 if signed_rows else 0, 128, (rows, k)).astype(
        np.int8 if signed_rows else np.uint8)
    return lambda: session.run(None, {"a": a})


QGEMM = (64, 8, 256)  # rows, reduction, outputs: a product whose time is its outputs', not its MACs'


def _qgemm(signed_rows: bool):
    """ONNX Runtime's QGemm as the cells' optimized graphs run it: int8 weights (transposed),
    an int32 bias, float output (the next node takes floats); the rows unsigned or signed."""
    from onnx import TensorProto, helper, numpy_helper

    rows, k, n = QGEMM
    rng = np.random.default_rng(2)
    row_type = np.int8 if signed_rows else np.uint8
    initializers = [numpy_helper.from_array(rng.integers(-128, 128, (n, k), dtype=np.int8), "w"),
                    numpy_helper.from_array(np.array(0.02, np.float32), "a_scale"),
                    numpy_helper.from_array(np.array(0 if signed_rows else 128, row_type), "a_zero"),
                    numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
                    numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
                    numpy_helper.from_array(rng.integers(-1000, 1000, (n,), dtype=np.int32), "bias")]
    node = helper.make_node("QGemm", ["a", "a_scale", "a_zero", "w", "w_scale", "w_zero", "bias"], ["y"],
                            domain="com.microsoft", transA=0, transB=1, alpha=1.0)
    kind = TensorProto.INT8 if signed_rows else TensorProto.UINT8
    session = _onnx_session([node], [helper.make_tensor_value_info("a", kind, [rows, k])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, n])], initializers)
    a = rng.integers(-128 if signed_rows else 0, 128, (rows, k)).astype(row_type)
    return lambda: session.run(None, {"a": a})


def onnxruntime_seconds(progress: Callable[[], None]) -> dict:
    """ONNX Runtime on one thread (the int8 mode's engine): a session run's own overhead,
    each node's, the per-element time of elementwise nodes, the int8 GEMM per MAC with
    unsigned and with signed activations (MLAS' u8s8 and s8s8 kernels differ), and a QGemm's
    time per output at a narrow reduction (the node the cells run: each output is summed,
    dequantized and stored, and the s8s8 kernel packs its rows, which bounds a narrow
    product's time however few its MACs)."""
    short, long = _add_chain(1, 8), _add_chain(33, 8)
    node = NOISE.difference("onnxruntime.node_s", long, short, (200, 500)) / 32
    one = best_seconds(short, inner=500)
    progress()
    element = NOISE.difference("onnxruntime.element_s", _add_chain(8, LARGE), _add_chain(8, SMALL),
                               (20, 100)) / (8 * (LARGE - SMALL))
    progress()
    rows, k, n = MATMUL
    mac = {("s8s8" if signed else "u8s8"): best_seconds(_int_matmul(signed), inner=10) / (rows * k * n)
           for signed in (False, True)}
    gemv = {("s8s8" if signed else "u8s8"): best_seconds(_int_matmul(signed, 1), inner=200) / (k * n)
            for signed in (False, True)}
    rows, _, n = QGEMM
    output = {}
    for signed in (False, True):  # a narrow QGemm's node less a one-node run's, per output
        kernel = "s8s8" if signed else "u8s8"
        output[kernel] = NOISE.difference(f"onnxruntime.output_s.{kernel}", _qgemm(signed), short,
                                          (200, 500)) / (rows * n)
    progress()
    return {"run_s": NOISE.positive("onnxruntime.run_s", one - node, one), "node_s": node, "element_s": element,
            "mac_s": mac, "gemv_mac_s": gemv, "output_s": output}


STEPS = 9 * 4 + 12 + 2 + 2 + 4 + 4  # progress units of one pass: element kinds x dtypes, call kinds, macs, the rest
ROUNDS = 3  # passes over every micro-benchmark; each figure is the median of its passes


def measure(progress: Callable[[], None] = lambda: None, rounds: int = ROUNDS) -> dict:
    """The whole profile (schema of gatesim.costs.cpu.CpuProfile): every micro-benchmark run
    in `rounds` passes one after the other, each figure the median of its passes, since a
    virtual machine's speed swings for seconds to minutes at a time and one pass catches one
    moment of it. A pass that meets a figure it cannot resolve (`Unresolved`, after its
    retries) is left out, the figure being measured in the others; with every pass lost, that
    is the error. `spread` records how noisy the timings were within passes and between them,
    and how many passes were lost (`noise_warning` says when that is too noisy to trust)."""
    global NOISE
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: calibration needs at least one pass")
    NOISE = Noise()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    passes, lost = [], None
    try:
        with torch.no_grad():
            for _ in range(rounds):
                try:
                    passes.append(_one_pass(progress))
                except Unresolved as exc:  # that pass's stretch of noise; the others measured it
                    lost = exc
    finally:
        torch.set_num_threads(threads)
    if not passes:
        raise lost
    profile = median_profile(passes)
    profile["spread"] = {**NOISE.summary(), **between_passes(passes), "rounds": len(passes)}
    if lost is not None:
        profile["spread"]["lost_rounds"] = rounds - len(passes)
    cache = l2_cache_bytes()
    if cache:
        profile["cache_bytes"] = cache
    return profile


def _one_pass(progress: Callable[[], None]) -> dict:
    profile = {
        "schema_version": SCHEMA_VERSION,
        "target": "cpu",
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.node(),
                 "cpu": host_cpu(), "python": platform.python_version(), "torch": torch.__version__,
                 "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "threads": 1},
        "dispatch_s": dispatch_seconds(progress),
        "element_s": {"eager": element_seconds(progress), "fused": fused_element_seconds()},
        "mac_s": mac_seconds(progress),
    }
    profile["strided_s"] = strided_seconds()
    profile["step_s"] = step_call_seconds()
    profile.update(fused_seconds())
    progress()
    profile["memory_bytes_per_s"] = memory_bytes_per_s()
    profile.update(l3_figures())
    progress()
    profile["gemv_mac_s"] = gemv_seconds()
    profile["library"] = library_seconds(progress, profile)
    profile["library_int8"] = library_seconds(progress, profile, int8=True)
    profile["onnxruntime"] = NOISE.again(lambda: onnxruntime_seconds(progress))
    return profile


def _is_figure(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def median_profile(passes: list[dict]) -> dict:
    """One profile from several passes: each measured figure the median of its passes;
    anything else (the host's description) as the first pass has it."""
    first = passes[0]
    if isinstance(first, dict):
        return {key: median_profile([p[key] for p in passes if key in p]) for key in first}
    if all(isinstance(p, int) and not isinstance(p, bool) for p in passes):
        return statistics.median_low(passes)  # counts and sizes stay whole numbers
    if _is_figure(first) and all(_is_figure(p) for p in passes):
        return statistics.median(passes)
    return first


def _figures(profile: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in profile.items():
        if isinstance(value, dict):
            out.update(_figures(value, f"{prefix}{key}."))
        elif _is_figure(value) and key not in ("schema_version", "threads", "cores"):
            out[prefix + key] = value
    return out


def between_passes(passes: list[dict]) -> dict[str, float]:
    """How far the passes disagree: per figure, the range of its passes over their median;
    the median and the largest of those, and the figure that disagreed most."""
    if len(passes) < 2:
        return {}
    tables = [_figures(p) for p in passes]
    ranges = {}
    for name in tables[0]:
        values = [t[name] for t in tables if name in t]
        middle = statistics.median(values)
        if middle > 0:
            ranges[name] = (max(values) - min(values)) / middle
    if not ranges:
        return {}
    worst = max(ranges, key=ranges.get)
    return {"median_relative_range_between_rounds": statistics.median(ranges.values()),
            "max_relative_range_between_rounds": ranges[worst], "most_variable": worst}


def noise_warning(profile: dict) -> str | None:
    return Noise.warning_for(profile.get("spread", {}))


QUICK_SPOT_CHECK = True  # under a second: `estimate` runs it too


def spot_check(profile: dict) -> dict:
    """Two of the profile's constants measured again (an eager call's overhead, a float32
    GEMM's time per MAC): the one that disagrees more is reported."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            a, b = torch.randn(1, 8), torch.randn(1, 8)
            rows, k, n = MATMUL
            x, w = torch.randn(rows, k), torch.randn(n, k)
            found = [("seconds per eager add call", best_seconds(lambda: a + b, inner=2000),
                      profile["dispatch_s"]["add"]),
                     ("seconds per float32 GEMM MAC", best_seconds(lambda: F.linear(x, w), inner=10) / (rows * k * n),
                      profile["mac_s"]["float32"])]
    finally:
        torch.set_num_threads(threads)
    what, measured, predicted = max(found, key=lambda f: abs(np.log(f[2] / f[1])))
    return {"what": what, "measured": measured, "predicted": predicted}
