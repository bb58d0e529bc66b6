"""A traced cell as plain PyTorch: the same fx graph with each Brevitas leaf replaced by the
torch module it computes when quantization is off. This is the "real PyTorch code" the CPU
model is validated against: the graph the cost model counts, nothing hand-written."""
from __future__ import annotations

import copy

import torch.fx as fx
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.brevitas_adapter import proxy_enabled
from gatesim.trace.tracer import is_brevitas, symbolic_trace

# Brevitas layer class name -> the float torch module it reduces to without quantizers
FLOAT_EQUIVALENTS = {"QuantSigmoid": nn.Sigmoid, "QuantTanh": nn.Tanh, "QuantReLU": nn.ReLU,
                     "QuantHardTanh": nn.Hardtanh, "QuantIdentity": nn.Identity}


def _float_module(module: nn.Module, name: str) -> nn.Module:
    for proxy in ("input_quant", "act_quant", "weight_quant", "output_quant", "bias_quant"):
        if proxy_enabled(getattr(module, proxy, None)):
            raise GatesimError(f"{name}: {type(module).__name__} quantizes ({proxy}); build the cell "
                               "without quantization for plain PyTorch")
    kind = type(module).__name__
    if kind == "QuantLinear":
        linear = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        linear.load_state_dict({k: v for k, v in module.state_dict().items() if k in ("weight", "bias")})
        return linear
    if kind in FLOAT_EQUIVALENTS:
        return FLOAT_EQUIVALENTS[kind]()
    raise GatesimError(f"{name}: no plain PyTorch equivalent for {kind}")


def plain_torch(module: nn.Module) -> fx.GraphModule:
    """The module's traced graph running only torch modules and ops; identities dropped."""
    gm = symbolic_trace(copy.deepcopy(module))
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not is_brevitas(gm.get_submodule(node.target)):
            continue
        plain = _float_module(gm.get_submodule(node.target), node.name)
        if isinstance(plain, nn.Identity):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        else:
            parent, _, attr = node.target.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, attr, plain)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
