"""One cell step as an integer program for concrete-python, from the simulator's compiled graph.

The kernels are the simulator's own, traced by Concrete instead of run on arrays: each node
that applies a univariate function (a requantization, a table, a ReLU, a clamp) becomes one
`fhe.univariate` of its whole kernel (after `fhe.round_bit_pattern` where the simulator
rounds that table's input), so Concrete builds its table from exactly the integers
the simulator computes; linear layers become products with clear integer weights; adds,
slices and encrypted products are traced as they are.
"""
from __future__ import annotations

import contextlib
import inspect
import operator
from typing import Any, Callable

import numpy as np
import torch
import torch.fx as fx

from gatesim.errors import GatesimError
from gatesim.fixedpoint.qtype import bits_for
from gatesim.he.concrete_fhe import load_fhe
from gatesim.he.lazy import LazyLinear, evaluated
from gatesim.simulate.engine import Simulator
from gatesim.simulate.rules import MAX_TABLE_BITS, round_lsbs, unchanged


def _affine(x: Any, weights: np.ndarray, bias: np.ndarray) -> Any:
    return x @ weights + bias


def _clear_affine(x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ weights + bias on clear integers, through BLAS in float64 where every partial sum
    stays below 2^53 (so exactly), else in int64."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(weights).sum(axis=0).max(initial=0))
    if bound + float(np.abs(bias).max(initial=0)) < 2.0 ** 53:
        return np.rint(x.astype(np.float64) @ weights.astype(np.float64)).astype(np.int64) + bias
    return x @ weights + bias


def _same_grid(sim: Simulator, node: fx.Node) -> bool:
    """Two linear outputs added without moving either onto a finer grid."""
    scales = {sim.metas[a.name].scale for a in node.all_input_nodes}
    return len(scales) == 1


def _as_ints(fn: Callable) -> Callable:
    return lambda values: np.asarray(fn(values)).astype(np.int64)


def step_function(sim: Simulator, clear_ranges: dict[str, list[int]] | None = None,
                  overflows: frozenset[str] = frozenset()) -> Callable[..., Any]:
    """f(**{placeholder: encrypted integers}) -> tuple of the step's outputs.

    With `clear_ranges` the function runs on clear integers instead of Concrete tracers,
    applying each table directly and recording the range of every table's input there
    (concrete-python is not needed for that). `overflows` names the rounded tables whose
    input can round past the top of its type (`rounding_overflows`).
    """
    if clear_ranges is None:
        fhe = load_fhe()

    names = list(sim.placeholders)
    calls = [n for n in sim.gm.graph.nodes if n.op not in ("placeholder", "output")]

    def lookup(name: str, table: Callable, value: Any, lsbs: int) -> Any:
        """The table on the value, its lowest `lsbs` bits rounded away first."""
        if clear_ranges is None:
            # overflow protection only where the input set rounds past the top: concrete-python
            # 2.11 mis-rounds some signed inputs with it on and none to protect (measured:
            # [-70, 41] rounded by 4 bits; tests/test_tfhe.py)
            value = fhe.round_bit_pattern(value, lsbs, overflow_protection=name in overflows) if lsbs else value
            return fhe.univariate(_as_ints(table))(value)
        return _as_ints(table)(round_lsbs(np.asarray(value), lsbs))

    def record(name: str, value: Any) -> None:
        if clear_ranges is None:
            return
        value = evaluated(value)  # clear integers: a lazy linear is cheap to evaluate here
        if isinstance(value, np.ndarray) and value.size:
            seen = clear_ranges.setdefault(name, [int(value.min()), int(value.max())])
            seen[0], seen[1] = min(seen[0], int(value.min())), max(seen[1], int(value.max()))

    def lazy_step(node: fx.Node, compiled, args: tuple) -> Any:
        """Linear layers stay unevaluated so that a chunk of one slices the clear weights."""
        if "affine" in compiled.info:
            weights_t, bias = compiled.info["affine"]
            return LazyLinear([(evaluated(args[0]), weights_t, bias)], _affine if clear_ranges is None else _clear_affine)
        if node.target in ("chunk", torch.chunk) and isinstance(args[0], LazyLinear):
            return args[0].chunk(args[1])
        if node.target is operator.getitem and isinstance(args[0], tuple):
            return args[0][args[1]]
        if (node.target in (operator.add, torch.add) and len(args) == 2
                and all(isinstance(a, LazyLinear) for a in args) and _same_grid(sim, node)):
            return args[0] + args[1]
        return None

    def traced(node: fx.Node, compiled, args: tuple, kwargs: dict) -> Any:
        """A node as Concrete traces it: its HE form, its table, or its own kernel."""
        if "he" in compiled.info:
            return compiled.info["he"](*args, **kwargs)
        table = compiled.info.get("univariate")
        if table is None:
            return compiled.kernel(*args, **kwargs)
        value = args[0] if table is unchanged else lookup(node.name, table, args[0], compiled.info.get("round_lsbs", 0))
        return (value, None, None, None) if compiled.info.get("tuple_output") else value

    def step(**inputs: Any) -> tuple:
        sim.recorder.enabled = False
        env: dict[str, Any] = dict(sim.const_env)
        env.update(inputs)
        for name, value in inputs.items():
            record(name, value)
        try:
            for node in calls:
                if node.name in sim.const_env:
                    continue
                compiled = sim.compiled[node.name]
                args = fx.node.map_arg(node.args, lambda n: env[n.name])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n.name])
                # Concrete's statistics then count PBS per fx node
                with fhe.tag(node.name) if clear_ranges is None else contextlib.nullcontext():
                    value = lazy_step(node, compiled, args)
                    if value is None:
                        value = traced(node, compiled, evaluated(args), evaluated(kwargs))
                env[node.name] = value
                record(node.name, value)
        finally:
            sim.recorder.enabled = True
        outputs = tuple(evaluated(env[name]) for name in sim.outputs)
        return outputs if len(outputs) > 1 else outputs[0]

    step.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names])
    return step


def clear_ranges(sim: Simulator, samples: list[tuple[np.ndarray, ...]]) -> dict[str, list[int]]:
    """[min, max] of every node over `samples`, the step run on clear integers: the bounds
    Concrete measures on the same inputs to size its values."""
    ranges: dict[str, list[int]] = {}
    if samples:  # one step over all samples stacked as rows: the same ranges, one pass
        stacked = tuple(np.concatenate(parts) for parts in zip(*samples))
        step_function(sim, ranges)(**dict(zip(sim.placeholders, stacked)))
    return ranges


def constant_tables(sim: Simulator, ranges: dict[str, list[int]]) -> frozenset[str]:
    """Tables giving one value on every integer of their input's type (the bits its range
    over the compile inputs needs): Concrete folds them into clear constants ("constant
    table" rule). A table whose input is rounded first counts the rounded values of that type,
    one bit wider where the rounding overflows it (measured: add_gru, 3 bits, rounding to 4
    bits: `hn_quant` folds at H=4, and at H=8, where its input overflows, keeps both bootstraps)."""
    constant = set()
    for node in sim.gm.graph.nodes:
        table = sim.compiled[node.name].info.get("univariate") if node.name in sim.compiled else None
        if table is None or table is unchanged or not node.all_input_nodes:
            continue
        if node.all_input_nodes[0].name not in ranges:
            continue
        lo, hi = ranges[node.all_input_nodes[0].name]
        lsbs = sim.compiled[node.name].info.get("round_lsbs", 0)
        # Concrete tabulates the whole integer type of the input
        bits = bits_for(lo, hi) + (lsbs > 0 and rounds_past_top(lo, hi, lsbs))
        if bits > MAX_TABLE_BITS:
            continue  # no backend tabulates it (the cost model refuses such a table by name)
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if lo < 0 else (0, 2**bits - 1)
        out = _as_ints(table)(round_lsbs(np.arange(lo, hi + 1), lsbs))
        if out.size and np.all(out == out.flat[0]):
            constant.add(node.name)
    return frozenset(constant)


def table_input_bits(sim: Simulator, ranges: dict[str, list[int]]) -> dict[str, int]:
    """Each table node's input width over the ranges (the bits its input takes)."""
    widths = {}
    for node in sim.gm.graph.nodes:
        table = sim.compiled[node.name].info.get("univariate") if node.name in sim.compiled else None
        if table is None or table is unchanged or not node.all_input_nodes:
            continue
        if node.all_input_nodes[0].name in ranges:
            widths[node.name] = bits_for(*ranges[node.all_input_nodes[0].name])
    return widths


def rounds_past_top(lo: int, hi: int, lsbs: int) -> bool:
    """Whether [lo, hi] rounded by `lsbs` bits passes the top of the type the range takes
    (e.g. [0, 62] is 6 bits; rounded by 2 bits, 62 becomes 64)."""
    return bits_for(lo, int(round_lsbs(np.array(hi), lsbs))) > bits_for(lo, hi)


def rounding_overflows(sim: Simulator, ranges: dict[str, list[int]]) -> frozenset[str]:
    """Rounded tables whose input rounds past the top of its type over `ranges`: Concrete then
    widens the input by one bit (round_bit_pattern's overflow protection), the lookup too."""
    out = set()
    for node in sim.gm.graph.nodes:
        lsbs = sim.compiled[node.name].info.get("round_lsbs", 0) if node.name in sim.compiled else 0
        source = node.all_input_nodes[0].name if lsbs and node.all_input_nodes else None
        if source in ranges and rounds_past_top(*ranges[source], lsbs):
            out.add(node.name)
    return frozenset(out)


def rounding_plan(sim: Simulator, ranges: dict[str, list[int]], bits: int) -> tuple[tuple[str, int], ...]:
    """(table node, lsbs to remove) so that each table's input keeps its `bits` most
    significant bits of the range it takes (Concrete ML's rounding threshold bits); tables on
    `bits` bits or fewer are left as they are."""
    return tuple((name, width - bits) for name, width in table_input_bits(sim, ranges).items() if width > bits)


def compile_step(sim: Simulator, inputset: list[tuple[np.ndarray, ...]]):
    """The step compiled by concrete-python, every input encrypted."""
    fhe = load_fhe()

    overflows = rounding_overflows(sim, clear_ranges(sim, inputset)) if sim.options.rounding else frozenset()
    compiler = fhe.Compiler(step_function(sim, overflows=overflows), dict.fromkeys(sim.placeholders, "encrypted"))
    try:
        return compiler.compile(inputset)
    except Exception as exc:  # concrete reports precision and support limits this way
        raise GatesimError(f"concrete-python could not compile the step: {exc}") from exc


def inputset(sim: Simulator, samples: int, rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    """Integers spanning each input's grid range, extremes included."""
    metas = [sim.metas[n] for n in sim.placeholders]
    shapes = [sim.static[n].shape for n in sim.placeholders]
    out = [tuple(np.full(s, m.qtype.lo, dtype=np.int64) for m, s in zip(metas, shapes)),
           tuple(np.full(s, m.qtype.hi, dtype=np.int64) for m, s in zip(metas, shapes))]
    for _ in range(samples):
        out.append(tuple(rng.integers(m.qtype.lo, m.qtype.hi + 1, s) for m, s in zip(metas, shapes)))
    return out
