"""A faster fake quantization for training on the CPU (issue 18): torch's fused learnable kernel
(`torch._fake_quantize_learnable_per_tensor_affine`), computing the same values, as a small C++
extension built on first use for this machine (about 30 s, kept in torch's extension cache).

Why: an LSTM training step runs 12 fake quantizations of a 64 x 32 tensor, and torch's
kernel spends about 20 us on each (a scalar forward loop, and a backward that fills per-element
scale and zero-point gradient tensors before summing them), 2-3x what a multiply costs.
This one is a vectorized loop each way, and its scale gradient is summed as it goes.

The same numbers: for a power-of-two scale s (the only scales it is used for), x / s is exact,
so the forward is clamp(round_half_even(x / s), low, high) * s, what Brevitas and torch's kernel
compute. Gradients are Brevitas' straight-through ones, as in torch's kernel: inside the range
d/dx = 1 and d/ds = round(x/s) - x/s; outside d/dx = 0 and d/ds = the bound reached. The scale
gradient is the same sum added in another order (float rounding apart).

Where no C++ compiler can build it, `fake_quant` is None (with one warning) and training uses
torch's kernel: the same numbers, slower.
"""
from __future__ import annotations

import hashlib
import platform
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

MAX_BOUND = 2 ** 21  # the rounding below is exact for |x / s| <= 2^22; bounds well inside it

SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Round half to even of |t| <= 2^22 in the default rounding mode: adding 1.5 * 2^23 leaves
// no fraction bits. Written this way (not nearbyint, a libm call) the loops vectorize.
static inline float round_even(float t) { return (t + 12582912.0f) - 12582912.0f; }

// t clamped to [low - 1, high + 1] before rounding: the same integer as rounding first
// wherever it lands in [low, high], still outside it where it does not, and always exact.
static inline float grid(float t, float low, float high) {
  return round_even(std::min(std::max(t, low - 1.0f), high + 1.0f));
}

struct FakeQuant : public torch::autograd::Function<FakeQuant> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor scale,
                               int64_t low, int64_t high) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat, "fake_quant: float32 CPU tensors only");
    auto xc = x.contiguous();
    const float s = scale.item<float>(), inv = 1.0f / s, lo = low, hi = high;
    auto y = torch::empty_like(xc);
    const float* __restrict px = xc.data_ptr<float>();
    float* __restrict py = y.data_ptr<float>();
    const int64_t n = xc.numel();
    for (int64_t k = 0; k < n; ++k)
      py[k] = std::min(std::max(grid(px[k] * inv, lo, hi), lo), hi) * s;
    ctx->save_for_backward({xc});
    ctx->saved_data["s"] = static_cast<double>(s);
    ctx->saved_data["low"] = low;
    ctx->saved_data["high"] = high;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto xc = ctx->get_saved_variables()[0];
    const float s = ctx->saved_data["s"].toDouble(), inv = 1.0f / s;
    const float lo = ctx->saved_data["low"].toInt(), hi = ctx->saved_data["high"].toInt();
    auto g = grads[0].contiguous();
    auto dx = torch::empty_like(xc);
    const float* __restrict px = xc.data_ptr<float>();
    const float* __restrict pg = g.data_ptr<float>();
    float* __restrict pdx = dx.data_ptr<float>();
    const int64_t n = xc.numel();
    constexpr int LANES = 16;  // partial sums, so the scale gradient's sum vectorizes too
    float partial[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES) {
      for (int j = 0; j < LANES; ++j) {
        const float t = px[k + j] * inv, q = grid(t, lo, hi);
        const bool inside = q >= lo && q <= hi;
        pdx[k + j] = inside ? pg[k + j] : 0.0f;
        partial[j] += pg[k + j] * (inside ? q - t : std::min(std::max(q, lo), hi));
      }
    }
    float ds = 0.0f;
    for (; k < n; ++k) {
      const float t = px[k] * inv, q = grid(t, lo, hi);
      const bool inside = q >= lo && q <= hi;
      pdx[k] = inside ? pg[k] : 0.0f;
      ds += pg[k] * (inside ? q - t : std::min(std::max(q, lo), hi));
    }
    for (int j = 0; j < LANES; ++j) ds += partial[j];
    return {dx, torch::full({1}, ds, xc.options()), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor fake_quant(torch::Tensor x, torch::Tensor scale, int64_t low, int64_t high) {
  return FakeQuant::apply(x, scale, low, high);
}
"""
FLAGS = ["-O3", "-march=native"]  # built on the machine that runs it, for its vector units


def _machine() -> str:
    """What -march=native compiles for: a cache kept in a home folder that moves to another
    CPU must not be loaded there."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        lines = [line for line in cpuinfo.splitlines() if line.startswith(("model name", "flags"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


@lru_cache(maxsize=None)
def _build() -> Callable | None:
    from torch.utils import cpp_extension

    key = hashlib.sha256("\n".join([SOURCE, *FLAGS, _machine(), torch.__version__]).encode()).hexdigest()[:12]
    name = f"gatesim_fake_quant_{key}"
    try:
        built = any(Path(cpp_extension._get_build_directory(name, verbose=False)).glob(f"{name}*.so"))
    except Exception:  # a private helper of torch's: if it moves, only the message is lost
        built = True
    if not built:
        print("gatesim: building the fake-quantization kernel for this machine (once, about 30 s)",
              file=sys.stderr, flush=True)
    try:
        module = cpp_extension.load_inline(name, cpp_sources=[SOURCE],
                                           functions=["fake_quant"], extra_cflags=FLAGS)
    except Exception as error:  # no compiler, no ninja, headers missing: torch's kernel does it
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(f"gatesim: the fast fake-quantization kernel could not be built ({first}); "
                      "training uses torch's kernel instead (the same numbers, slower)", stacklevel=3)
        return None
    return module.fake_quant


def fake_quant(scale: torch.Tensor, low: int, high: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """x -> fake-quantized x on the grid of `scale` (a one-element power-of-two tensor) and the
    integer range [low, high], with straight-through gradients for x and the scale; None where
    this kernel does not apply (not on the CPU, bounds too wide, or it could not be built)."""
    if scale.device.type != "cpu" or scale.dtype != torch.float32 or max(-low, high) > MAX_BOUND:
        return None
    kernel = _build()
    if kernel is None:
        return None
    return lambda x: kernel(x, scale, low, high)
