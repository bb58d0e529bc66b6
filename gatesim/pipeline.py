"""The pipeline in one place: a design point -> its cell's op graph -> a target's estimate ->
a results row. The CLI commands, the library API, the sweep workers and the validations all
call these functions, so a figure is computed the same way wherever it is reported."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Callable

from gatesim.cells import CELLS, CellConfig, build_cell, gating_of, pair_of, spec_of, variant_axes_of
from gatesim.cells.config import BITS, VARIANT_AXES
from gatesim.costs import Estimate
from gatesim.costs.cpu import torch_layer_name
from gatesim.costs.targets import Target, get
from gatesim.errors import GatesimError
from gatesim.ops import BEYOND_KINDS, KINDS
from gatesim.results import DESIGN
from gatesim.trace import OpGraph
from gatesim.trace.template import CellTemplate

CONFIG_FIELDS = (*BITS, *VARIANT_AXES)  # the design axes a CellConfig takes
_TEMPLATES: dict[tuple, CellTemplate] = {}


def check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value <= 0:
            raise GatesimError(f"{name}={value!r}: must be a whole number >= 1")


def check_memory(needed: int, what: str) -> None:
    """Refuse, in one line, work whose arrays cannot fit in the memory this machine has free."""
    import os

    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > free // 2:
        raise GatesimError(f"{what}: needs about {needed / 2**30:,.1f} GiB of arrays; this machine has "
                           f"{free / 2**30:,.1f} GiB free: fewer steps or a smaller batch")


# ----------------------------------------------------------------------------- design -> graph


def built(cell: str | Callable, input_size: int, hidden_size: int, config: CellConfig) -> Any:
    """build_cell, with a Ctrl-C that lands meanwhile raised after it: Brevitas resolves a
    quantizer's parts inside a bare `except:` (brevitas/proxy/quant_proxy.py), which would
    swallow it, and a sweep would then run to its end instead of stopping."""
    if threading.current_thread() is not threading.main_thread():  # handlers are the main thread's
        return build_cell(cell, input_size, hidden_size, config)
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        return build_cell(cell, input_size, hidden_size, config)
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)  # Python's handler: KeyboardInterrupt, here


def template(cell: str | Callable, input_size: int, hidden_size: int, config: CellConfig | None = None,
             batch: int = 1) -> CellTemplate:
    """The cached structure of `cell` under `config` (traced on first use)."""
    config = config or CellConfig()
    key = (cell, config)
    if key not in _TEMPLATES:
        factory = lambda i, h: built(cell, i, h, config)  # noqa: E731
        probe = None
        if spec_of(cell):  # a built-in cell has the same graph without quantizers, 3x cheaper
            probe = lambda i, h: built(cell, i, h, CellConfig.unquantized())  # noqa: E731
        _TEMPLATES[key] = CellTemplate(factory, input_size, hidden_size, batch, config.acc_bits, probe)
    return _TEMPLATES[key]


def graph_at(cell: str | Callable, input_size: int, hidden_size: int, batch: int = 1,
             config: CellConfig | None = None, graphs: dict[tuple, OpGraph] | None = None) -> OpGraph:
    """The op graph of one step at these sizes; `graphs` keeps them across the points of a batch."""
    config = config or CellConfig()
    key = (cell, config, input_size, hidden_size, batch)
    if graphs is not None and key in graphs:
        return graphs[key]
    graph = template(cell, input_size, hidden_size, config, batch).at(input_size, hidden_size, batch)
    if graphs is not None:
        graphs[key] = graph
    return graph


def cell_config(point: dict[str, Any]) -> CellConfig:
    """A design point's cell config; variant axes it leaves unset (None) keep their defaults."""
    return CellConfig(**{k: point[k] for k in CONFIG_FIELDS if point[k] is not None or k in BITS})


def design_for(design: dict[str, Any], target: str) -> dict[str, Any]:
    """The design as its cost on `target` depends on it: axes that do not shape the cell are
    unset, and a target that computes on reals gets no bit widths (equal points are one)."""
    design = dict(design)
    design.update(dict.fromkeys(a for a in VARIANT_AXES if a not in variant_axes_of(design["cell"])))
    design.update(get(target).design({k: design[k] for k in BITS}))
    return design


def target_config(config: CellConfig, target: Target) -> CellConfig:
    """`config` as `target` costs it (its rule on bit widths applied)."""
    return config.model_copy(update=target.design({k: getattr(config, k) for k in BITS}))


# ----------------------------------------------------------------------------- graph -> figures


def count(cell: str | Callable, input_size: int, hidden_size: int, steps: int = 1, batch: int = 1,
          config: CellConfig | None = None) -> dict[str, Any]:
    """Counts per step (at `batch`) and per sequence of `steps` steps, plus depths: the dict
    `gatesim count --json` prints."""
    check_sizes(input_size=input_size, hidden_size=hidden_size, steps=steps, batch=batch)
    graph = graph_at(cell, input_size, hidden_size, batch, config)
    per_step = graph.counts()
    return {
        "cell": cell if isinstance(cell, str) else getattr(cell, "__name__", repr(cell)),
        "input_size": input_size,
        "hidden_size": hidden_size,
        "steps": steps,
        "batch": batch,
        "per_step": per_step,
        "per_sequence": {k: v * steps for k, v in per_step.items()},
        "per_step_by_bits": graph.counts_by_bits(),
        "depth": graph.depth(),
        "overflow_possible": graph.overflow_possible(),
    }


def graph_for(cell: str | Callable, input_size: int, hidden_size: int, target: str, batch: int = 1,
              config: CellConfig | None = None, graphs: dict[tuple, OpGraph] | None = None) -> OpGraph:
    """The cell's op graph as `target` costs it."""
    return graph_at(cell, input_size, hidden_size, batch, target_config(config or CellConfig(), get(target)), graphs)


def design_params(cell: str | Callable, input_size: int, hidden_size: int, target: str,
                  config: CellConfig | None, params: dict[str, Any]) -> dict[str, Any]:
    """`params` and what the target derives from the design itself (TFHE: observed bounds)."""
    record = get(target)
    if record.derived_params is None:
        return params
    config = target_config(config or CellConfig(), record)
    return {**params, **record.derived_params(cell, input_size, hidden_size, config, params)}


def estimate(cell: str | Callable, input_size: int, hidden_size: int, target: str = "cpu", batch: int = 1,
             config: CellConfig | None = None, graphs: dict[tuple, OpGraph] | None = None,
             **params: Any) -> tuple[OpGraph, Estimate]:
    """The cell's op graph as `target` costs it, and the target's estimate with `params`."""
    graph = graph_for(cell, input_size, hidden_size, target, batch, config, graphs)
    params = design_params(cell, input_size, hidden_size, target, config, params)
    return graph, get(target).model.estimate(graph, params)


def _ratio(a: float, m: float) -> float | None:
    return a / m if m else None


def add_vs_mul(add: Estimate, mul: Estimate, pair: str) -> dict[str, Any]:
    """Every figure of the add-gated estimate over the multiply-gated one."""
    numeric = {k: v for k, v in add.resources.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"pair": pair, "energy_pj": _ratio(add.energy_pj, mul.energy_pj),
            "latency_s": _ratio(add.latency_s, mul.latency_s),
            "resources": {k: _ratio(v, mul.resources.get(k, 0)) for k, v in numeric.items()}}


def estimate_cell(cell: str, input_size: int, hidden_size: int, target: str = "cpu", batch: int = 1,
                  config: CellConfig | None = None, **params: Any) -> dict[str, Any]:
    """The dict `gatesim estimate --json` prints: the estimate, and the add-gated /
    multiply-gated ratio against the cell's twin at the same sizes and bits."""
    config = target_config(config or CellConfig(), get(target))
    graph, result = estimate(cell, input_size, hidden_size, target, batch, config, **params)
    out = {"cell": cell, "input_size": input_size, "hidden_size": hidden_size, "batch": batch,
           "weight_bits": config.weight_bits, "act_bits": config.act_bits, **result.to_json(),
           "overflow_possible": graph.overflow_possible(), "add_vs_mul": None}
    spec = spec_of(cell)
    if spec:
        try:
            _, other = estimate(spec.twin, input_size, hidden_size, target, batch, config, **params)
        except GatesimError as exc:  # e.g. an execution only one side has (torch's nn.GRU)
            out["add_vs_mul_unavailable"] = f"{spec.twin}: {exc}"
            return out
        add, mul = (result, other) if spec.gating == "add" else (other, result)
        names = (cell, spec.twin) if spec.gating == "add" else (spec.twin, cell)
        out["add_vs_mul"] = add_vs_mul(add, mul, "/".join(names))
    return out


SEMANTICS = ("brevitas", "hls4ml")  # fixed-point presets: what Brevitas computes; what hls4ml builds
TORCH_LAYERS = tuple(sorted(name for name in CELLS if torch_layer_name(name)))  # torch has these


def torch_layer(cell: str) -> type:
    """torch's own layer for a built-in multiply-gated cell (nn.GRU, nn.LSTM): what hls4ml converts."""
    import torch

    layer = getattr(torch.nn, torch_layer_name(cell), None) if cell in TORCH_LAYERS else None
    if layer is None:
        raise GatesimError(f"cell {cell!r}: hls4ml converts torch's recurrent layers: allowed values are "
                           f"{', '.join(TORCH_LAYERS)}")
    return layer


def simulate_hls4ml_cell(cell: str, input_size: int, hidden_size: int, steps: int = 20, batch: int = 8,
                         seed: int = 0, precision: str = "ap_fixed<16,6>") -> dict[str, Any]:
    """torch's nn.LSTM / nn.GRU (seeded weights) on seeded inputs in [-1, 1), as hls4ml's C
    simulation computes it at `precision`: `gatesim simulate lstm --semantics hls4ml --json`."""
    import time

    import numpy as np
    import torch

    from gatesim.fixedpoint.hls4ml import simulate_hls4ml

    layer_class = torch_layer(cell)
    check_sizes(input_size=input_size, hidden_size=hidden_size, steps=steps, batch=batch)
    check_memory(batch * steps * 8 * hidden_size * (input_size + hidden_size) * 8, f"batch={batch} x steps={steps}")
    torch.manual_seed(seed)
    layer = layer_class(input_size, hidden_size, batch_first=True)
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, steps, input_size))
    start = time.perf_counter()
    run = simulate_hls4ml(layer, x, precision)
    return {"cell": cell, "semantics": "hls4ml", "precision": precision, "input_size": input_size,
            "hidden_size": hidden_size, "steps": steps, "batch": batch, "seed": seed, "types": run["types"],
            "overflows": run["overflows"], "ranges": run["ranges"], "output_scale": run["scale"],
            "seconds": time.perf_counter() - start}


def simulate_cell(cell: str, input_size: int, hidden_size: int, steps: int = 20, batch: int = 8,
                  config: CellConfig | None = None, seed: int = 0, state_bits: int | None = None,
                  overflow: str = "wrap", check_brevitas: bool = False,
                  rounding_bits: int | None = None) -> dict[str, Any]:
    """A built-in (or `module:` spec) cell with seeded random weights, simulated on seeded
    random inputs spread over the input quantizer's range: the dict `gatesim simulate --json`
    prints. The accumulators are `config.acc_bits` wide (None: as wide as the sums need).
    `rounding_bits`: the tables rounded as `estimate --target tfhe --bounds observed
    --rounding-bits` rounds them for the same seed (its input set, gatesim.he.bounds)."""
    import numpy as np
    import torch

    from gatesim.simulate import simulate

    config = config or CellConfig()
    check_sizes(input_size=input_size, hidden_size=hidden_size, steps=steps, batch=batch)
    check_memory(batch * steps * (input_size + 6 * hidden_size) * 8, f"batch={batch} x steps={steps}")
    torch.manual_seed(seed)
    module = built(cell, input_size, hidden_size, config)
    x = np.random.default_rng(seed).uniform(-config.input_range, config.input_range, (batch, steps, input_size))
    rounding = None
    if rounding_bits is not None:
        from gatesim.he.bounds import InputSet, observed

        rounding = dict(observed(cell, input_size, hidden_size, config, InputSet(seed=seed), rounding_bits).rounding)
    result = simulate(module, x, acc_bits=config.acc_bits, state_bits=state_bits, overflow=overflow,
                      check_brevitas=check_brevitas, rounding=rounding)
    return {"cell": cell, "input_size": input_size, "hidden_size": hidden_size, "steps": steps,
            "batch": batch, "seed": seed, "weight_bits": config.weight_bits,
            "act_bits": config.act_bits, "gate_bits": config.effective_gate_bits,
            "weight_scaling": config.weight_scaling, **result.to_json(),
            # only a narrowed accumulator can be narrower than its sums: no trace otherwise
            "overflow_possible": (graph_at(cell, input_size, hidden_size, batch, config).overflow_possible()
                                  if config.acc_bits is not None else [])}


# ----------------------------------------------------------------------------- point -> row


def _flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{name}_", value))
        elif isinstance(value, (int, float, bool, str)) or value is None:
            out[f"{prefix}{name}"] = value
    return out


def _figures(graph: OpGraph, point: dict[str, Any], config: CellConfig,
             graphs: dict[tuple, OpGraph]) -> dict[str, Any]:
    """What the graph alone says: op counts by kind, depths, widths and the overflow flag."""
    row: dict[str, Any] = {f"ops_{k}": n for k, n in graph.counts().items()}
    row.update({f"depth_{k}": v for k, v in graph.depth().items()})
    products = [o.out_bits for o in graph.ops() if o.info.variable_product and not o.is_float]
    row["widest_product_bits"] = max(products, default=0)
    needed = graph.accumulator_bits()
    if config.acc_bits is not None:  # proven need of the same cell with wide accumulators
        wide = config.model_copy(update={"acc_bits": None})
        needed = graph_at(point["cell"], point["input_size"], point["hidden_size"], point["batch"], wide,
                          graphs).accumulator_bits()
    row["acc_bits_needed"] = needed
    row["acc_overflow_possible"] = config.acc_bits is not None and needed > config.acc_bits
    return row


def row(point: dict[str, Any], graphs: dict[tuple, OpGraph] | None = None) -> dict[str, Any]:
    """The results row of one sweep point; a point the target cannot take is a row with its reason."""
    graphs = {} if graphs is None else graphs
    cell, target, params = point["cell"], point["target"], dict(point["params"])
    out: dict[str, Any] = {k: point[k] for k in DESIGN}
    out.update(pair=pair_of(cell), gating=gating_of(cell), target=target, **params, feasible=True, error=None,
               energy_pj=None, latency_s=None)
    if params.get("profile"):  # the file's name: the key already holds its content
        out["profile"] = Path(params["profile"]).name
    try:
        config = cell_config(point)
        graph = graph_for(cell, point["input_size"], point["hidden_size"], target, point["batch"], config, graphs)
        out.update(_figures(graph, point, config, graphs))
        params = design_params(cell, point["input_size"], point["hidden_size"], target, config,
                               {"steps": point["steps"], **params})
        est = get(target).model.estimate(graph, params)
    except GatesimError as exc:
        out.update(feasible=False, error=str(exc))
        return out
    if est.details.get("infeasible"):  # e.g. a design its FPGA part cannot hold: why, and what it would use
        out.update(feasible=False, error=est.details["infeasible"])
        out.update(_flatten(f"{target}_", {k: v for k, v in est.resources.items() if k not in params}))
        return out
    per_step = est.details.get("per_step", {})
    out.update(energy_pj=est.energy_pj, latency_s=est.latency_s,
               step_energy_pj=per_step.get("energy_pj", est.energy_pj / point["steps"]),
               step_latency_s=per_step.get("latency_s", est.latency_s / point["steps"]))
    out.update(_flatten(f"{target}_", {k: v for k, v in est.resources.items() if k not in params}))
    for kind in KINDS:
        figures = est.by_kind.get(kind, {})
        out[f"step_latency_s_{kind}"] = figures.get("latency_s", 0.0)
        out[f"step_energy_pj_{kind}"] = figures.get("energy_pj", 0.0)
    # the rest of a step's time, so that its parts sum to step_latency_s (the report's breakdown)
    for part in BEYOND_KINDS:
        out[f"step_latency_s_{part}"] = per_step.get(f"{part}_s", 0.0)
    return out
