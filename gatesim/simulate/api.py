"""The library entry point: simulate a module over a sequence and report what happened."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.qtype import bits_for
from gatesim.simulate.check import compare, run_reference
from gatesim.simulate.engine import Simulator, float_limits, type_bits
from gatesim.simulate.rules import SimOptions
from gatesim.trace.adapters import ADAPTERS

ADAPTED = tuple(ADAPTERS)  # Brevitas recurrent layers: their step adapter takes (x, *states)


OVERFLOW_MODES = ("wrap", "saturate")


@dataclass
class SimResult:
    """Integer outputs (one array (B, T, ...) per returned state) and what the run observed."""

    int_outputs: list[np.ndarray]
    scales: list[float]
    widths: list[dict]
    overflow: dict
    seconds: float
    cell_steps: int
    matmul_paths: dict[str, str]
    float32_limits: list[str]
    brevitas: dict | None = None
    options: dict = field(default_factory=dict)
    rounding: dict | None = None  # {"tables": {node: lsbs}, "output_error": ...} when tables were rounded

    @property
    def outputs(self) -> list[np.ndarray]:
        """Dequantized outputs: each integer times its grid step (exact in float64)."""
        return [ints * scale for ints, scale in zip(self.int_outputs, self.scales)]

    @property
    def cell_steps_per_s(self) -> float:
        return self.cell_steps / self.seconds if self.seconds > 0 else float("inf")

    @property
    def overflowed(self) -> bool:
        return self.overflow["count"] > 0

    def widest_bits(self, static: bool = False) -> dict[str, int]:
        """Per op kind, the widest intermediate: observed, or as proven by the counting pass."""
        key = "type_bits" if static else "bits"
        widest: dict[str, int] = {}
        for row in self.widths:
            if row[key] is not None:
                widest[row["kind"]] = max(widest.get(row["kind"], 0), row[key])
        return dict(sorted(widest.items()))

    def to_json(self) -> dict[str, Any]:
        check = self.brevitas or {}
        return {
            "bit_exact": check.get("bit_exact"),
            "mismatches": check.get("mismatches"),
            "elements_compared": check.get("elements_compared"),
            "reference": check.get("reference"),
            "brevitas_float32": check.get("float32"),
            "brevitas_float64": check.get("float64"),
            "float32_exact": not self.float32_limits,
            "float32_limits": self.float32_limits,
            "overflowed": self.overflowed,
            "overflow": self.overflow,
            "widest_bits": self.widest_bits(),
            "widest_type_bits": self.widest_bits(static=True),
            "cell_steps_per_s": round(self.cell_steps_per_s, 1),
            "seconds": self.seconds,
            "cell_steps": self.cell_steps,
            "matmul_paths": self.matmul_paths,
            "scales": self.scales,
            "options": self.options,
            "rounding": self.rounding,
            "nodes": self.widths,
        }


def _arrays(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise GatesimError(f"{name}: expected a real-valued array or tensor, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_shapes(x: np.ndarray, states: tuple[np.ndarray, ...]) -> None:
    if x.ndim != 3:
        raise GatesimError(f"x: expected shape (batch, steps, features), got {x.shape}")
    for i, s in enumerate(states):
        if s.ndim < 1 or s.shape[0] != x.shape[0]:
            raise GatesimError(f"state {i}: shape {s.shape} does not start with the batch size {x.shape[0]}")


def _default_states(module: nn.Module, batch: int) -> tuple:
    """Zero states as torch's RNNs start (gatesim.trace.default_inputs), for the module as
    traced (Brevitas' QuantLSTM / QuantRNN through their adapters)."""
    from gatesim.trace import default_states
    from gatesim.trace.adapters import adapt

    return tuple(np.asarray(s) for s in default_states(adapt(module), batch))


def _positional_inputs(module: nn.Module) -> int | None:
    """How many tensors forward takes, when its signature says so plainly."""
    params = inspect.signature(module.forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def simulate(module: nn.Module, x: Any, *states: Any, acc_bits: int | None = None,
             state_bits: int | None = None, overflow: str = "wrap", strict_inputs: bool = False,
             check_brevitas: bool = False, rounding: dict[str, int] | None = None) -> SimResult:
    """Simulate `module` (one step: forward(x_t, *states) -> new state(s)) over x (B, T, I).

    acc_bits / state_bits: registers narrower than the proven widths; values that do not fit
    wrap or saturate (`overflow`), each event is counted per node, and the output error
    against the wide simulation is reported. strict_inputs: inputs must already lie on their
    quantization grids (else they are quantized as the module's quantizers would).
    check_brevitas: also run the module through Brevitas and compare element for element.
    rounding: {table node: bits} rounded away from each table's input first (half up, as
    concrete-python's round_bit_pattern); the outputs are the rounded cell's, and the error
    against the unrounded simulation is reported.
    """
    if rounding and (acc_bits is not None or state_bits is not None):
        raise GatesimError("rounding with narrowed registers: simulate one at a time, so each error is its own")
    if overflow not in OVERFLOW_MODES:
        raise GatesimError(f"overflow={overflow!r}: allowed values are {', '.join(OVERFLOW_MODES)}")
    for name, bits in (("acc_bits", acc_bits), ("state_bits", state_bits)):
        if bits is not None and not 2 <= bits <= 63:
            raise GatesimError(f"{name}={bits}: allowed range is 2..63")
    x = _arrays(x, "x")
    _check_shapes(x, ())
    if not states:
        states = _default_states(module, x.shape[0])
    states = tuple(_arrays(s, f"state {i}") for i, s in enumerate(states))
    _check_shapes(x, states)
    example = (torch.zeros(x.shape[0], *x.shape[2:]), *(torch.as_tensor(s, dtype=torch.float32) for s in states))
    n_inputs = _positional_inputs(module)
    if n_inputs is not None and n_inputs != len(example) and not isinstance(module, ADAPTED):
        raise GatesimError(f"{type(module).__name__}.forward takes {n_inputs} inputs (x and "
                           f"{n_inputs - 1} state(s)); got x and {len(states)} initial state(s)")
    wide = Simulator(module, example, SimOptions())
    ints = wide.quantize_inputs(x, states, strict_inputs)
    wide_out, wide_s = wide.run(ints[0], ints[1:])
    scales = [wide.metas[name].scale for name in wide.outputs]
    options = {"acc_bits": acc_bits, "state_bits": state_bits, "overflow": overflow}
    sim, outputs, seconds = wide, wide_out, wide_s
    report = _overflow_report(wide, SimOptions(acc_bits, state_bits, overflow))
    if acc_bits is not None or state_bits is not None:
        report["by_mode"] = {}
        for mode in OVERFLOW_MODES:  # both behaviours, so the choice can be made on evidence
            narrow = wide.with_options(SimOptions(acc_bits, state_bits, mode))
            narrow_out, narrow_s = narrow.run(ints[0], ints[1:])
            mode_report = _overflow_report(narrow, narrow.options)
            mode_report["output_error"] = _error(narrow_out, wide_out, scales)
            report["by_mode"][mode] = {k: mode_report[k] for k in ("count", "nodes", "output_error")}
            if mode == overflow:
                sim, outputs, seconds, report = narrow, narrow_out, narrow_s, {**mode_report,
                                                                               "by_mode": report["by_mode"]}
    rounded = None
    if rounding:
        sim = wide.with_options(SimOptions(rounding=tuple(sorted(rounding.items()))))
        outputs, seconds = sim.run(ints[0], ints[1:])
        rounded = {"tables": dict(rounding), "output_error": _error(outputs, wide_out, scales)}
    result = SimResult(outputs, scales, _widths(wide), report, seconds, x.shape[0] * x.shape[1],
                       {n: c.info["matmul_path"] for n, c in sim.compiled.items() if "matmul_path" in c.info},
                       float_limits(wide), options=options, rounding=rounded)
    if check_brevitas:  # Brevitas has no narrow registers: it checks the wide simulation
        result.brevitas = _check(wide, ints, wide_out, scales)
    return result


def _overflow_report(sim: Simulator, options: SimOptions) -> dict:
    nodes = [{"node": node, "kind": kind, "count": count, "register_bits": bits}
             for (node, kind), (count, bits) in sim.recorder.overflows.items() if count]
    return {"count": sum(n["count"] for n in nodes), "nodes": nodes, "mode": options.overflow,
            "acc_bits": options.acc_bits, "state_bits": options.state_bits, "output_error": None}


def _widths(sim: Simulator) -> list[dict]:
    proven = type_bits(sim)
    rows = []
    for (node, kind), (lo, hi) in sim.recorder.ranges.items():
        rows.append({"node": node, "kind": kind, "min": int(lo), "max": int(hi),
                     "bits": bits_for(int(lo), int(hi)), "type_bits": proven.get((node, kind))})
    return rows


def _error(narrow: list[np.ndarray], wide: list[np.ndarray], scales: list[float]) -> dict:
    diffs = [np.abs(n - w) for n, w in zip(narrow, wide)]
    return {
        "mismatched_elements": int(sum(np.count_nonzero(d) for d in diffs)),
        "max_abs": float(max((d.max(initial=0) * s for d, s in zip(diffs, scales)), default=0.0)),
        "max_lsb": int(max((d.max(initial=0) for d in diffs), default=0)),
    }


def _check(sim: Simulator, ints, outputs, scales) -> dict:
    """Brevitas float32 on the same (dequantized) inputs. Where float32 cannot be exact,
    Brevitas in float64 is the exact reference and float32's own error is reported. Beyond
    float64's 53 bits, or on grids that are not powers of two, no float run is exact: the
    simulator's exact integer arithmetic stands alone and Brevitas' rounding errors in float32
    and float64 are reported against it."""
    entry = [sim.metas[n].scale for n in sim.placeholders]
    real = [v * s for v, s in zip(ints, entry)]

    def against(dtype: torch.dtype) -> dict:
        return compare(outputs, scales, run_reference(sim.module, real[0], tuple(real[1:]), dtype))

    ref32 = against(torch.float32)
    if not float_limits(sim, "float32"):
        return {"bit_exact": ref32["mismatches"] == 0, "reference": "brevitas float32", **ref32,
                "float32": ref32}
    ref64 = against(torch.float64)
    limits64 = float_limits(sim, "float64")
    if not limits64:
        return {"bit_exact": ref64["mismatches"] == 0, "reference": "brevitas float64 (float32 not exact)",
                **ref64, "float32": ref32}
    more = f" and {len(limits64) - 1} more" if len(limits64) > 1 else ""
    return {"bit_exact": None, "reference": f"none exact ({limits64[0]}{more})",
            "mismatches": None, "elements_compared": None, "float32": ref32, "float64": ref64}
