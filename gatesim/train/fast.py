"""Quantization-aware training without Brevitas' per-call machinery: for the length of one
forward pass, every Brevitas layer of a model computes its quantizers' scales, its quantized
weights and biases once, and each later call is a few plain torch ops.

Why it is the same model: within one forward pass the scales of these quantizers do not
change (they come from learned parameters, or from the weights), so computing them once
yields the tensors Brevitas recomputes at every step of a sequence, and each fake
quantization computes what Brevitas' own ops compute (x / scale, round with a straight-through
gradient, clamp to the integer range, times scale): the forward is Brevitas' bit for bit.
Gradients are the same sums, added in another order (float rounding apart). A state that
comes back to the quantizer that made it (h and c entering the next step) is passed on as it
is: Brevitas quantizes it again, which changes neither its values nor any gradient.
`tests/test_train.py` checks both on every built-in cell.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import brevitas.nn as qnn
import torch
import torch.nn.functional as F
from brevitas.core.function_wrapper.ops_ste import RoundSte
from brevitas.core.quant.int_base import IntQuant
from brevitas.function.ops_ste import round_ste
from brevitas.nn.quant_layer import QuantNonLinearActLayer
from brevitas.quant_tensor import QuantTensor
from torch import nn

from gatesim.errors import GatesimError
from gatesim.train import kernel

Fn = Callable[[torch.Tensor], torch.Tensor]
ACTIVATIONS: dict[type, Fn | None] = {nn.Identity: None, nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh,
                                      nn.ReLU: torch.relu}
STEADY_SCALES = ("ParameterScaling", "ConstScaling")  # act scales that do not depend on the input
LAYERS = (QuantNonLinearActLayer, qnn.QuantLinear)  # QuantIdentity, QuantReLU, QuantSigmoid, ...; linear


class Unsupported(GatesimError):
    pass


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _activation(impl: nn.Module, where: str) -> Fn | None:
    for kind, fn in ACTIVATIONS.items():
        if isinstance(impl, kind) and type(impl).forward is kind.forward:
            return fn
    raise Unsupported(f"{where}: activation {type(impl).__name__} has no fast path")


def _fake_quant(proxy: nn.Module, sample: torch.Tensor, where: str) -> tuple[Fn, QuantTensor]:
    """Fake quantization with the scale this forward pass uses, and the QuantTensor Brevitas
    made for `sample` (its scale is the one bias quantizers need).

    A tensor it returns is marked as on its grid, and given back unchanged when it comes
    again (a state re-quantized by the quantizer that made it, unmodified since): quantizing
    it again would give the same values, gradient 1 for it and 0 for the scale."""
    quants = [m for m in proxy.modules() if isinstance(m, IntQuant)]
    if len(quants) != 1 or not isinstance(quants[0].float_to_int_impl, RoundSte):
        raise Unsupported(f"{where}: not a rounding integer quantizer")
    scalings = [type(m).__name__ for name, m in proxy.named_modules() if name.endswith("scaling_impl")
                and not name.endswith("int_scaling_impl")]
    if not scalings or any(s not in STEADY_SCALES for s in scalings):
        raise Unsupported(f"{where}: its scale ({', '.join(scalings) or 'none'}) may depend on the input")
    quant = quants[0]
    qt = proxy(sample)
    scale, zero, bits = qt.scale, qt.zero_point, qt.bit_width
    if zero.requires_grad or bool((zero != 0).any()):
        raise Unsupported(f"{where}: a non-zero zero point")
    low, high = int(quant.min_int(bits)), int(quant.max_int(bits))
    if scale.numel() == 1 and float(torch.frexp(scale.detach()).mantissa.flatten()[0]) == 0.5:
        # a power-of-two scale: x times 1/scale is x / scale exactly, so a fused learnable
        # fake quantization (one kernel each way; its gradients are Brevitas' straight-through
        # ones: inside the range d/dx = 1, d/ds = round(x/s) - x/s; outside d/dx = 0, d/ds =
        # the bound) computes what Brevitas computes: gatesim's on the CPU, else torch's
        one, origin = scale.reshape(1), torch.zeros(1, device=scale.device)

        def learnable(x: torch.Tensor) -> torch.Tensor:
            return torch._fake_quantize_learnable_per_tensor_affine(x, one, origin, low, high, 1.0)

        quantize = kernel.fake_quant(one, low, high) or learnable
    else:
        def quantize(x: torch.Tensor) -> torch.Tensor:  # Brevitas' ops: (clamp(round(x / s + 0)) - 0) * s
            return torch.clamp(round_ste(x / scale), low, high) * scale

    def fake(x: torch.Tensor) -> torch.Tensor:
        if getattr(x, "_gatesim_grid", None) == (fake, x._version):
            return x
        y = quantize(x)
        y._gatesim_grid = (fake, y._version)
        return y

    return fake, qt


def _act(proxy: nn.Module, sample: torch.Tensor, where: str, seen: dict) -> tuple[Fn, QuantTensor | None]:
    """The proxy's activation, then its fake quantization (either may be absent); one per
    proxy and forward pass (`seen`), so that layers sharing a quantizer share its grid."""
    if id(proxy) not in seen:
        seen[id(proxy)] = _new_act(proxy, sample, where)
    return seen[id(proxy)]


def _new_act(proxy: nn.Module, sample: torch.Tensor, where: str) -> tuple[Fn, QuantTensor | None]:
    fused = proxy.fused_activation_quant_proxy
    if fused is None:
        return _identity, None
    act = _activation(fused.activation_impl, where)
    if not proxy.is_quant_enabled:
        return act or _identity, None
    fake, qt = _fake_quant(proxy, sample, where)
    return ((lambda x: fake(act(x))) if act else fake), qt


def _fast_forward(layer: nn.Module, name: str, seen: dict) -> Fn:
    device = next((p.device for p in layer.parameters()), torch.device("cpu"))
    sample = torch.zeros(1, 1, device=device)
    if getattr(layer, "return_quant_tensor", False):
        raise Unsupported(f"{name}: returns a QuantTensor")
    if isinstance(layer, QuantNonLinearActLayer):  # input quantizer, then activation and its quantizer
        before, _ = _act(layer.input_quant, sample, name, seen)
        after, _ = _act(layer.act_quant, sample, name, seen)
        return lambda x: after(before(x))
    # QuantLinear: the input quantized, the weights and the bias quantized once
    if layer.output_quant.is_quant_enabled:
        raise Unsupported(f"{name}: an output quantizer")
    quantize, qin = _act(layer.input_quant, torch.zeros(1, layer.in_features, device=device), name, seen)
    qw = layer.quant_weight(qin)
    weight = qw.value if isinstance(qw, QuantTensor) else qw
    bias = None
    if layer.bias is not None:
        qb = layer.bias_quant(layer.bias, qin, qw)
        bias = qb.value if isinstance(qb, QuantTensor) else qb
    return lambda x: F.linear(quantize(x), weight, bias)


@contextmanager
def steady_scales(model: nn.Module) -> Iterator[None]:
    """Within this block, one forward pass of `model` computes every Brevitas layer's scales
    and quantized weights once: enter it around each forward pass (the scales change when the
    parameters do). A layer it cannot run that way is an error naming it."""
    patched, seen = [], {}
    try:
        for name, layer in model.named_modules():
            if isinstance(layer, LAYERS):
                layer.forward = _fast_forward(layer, name or type(layer).__name__, seen)
                patched.append(layer)
        yield
    finally:
        for layer in patched:
            del layer.forward
