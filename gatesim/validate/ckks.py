"""The CKKS model against TenSEAL: one step of each cell run encrypted with polynomial
activations, comparing multiplicative depth (exact: the shortest modulus chain the step runs
on) and time (the step at the predicted chain).

The step is the cell's own plain-PyTorch graph (gatesim.validate.plain) interpreted on
TenSEAL vectors: a linear layer is a vector-matrix product with plain weights (one per gate
block when its output is chunked, as slicing a ciphertext would cost rotations), sigmoid,
tanh, ReLU and hardtanh are least-squares polynomials of the model's degree on [-4, 4].
"""
from __future__ import annotations

import operator
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from gatesim.cells import CELLS, CellConfig, build_cell, n_states, pairs
from gatesim.costs.ckks import CkksCosts, ring_for
from gatesim.costs.config import load
from gatesim.errors import GatesimError
from gatesim.he.lazy import LazyLinear, evaluated
from gatesim.pipeline import estimate
from gatesim.validate.plain import plain_torch

HIDDEN = (4, 8, 16)
INPUT_SIZE = 4
FIT_RANGE = 4.0
FUNCTIONS = {nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh, nn.ReLU: torch.relu, nn.Hardtanh: nn.functional.hardtanh,
             torch.sigmoid: torch.sigmoid, torch.tanh: torch.tanh, torch.relu: torch.relu,
             nn.functional.relu: torch.relu, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def fit(fn: Callable, degree: int) -> list[float]:
    """Least-squares polynomial of `degree` for fn on [-FIT_RANGE, FIT_RANGE], lowest first."""
    x = np.linspace(-FIT_RANGE, FIT_RANGE, 401)
    y = fn(torch.as_tensor(x)).numpy()
    return list(np.polynomial.polynomial.polyfit(x, y, degree))


def _tenseal_affine(v: Any, weights: np.ndarray, bias: np.ndarray) -> Any:
    return v.mm(weights.tolist()) + bias.tolist()


def run_step(gm: fx.GraphModule, inputs: dict[str, Any], degree: int):
    """Interpret the plain graph on TenSEAL vectors; returns the step's outputs."""
    env: dict[str, Any] = dict(inputs)
    coeffs: dict[Any, list[float]] = {}

    def poly(fn, x):
        if fn not in coeffs:
            coeffs[fn] = fit(fn, degree)
        return evaluated(x).polyval(coeffs[fn])

    for node in gm.graph.nodes:
        args = fx.node.map_arg(node.args, lambda n: env[n.name])
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outs = args[0] if isinstance(args[0], tuple) else (args[0],)
            return tuple(evaluated(o) for o in outs)
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            if isinstance(module, nn.Linear):
                bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_features)
                env[node.name] = LazyLinear([(evaluated(args[0]), module.weight.detach().numpy().T, bias)],
                                            _tenseal_affine)
            elif type(module) in FUNCTIONS:
                env[node.name] = poly(FUNCTIONS[type(module)], args[0])
            else:
                raise GatesimError(f"node {node.name!r}: no TenSEAL form for {type(module).__name__}")
        elif node.target in ("chunk",) or node.target is torch.chunk:
            env[node.name] = args[0].chunk(args[1])
        elif node.target is operator.getitem:
            env[node.name] = args[0][args[1]]
        elif node.target in FUNCTIONS:
            env[node.name] = poly(FUNCTIONS[node.target], args[0])
        elif node.target in (operator.add, torch.add) and all(isinstance(a, LazyLinear) for a in args):
            env[node.name] = args[0] + args[1]
        elif node.target in (operator.add, operator.sub, operator.mul, operator.neg, torch.add, torch.sub, torch.mul):
            a = [evaluated(x) for x in args]
            env[node.name] = {operator.add: lambda: a[0] + a[1], torch.add: lambda: a[0] + a[1],
                              operator.sub: lambda: _sub(a[0], a[1]), torch.sub: lambda: _sub(a[0], a[1]),
                              operator.mul: lambda: _mul(a[0], a[1]), torch.mul: lambda: _mul(a[0], a[1]),
                              operator.neg: lambda: -a[0]}[node.target]()
        else:
            raise GatesimError(f"node {node.name!r}: no TenSEAL form for {node.target}")
    raise GatesimError("the graph has no output")


def _sub(a, b):
    if isinstance(a, (int, float)):
        return -b + a  # number - ciphertext
    return a - b


def _mul(a, b):
    if isinstance(a, (int, float)):
        return b * a
    return a * b


def context(n: int, depth: int):
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=n, coeff_mod_bit_sizes=[60] + [40] * depth + [60])
    ctx.global_scale = 2**40
    ctx.generate_galois_keys()
    return ctx


def runs(gm, depth: int, sizes: list[int], degree: int) -> float | None:
    """Seconds of one encrypted step on a chain of `depth` levels (smallest secure ring for
    it), None if the step runs out of levels."""
    import tenseal as ts

    n = ring_for(depth, load(CkksCosts, "ckks")) if depth >= 1 else None
    if n is None:
        return None
    try:
        ctx = context(n, depth)
    except ValueError:
        return None
    rng = np.random.default_rng(0)
    names = [node.name for node in gm.graph.nodes if node.op == "placeholder"]
    inputs = {name: ts.ckks_vector(ctx, list(rng.uniform(-1, 1, size))) for name, size in zip(names, sizes)}
    try:
        start = time.perf_counter()
        outs = run_step(gm, inputs, degree)
        seconds = time.perf_counter() - start
        for out in outs:
            out.decrypt()
    except ValueError:  # "scale out of bounds": the chain is too short
        return None
    return seconds


def one(cell: str, hidden: int, degree: int, profile, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    module = build_cell(cell, INPUT_SIZE, hidden, CellConfig.unquantized())
    gm = plain_torch(module).eval()
    _, predicted = estimate(cell, INPUT_SIZE, hidden, "ckks", 1, CellConfig.unquantized(), poly_degree=degree,
                            profile=profile)  # exactly as `gatesim estimate` computes it
    depth, n = predicted.resources["depth"], predicted.resources["poly_modulus_degree"]
    sizes = [INPUT_SIZE] + [hidden] * n_states(cell)
    with torch.no_grad():
        measured_depth, seconds = depth, runs(gm, depth, sizes, degree)
        while seconds is None and measured_depth < depth + 4:  # deeper than predicted
            measured_depth += 1
            seconds = runs(gm, measured_depth, sizes, degree)
        if measured_depth == depth and runs(gm, depth - 1, sizes, degree) is not None:
            measured_depth = depth - 1  # shallower than predicted
            while runs(gm, measured_depth - 1, sizes, degree) is not None:
                measured_depth -= 1
    return {"cell": cell, "hidden_size": hidden, "poly_degree": degree, "poly_modulus_degree": n,
            "depth_predicted": depth, "depth_measured": measured_depth,
            "predicted_s": predicted.latency_s, "measured_s": seconds}


def validate(profile, cells=tuple(CELLS), hidden_sizes=HIDDEN, degree: int = 3, *,
             progress: Callable[[], None] = lambda: None) -> dict:
    rows = []
    for hidden in hidden_sizes:
        for cell in cells:
            rows.append(one(cell, hidden, degree, profile))
            progress()
    return {"rows": rows, "add_vs_mul": ratios(rows)}


def ratios(rows: list[dict]) -> list[dict]:
    """Add-gated over multiply-gated depth and time per hidden size, predicted and measured."""
    index = {(r["cell"], r["hidden_size"]): r for r in rows}
    out = []
    for add, mul in pairs():
        for (cell, hidden), a in index.items():
            m = index.get((mul, hidden))
            if cell == add and m and a["measured_s"] and m["measured_s"]:
                out.append({"pair": f"{add}/{mul}", "hidden_size": hidden,
                            "depth_predicted_ratio": a["depth_predicted"] / m["depth_predicted"],
                            "depth_measured_ratio": a["depth_measured"] / m["depth_measured"],
                            "predicted_time_ratio": a["predicted_s"] / m["predicted_s"],
                            "measured_time_ratio": a["measured_s"] / m["measured_s"]})
    return out


# ----------------------------------------------------------------------------- the CLI's table


def show(r: dict) -> None:
    """The result as `gatesim validate ckks` prints it without --json."""
    from gatesim.terminal import terminal
    from rich.table import Table

    table = Table(title="CKKS model vs TenSEAL, one cell step (polynomial activations)")
    for col in ("cell", "H", "N", "depth model", "depth TenSEAL", "predicted s", "measured s", "ratio"):
        table.add_column(col, justify="left" if col == "cell" else "right")
    for row in r["rows"]:
        measured = row["measured_s"]
        table.add_row(row["cell"], str(row["hidden_size"]), str(row["poly_modulus_degree"]), str(row["depth_predicted"]),
                      str(row["depth_measured"]), f"{row['predicted_s']:.3f}", "-" if measured is None else f"{measured:.3f}",
                      "-" if measured is None else f"{row['predicted_s'] / measured:.2f}")
    terminal().print(table)
