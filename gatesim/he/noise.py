"""The noise each table lookup of a cell step receives under TFHE, as Concrete measures it.

Concrete's parameter optimizer sizes each bootstrap by its input's precision and by how much
the linear work before it amplifies the noise of the values it combines: the squared 2-norm
of the clear coefficients from the last bootstraps (or fresh encryptions) to the looked-up
value ("MANP", 1 for a fresh value). This pass computes that figure per table node from the
simulator's compiled step, with the integer weights the compiled circuit multiplies by:

- a table's output is fresh (1); an encrypted product is two lookups of a +- b, whose
  difference gives the product (2);
- a linear layer maps each input's figure through its squared weights;
- every other node is linear in its encrypted inputs with one coefficient per element (adds,
  subtractions, shifts onto a finer grid, slices, joins): its coefficients are found by running
  its own kernel on probe values, and a node that mixes several elements of one input is refused.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch.fx as fx

from gatesim.errors import GatesimError
from gatesim.simulate.rules import unchanged

Noise = Any  # np.ndarray of per-element figures, a tuple of them, or None for a clear value


def table_noise(sim) -> dict[str, float]:
    """fx node -> the largest noise figure among the values it looks up (tables, rounding and
    encrypted products), over the simulator's compiled step."""
    env: dict[str, Noise] = {name: np.ones(sim.static[name].shape) for name in sim.placeholders}
    found: dict[str, float] = {}
    for node in sim.gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if node.name in sim.const_env:
            env[node.name] = None
            continue
        env[node.name] = _node_noise(sim, node, env, found)
    return found


def _node_noise(sim, node: fx.Node, env: dict[str, Noise], found: dict[str, float]) -> Noise:
    compiled = sim.compiled[node.name]
    inputs = [n.name for n in node.all_input_nodes if env.get(n.name) is not None]
    if not inputs:
        return None
    first = env[node.all_input_nodes[0].name]
    if "affine" in compiled.info:
        weights_t = compiled.info["affine"][0].astype(np.float64)
        return first @ weights_t**2
    table = compiled.info.get("univariate")
    if table is unchanged:
        return first
    if table is not None:
        found[node.name] = float(np.max(first))
        fresh = np.ones_like(first)
        return (fresh, None, None, None) if compiled.info.get("tuple_output") else fresh
    if node.target is operator.getitem and isinstance(first, tuple):
        return first[node.args[1]]
    if _is_product(sim, node):
        a, b = (env[n.name] for n in node.all_input_nodes[:2])
        found[node.name] = float(np.max(a + b))
        return _product_noise(sim, node, a, b)
    return _linear_noise(sim, node, env, inputs)


def _is_product(sim, node: fx.Node) -> bool:
    metas = [sim.metas.get(n.name) for n in node.all_input_nodes]
    return (node.target in (operator.mul, "mul") or getattr(node.target, "__name__", "") == "mul") \
        and len(metas) == 2 and all(getattr(m, "is_var", False) for m in metas)


def _product_noise(sim, node: fx.Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two fresh lookups subtracted; a signed x unsigned product is traced with the unsigned
    side centred, (u - c) v + c v (simulate.rules.multiply), which adds c^2 times v's figure."""
    out = np.full(np.broadcast_shapes(a.shape, b.shape), 2.0)
    if "he" not in sim.compiled[node.name].info:
        return out
    metas = [sim.metas[n.name] for n in node.all_input_nodes[:2]]
    unsigned = [m.qtype.lo >= 0 for m in metas]
    centre = metas[unsigned.index(True)].qtype
    shift = (centre.lo + centre.hi + 1) // 2
    other = b if unsigned[0] else a
    return out + shift**2 * other


def _linear_noise(sim, node: fx.Node, env: dict[str, Noise], inputs: list[str]) -> Noise:
    """sum over encrypted inputs of coefficient^2 x that input's figure at the element each
    output element reads, coefficients and elements found by probing the node's kernel."""
    compiled = sim.compiled[node.name]

    def run(probe: dict[str, Any]) -> Any:
        def value(n: fx.Node) -> Any:
            if n.name in probe:
                return probe[n.name]
            if env.get(n.name) is None:
                return sim.const_env.get(n.name)
            return _zeros(env[n.name])
        args = fx.node.map_arg(node.args, value)
        kwargs = fx.node.map_arg(node.kwargs, value)
        return compiled.kernel(*args, **kwargs)

    base = run({})
    total = _map(lambda b: np.zeros(np.shape(b)), base)
    for name in inputs:
        noise = env[name]
        if isinstance(noise, tuple):
            raise GatesimError(f"tfhe noise: node {node.name!r} takes a tuple value from {name!r}; no noise rule")
        size = noise.size
        ones = run({name: np.ones(noise.shape)})
        index = run({name: np.arange(1, size + 1, dtype=np.float64).reshape(noise.shape)})
        check = run({name: (np.arange(size, dtype=np.float64) * 7 % 13 + 3).reshape(noise.shape)})
        flat = noise.reshape(-1)
        probe = (np.arange(size) * 7 % 13 + 3).astype(np.float64)

        def add(tot, b, o, i, c):
            coeff = np.asarray(o, dtype=np.float64) - b
            where = coeff != 0
            pos = np.zeros(coeff.shape, dtype=np.int64)
            pos[where] = np.rint((np.asarray(i, dtype=np.float64)[where] - b[where]) / coeff[where]).astype(np.int64) - 1
            ok = np.all((pos >= 0) & (pos < size)) and np.allclose(
                np.asarray(c, dtype=np.float64)[where] - b[where], coeff[where] * probe[pos[where]])
            if not ok:
                raise GatesimError(f"tfhe noise: node {node.name!r} combines several elements of {name!r}; "
                                   "the noise pass takes one coefficient per element")
            return tot + np.where(where, coeff**2 * flat[pos], 0.0)

        total = _map4(add, total, _map(lambda b: np.asarray(b, dtype=np.float64), base), ones, index, check)
    return total


def _zeros(noise: Noise) -> Any:
    return tuple(_zeros(n) for n in noise) if isinstance(noise, tuple) else np.zeros(noise.shape)


def _map(fn, value: Any) -> Any:
    return tuple(_map(fn, v) for v in value) if isinstance(value, (tuple, list)) else fn(value)


def _map4(fn, a: Any, b: Any, c: Any, d: Any, e: Any) -> Any:
    if isinstance(a, (tuple, list)):
        return tuple(_map4(fn, *parts) for parts in zip(a, b, c, d, e))
    return fn(a, b, c, d, e)
