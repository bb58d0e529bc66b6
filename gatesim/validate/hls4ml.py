"""The `hls4ml` preset against hls4ml itself: torch nn.LSTM / nn.GRU converted with hls4ml,
built as its C simulation with g++, run on the same inputs as gatesim's integer model
(gatesim.fixedpoint.hls4ml); every output element, at every step, compared as a whole number
on the result type's grid. And the hardware units: the multipliers per kernel and the
activation table sizes hls4ml writes into the layer's parameters.h, against the units
gatesim's FPGA model builds for the same cell and reuse factor.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gatesim.errors import GatesimError
from gatesim.fixedpoint.hls4ml import Hls4mlTypes, simulate_hls4ml
from gatesim.pipeline import TORCH_LAYERS as LAYERS, torch_layer

PRECISIONS = ("ap_fixed<16,6>", "ap_fixed<10,4>")
HIDDEN = (8,)
INPUT_SIZE, STEPS, SEQUENCES = 4, 6, 64
# (weights x, inputs x): torch's initialisation, and one that overflows accum and result and
# drives the tables past their ends, so wrap-around and clamping are compared too
SCALES = ((1.0, 1.0), (4.0, 3.0))


def missing() -> str | None:
    """Why this validation cannot run here (None: it can)."""
    try:
        import hls4ml  # noqa: F401
    except ImportError:
        return "hls4ml is not installed (pip install 'gatesim[hls4ml]')"
    if shutil.which("g++") is None:
        return "g++ is not on PATH (hls4ml builds its C simulation with it)"
    return None


class Sequence(nn.Module):
    """The layer as hls4ml's PyTorch front end takes it: inside a module, batch first."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.rnn = layer

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


@contextlib.contextmanager
def _quiet():
    """hls4ml and g++ print pages of progress and warnings: keep them off the user's terminal."""
    with tempfile.TemporaryFile("w+") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(sink):
                yield sink
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def hls4ml_outputs(layer: nn.Module, x: np.ndarray, precision: str, folder: str) -> tuple[np.ndarray, float]:
    """h at every step from hls4ml's C simulation (B, T, H), and the seconds its build took."""
    import hls4ml

    model = Sequence(layer).eval()
    with _quiet() as log:
        config = hls4ml.utils.config_from_pytorch_model(
            model, input_shape=x.shape[1:], granularity="name", default_precision=precision, backend="Vivado",
            channels_last_conversion="off")  # the default transposes (steps, inputs): wrong numbers, no error
        config["LayerName"]["rnn"]["return_sequences"] = True  # every step, not only the last
        built = hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, output_dir=folder,
                                                             backend="Vivado", io_type="io_parallel")
        start = time.perf_counter()
        try:
            built.compile()
        except Exception as exc:  # g++'s errors are in the log
            log.seek(0)
            raise GatesimError(f"hls4ml's C simulation did not build ({exc}); last lines: "
                               f"{' | '.join(log.read().strip().splitlines()[-3:])}") from exc
        seconds = time.perf_counter() - start
        y = np.asarray(built.predict(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float64)
    return y.reshape(x.shape[0], x.shape[1], layer.hidden_size), seconds


def compare(layer_name: str, hidden: int, precision: str, seed: int, folder: str,
            scales: tuple[float, float] = (1.0, 1.0)) -> dict[str, Any]:
    torch.manual_seed(seed)
    layer = torch_layer(layer_name)(INPUT_SIZE, hidden, batch_first=True)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.mul_(scales[0])
    x = (np.random.default_rng(seed).uniform(-1, 1, (SEQUENCES, STEPS, INPUT_SIZE)) * scales[1]).astype(np.float32)
    ours = simulate_hls4ml(layer, x, precision)
    theirs, build_s = hls4ml_outputs(layer, x, precision, folder)
    frac = Hls4mlTypes.of(precision)["result"].frac
    raw = theirs * 2.0 ** frac
    if not np.array_equal(raw, np.round(raw)):
        raise GatesimError(f"{layer_name} {precision}: hls4ml's outputs are not on result_t's grid 2^-{frac}")
    diff = np.abs(raw.astype(np.int64) - ours["int_outputs"])
    wrong = np.argwhere(diff)
    first = None if not len(wrong) else {"sequence": int(wrong[0][0]), "step": int(wrong[0][1]),
                                         "unit": int(wrong[0][2])}
    return {"layer": layer_name, "precision": precision, "hidden_size": hidden, "input_size": INPUT_SIZE,
            "weight_scale": scales[0], "input_scale": scales[1], "steps": STEPS, "sequences": SEQUENCES, "elements_compared": int(diff.size),
            "mismatches": int(np.count_nonzero(diff)), "max_lsb": int(diff.max(initial=0)),
            # bit-exact leaves nothing to explain; a difference is not attributed to any node yet
            "explained": not len(wrong), "first_mismatch": first,
            "types": ours["types"], "overflows": ours["overflows"], "hls4ml_build_s": round(build_s, 2)}


# ----------------------------------------------------------------------------- hardware units

UNIT_REUSE = (1, 4)  # reuse factors the units are compared at
UNIT_BITS = 16  # ap_fixed<16,6>: hls4ml's default width, and the cell's weights and activations


def hls4ml_configs(folder: str) -> dict[str, dict[str, Any]]:
    """Every `struct NAME : nnet::KIND` of a written project's parameters.h: its whole-number
    constants, its kind and its typedefs (which sub-config plays which part)."""
    text = (Path(folder) / "firmware" / "parameters.h").read_text()
    out = {}
    for match in re.finditer(r"struct (\w+) : nnet::(\w+) \{(.*?)\n\};", text, re.S):
        name, kind, body = match.groups()
        values = {k: int(v) for k, v in re.findall(r"static const (?:unsigned|bool) (\w+) = (\d+);", body)}
        parts = dict((role, sub) for sub, role in re.findall(r"typedef (\w+) (\w+);", body))
        out[name] = {"kind": kind, **values, "parts": parts}
    return out


def multiplier_limit(dense: dict) -> int:
    """hls4ml's own formula: DIV_ROUNDUP(n_in * n_out, reuse_factor) - n_zeros / reuse_factor."""
    return -(-dense["n_in"] * dense["n_out"] // dense["reuse_factor"]) - dense["n_zeros"] // dense["reuse_factor"]


def hls4ml_units(layer_name: str, hidden: int, reuse: int, folder: str) -> dict[str, Any]:
    """Multipliers per kernel and the activation tables of the layer as hls4ml writes it."""
    import hls4ml

    torch.manual_seed(0)
    model = Sequence(torch_layer(layer_name)(INPUT_SIZE, hidden, batch_first=True)).eval()
    with _quiet():
        config = hls4ml.utils.config_from_pytorch_model(
            model, input_shape=(STEPS, INPUT_SIZE), granularity="name", default_precision=f"ap_fixed<{UNIT_BITS},6>",
            backend="Vivado", channels_last_conversion="off")
        config["LayerName"]["rnn"]["ReuseFactor"] = reuse
        hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, output_dir=folder, backend="Vivado",
                                                     io_type="io_parallel").write()
    configs = hls4ml_configs(folder)
    (layer,) = [c for c in configs.values() if c["kind"] in ("lstm_config", "gru_config")]
    parts = layer["parts"]
    tables = {role: configs[sub] for role, sub in parts.items() if role.startswith("ACT_CONFIG")}
    return {"input": multiplier_limit(configs[parts["mult_config1"]]),
            "recurrent": multiplier_limit(configs[parts["mult_config2"]]),
            "tables": {role: {"elements": c["n_in"], "table_size": c["table_size"]} for role, c in tables.items()}}


def gatesim_units(layer_name: str, hidden: int, reuse: int) -> dict[str, Any]:
    """The same from gatesim's FPGA model of the cell (the multipliers it builds per weighted
    sum; table entries per table kind)."""
    from gatesim.cells import CellConfig
    from gatesim.costs.fpga import table_entries
    from gatesim.ops import TABLES
    from gatesim.pipeline import estimate

    config = CellConfig(weight_bits=UNIT_BITS, act_bits=UNIT_BITS)
    graph, result = estimate(layer_name, INPUT_SIZE, hidden, "fpga", 1, config, reuse_factor=reuse)
    ops = {n: d["op"] for n, d in graph.graph.nodes(data=True)}
    # the cells' two weighted sums are traced as input_linear and hidden_linear (sizes may be equal)
    sums = {("input" if r["fx_node"].startswith("input") else "recurrent"): r["units"]
            for r in result.by_node if ops[r["node"]].info.weighted_sum}
    tables: dict[str, dict[str, int]] = {}
    for r in result.by_node:
        if r["kind"] in TABLES:
            found = tables.setdefault(r["kind"], {"elements": 0, "entries": table_entries(ops[r["node"]])})
            found["elements"] += r["count"]
    return {**sums, "tables": tables}


# hls4ml's activation roles and the table kind each one is
TABLE_ROLES = {"ACT_CONFIG_T": "tanh", "ACT_CONFIG_LSTM": "sigmoid", "ACT_CONFIG_GRU": "sigmoid"}


def compare_units(layer_name: str, hidden: int, reuse: int, folder: str) -> list[dict[str, Any]]:
    theirs, ours = hls4ml_units(layer_name, hidden, reuse, folder), gatesim_units(layer_name, hidden, reuse)
    rows = [{"layer": layer_name, "hidden_size": hidden, "reuse_factor": reuse, "unit": f"{kernel} multipliers",
             "hls4ml": theirs[kernel], "gatesim": ours[kernel]} for kernel in ("input", "recurrent")]
    for role, table in theirs["tables"].items():
        kind = TABLE_ROLES[role]
        rows.append({"layer": layer_name, "hidden_size": hidden, "reuse_factor": reuse,
                     "unit": f"{kind} table entries", "hls4ml": table["table_size"],
                     "gatesim": ours["tables"][kind]["entries"]})
    return [{**row, "equal": row["hls4ml"] == row["gatesim"]} for row in rows]


def validate(profile=None, cells: list[str] | None = None, hidden: list[int] | None = None,
             precisions: list[str] | None = None, seed: int = 0, scales: tuple = SCALES,
             progress: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """One row per layer, hidden size, precision and scale (`profile` is unused: there is no
    cost model here, only semantics)."""
    reason = missing()
    if reason:
        raise GatesimError(f"validate hls4ml: {reason}")
    import hls4ml

    layers = list(cells or LAYERS)
    for cell in layers:
        torch_layer(cell)  # refused before any build
    for precision in precisions or PRECISIONS:
        Hls4mlTypes.of(precision)  # a bad precision is refused before any build
    rows = []
    with tempfile.TemporaryDirectory(prefix="gatesim-hls4ml-") as work:
        cases = [(layer, h, p, s) for layer in layers for h in (hidden or HIDDEN) for p in (precisions or PRECISIONS)
                 for s in scales]
        for n, (layer, h, precision, scale) in enumerate(cases):
            rows.append(compare(layer, h, precision, seed, os.path.join(work, f"p{n}"), scale))
            progress()
        units = [row for layer in layers for h in (hidden or HIDDEN) for reuse in UNIT_REUSE
                 for row in compare_units(layer, h, reuse, os.path.join(work, f"u-{layer}-{h}-{reuse}"))]
    return {"target": "hls4ml", "hls4ml": hls4ml.__version__, "backend": "Vivado (C simulation, io_parallel)",
            "rows": rows, "bit_exact": all(r["mismatches"] == 0 for r in rows),
            "units": units, "units_equal": all(u["equal"] for u in units)}


def show(result: dict[str, Any]) -> None:
    from gatesim.terminal import terminal
    from rich.table import Table

    table = Table(title=f"hls4ml preset vs hls4ml {result['hls4ml']} C simulation: h at every step, in LSB")
    for col in ("layer", "precision", "H", "w x", "compared", "differ", "max", "wrapped"):
        table.add_column(col, justify="left" if col in ("layer", "precision") else "right", no_wrap=True)
    for r in result["rows"]:
        table.add_row(r["layer"], r["precision"], str(r["hidden_size"]), f"{r['weight_scale']:g}",
                      f"{r['elements_compared']:,}", f"{r['mismatches']:,}", str(r["max_lsb"]),
                      f"{sum(r['overflows'].values()):,}")
    console = terminal()
    console.print(table)
    console.print("[green]bit-exact on every row[/green]" if result["bit_exact"] else
                  "[red]NOT bit-exact[/red]: see --json first_mismatch per row")
    units = Table(title=f"hardware units: hls4ml's parameters.h vs gatesim's FPGA model (ap_fixed<{UNIT_BITS},6>)")
    for col in ("layer", "H", "reuse", "unit", "hls4ml", "gatesim", "equal"):
        units.add_column(col, justify="left" if col in ("layer", "unit", "equal") else "right", no_wrap=True)
    for u in result.get("units", []):
        units.add_row(u["layer"], str(u["hidden_size"]), str(u["reuse_factor"]), u["unit"], f"{u['hls4ml']:,}",
                      f"{u['gatesim']:,}", "yes" if u["equal"] else "[red]NO[/red]")
    console.print(units)
