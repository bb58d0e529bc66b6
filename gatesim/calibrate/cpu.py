"""Measure this host for the CPU cost model: eager call overhead per call kind, per-element
time per op kind and dtype, matmul throughput, a compiled kernel's launch overhead and
memory bandwidth. Micro-benchmarks with torch on one thread; each figure is the best of
several repeats (the least disturbed run on a shared machine)."""
from __future__ import annotations

import datetime
import platform
import time
from typing import Callable

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from gatesim.costs.config import SCHEMA_VERSION
from gatesim.simulate.exact import int8_gemm_available

DTYPES = {"int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "float32": torch.float32}
SMALL, LARGE = 4096, 65536  # elements: the slope between them is the per-element time
MATMUL = (64, 512, 1536)  # rows, reduction, outputs: a GRU step at H=512, batch 64


def best_seconds(fn: Callable[[], object], inner: int = 200, repeats: int = 5, warmup: int = 10) -> float:
    """Per-call seconds: the best of `repeats` timings of `inner` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


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
            t_small = best_seconds(lambda: fn(*small))
            t_large = best_seconds(lambda: fn(*large), inner=50)
            out[kind][name] = max(t_large - t_small, 1e-15) / (LARGE - SMALL)
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
    extra = [best_seconds(lambda: fn(view), inner=2000) - best_seconds(lambda: fn(contiguous), inner=2000)
             for fn in (torch.sigmoid, torch.relu, lambda t: t * t)]
    return max(sum(extra) / len(extra), 1e-9)


def step_call_seconds() -> float:
    """Calling a traced cell's forward itself (an fx GraphModule), beyond the ops inside."""
    gm = torch.fx.symbolic_trace(_AddModule())
    a, b = torch.randn(1, 8), torch.randn(1, 8)
    return max(best_seconds(lambda: gm(a, b), inner=2000) - best_seconds(lambda: a + b, inner=2000), 1e-9)


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
    t_bare, t_one, t_two = (best_seconds(lambda f=f: f(a), inner=1000) for f in (bare, one, two))
    extern = max(t_two - t_one, 1e-9)
    return {"fused_launch_s": t_bare, "fused_extern_s": extern,
            "fused_module_s": max(t_one - t_bare - extern, 1e-9)}


def fused_element_seconds() -> dict[str, dict[str, float]]:
    """Seconds per element inside generated (fused) float32 loops: the slope between two sizes
    of a compiled function; cheap elementwise kinds share the add figure."""
    out: dict[str, dict[str, float]] = {}
    for kind, fn in (("add", lambda x: x + x * 0.5), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        compiled = torch.compile(fn, dynamic=False)
        small, large = torch.randn(SMALL), torch.randn(LARGE)
        slope = (best_seconds(lambda: compiled(large), inner=50) - best_seconds(lambda: compiled(small))) / (LARGE - SMALL)
        out[kind] = {"float32": max(slope, 1e-15)}
    for kind in ("mul", "mul_const", "relu", "max", "requant"):
        out[kind] = dict(out["add"])
    return out


def memory_bytes_per_s() -> float:
    """Streaming copy of an array far larger than the caches: bytes read + written per second."""
    src = np.ones(64 * 2**20 // 8)
    dst = np.empty_like(src)
    seconds = best_seconds(lambda: np.copyto(dst, src), inner=3, repeats=3)
    return 2 * src.nbytes / seconds


STEPS = 9 * 4 + 12 + 2 + 2  # progress units: element kinds x dtypes, call kinds, macs, the rest


def measure(progress: Callable[[], None] = lambda: None) -> dict:
    """The whole profile (schema of gatesim.costs.cpu.CpuProfile)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            profile = {
                "schema_version": SCHEMA_VERSION,
                "target": "cpu",
                "host": {"machine": platform.machine(), "processor": platform.processor() or platform.node(),
                         "python": platform.python_version(), "torch": torch.__version__,
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
            progress()
    finally:
        torch.set_num_threads(threads)
    return profile
