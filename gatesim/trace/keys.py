"""The torch ops and module types gatesim interprets, by name: one key space shared by the
counting rules (gatesim.trace.rules) and the simulation rules (gatesim.simulate.rules).

Each interpreter registers one rule per name; a test asserts both cover every name, so an op
one of them handles is never unknown to the other. Modules match by class (most derived
first), functions by identity, tensor methods as "method:<name>".
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from brevitas.nn.quant_layer import QuantNonLinearActLayer, QuantWeightBiasInputOutputLayer
from torch import nn

from gatesim.trace.adapters import ConstTensor, ProxyAct, QuantOnesLike

KEYS: dict[str, tuple[Any, ...]] = {
    # layers
    "quant_linear": (QuantWeightBiasInputOutputLayer,),
    "float_linear": (nn.Linear,),
    "functional_linear": (F.linear,),
    "matmul": (torch.matmul, operator.matmul, torch.mm, torch.bmm, "method:matmul"),
    "quant_activation": (QuantNonLinearActLayer,),
    "proxy_act": (ProxyAct,),  # adapters of Brevitas' recurrent layers
    "const_tensor": (ConstTensor,),
    "quant_ones_like": (QuantOnesLike,),
    # activations
    "relu": (nn.ReLU, torch.relu, F.relu, "method:relu"),
    "sigmoid": (nn.Sigmoid, torch.sigmoid, F.sigmoid, "method:sigmoid"),
    "tanh": (nn.Tanh, torch.tanh, F.tanh, "method:tanh"),
    "hardtanh_module": (nn.Hardtanh, nn.ReLU6),
    "hardtanh": (F.hardtanh,),
    "identity": (nn.Identity, nn.Dropout),
    "copy": ("method:contiguous", "method:clone", "method:detach", "method:float", "method:to"),
    "clamp": (torch.clamp, "method:clamp", torch.clip, "method:clip"),
    "maximum": (torch.maximum,),
    "minimum": (torch.minimum,),
    # arithmetic
    "add": (operator.add, torch.add, "method:add", operator.iadd),
    "sub": (operator.sub, torch.sub, "method:sub", operator.isub),
    "rsub": ("method:rsub", torch.rsub),
    "mul": (operator.mul, torch.mul, "method:mul", operator.imul),
    "div": (operator.truediv, torch.div, "method:div"),
    "neg": (operator.neg, torch.neg, "method:neg"),
    # structure
    "getitem": (operator.getitem,),
    "chunk": ("method:chunk", torch.chunk),
    "split": ("method:split", torch.split),
    "unbind": ("method:unbind", torch.unbind),
    "cat": (torch.cat, torch.concat),
    "stack": (torch.stack,),
    "reshape": ("method:view", "method:reshape", torch.reshape),
    "flatten": ("method:flatten", torch.flatten),
    "squeeze": ("method:squeeze", torch.squeeze),
    "unsqueeze": ("method:unsqueeze", torch.unsqueeze),
    "transpose": ("method:transpose", torch.transpose),
    "permute": ("method:permute", torch.permute),
    "t": ("method:t",),
    "expand": ("method:expand",),
    "expand_as": ("method:expand_as",),
    "size": ("method:size", "method:dim", getattr),
    "zeros_like": (torch.zeros_like,),
    "ones_like": (torch.ones_like,),
}
_INDEX: dict[Any, str] = {key: name for name, keys in KEYS.items() for key in keys}


def name_of(op: str, target: Any, module: nn.Module | None) -> str | None:
    """The name of an fx node's op, or None when gatesim does not interpret it."""
    if op == "call_module":
        return next((_INDEX[cls] for cls in type(module).__mro__ if cls in _INDEX), None)
    if op == "call_method":
        return _INDEX.get(f"method:{target}")
    return _INDEX.get(target)


def registrar(registry: dict[str, Callable]) -> Callable[..., Callable]:
    """A decorator registering a function under op names of KEYS; an unknown name or a second
    rule for a name is a bug."""

    def rule(*names: str) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            for name in names:
                if name not in KEYS:
                    raise ValueError(f"unknown op name {name!r}; add it to gatesim.trace.keys.KEYS")
                if name in registry:
                    raise ValueError(f"duplicate rule for {name!r}")
                registry[name] = fn
            return fn

        return register

    return rule


def find_rule(op: str, target: Any, module: nn.Module | None, registry: dict[str, Callable]) -> Callable | None:
    name = name_of(op, target, module)
    return registry.get(name) if name else None
