"""gatesim command line: `gatesim COMMAND --help` explains each command.

A thin layer over gatesim.pipeline (count, simulate, estimate), gatesim.api (sweep) and the
target records (gatesim.costs.targets): target options, calibrate and validate come from
the records, so a new target needs no edit here.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from gatesim.cells import CELL_HELP
from gatesim.costs.targets import TARGETS

_option_type = typer.core.TyperOption.display_type_rich


def _flag_type(self, ctx):
    """A flag takes no value: show no type beside it (typer labels every option, `--json <bool>`)."""
    return None if self.is_flag else _option_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_type

app = typer.Typer(
    help="What a gated recurrent cell really costs, and what add-gating (ReLU + subtraction "
         "instead of sigmoid x state) saves.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
state = {"debug": False}


def _tables():
    """The rich tables module, imported when a command prints (keeps --help fast)."""
    from gatesim import tables

    return tables


def fail(message: str) -> None:
    """One line on stderr naming the bad value and what is allowed; exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def run_guarded(fn, brevitas: bool = True):
    """Turn gatesim's input errors into one clear line (full traceback with --debug).
    `brevitas`: the command will import Brevitas, so import it first with Ctrl-C held back."""
    from gatesim.errors import GatesimError

    try:
        if brevitas:
            _import_deferring_interrupts()
        return fn()
    except (GatesimError, ValidationError) as exc:
        if state["debug"]:
            raise
        fail(_one_line(exc))


def _import_deferring_interrupts() -> None:
    """Import Brevitas with Ctrl-C held back until it is loaded: its package __init__ catches
    every exception, KeyboardInterrupt included, so a Ctrl-C there would be lost."""
    if "brevitas" in sys.modules:
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        import brevitas  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a held-back Ctrl-C arrives now


def _terminated(signum, frame) -> None:
    """SIGTERM ends a command as Ctrl-C does: pools torn down, partial files removed."""
    raise KeyboardInterrupt


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            flag = "--" + field.replace("_", "-")
            parts.append(f"{flag}={err.get('input')!r}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")):
    state["debug"] = debug
    signal.signal(signal.SIGTERM, _terminated)


MOST = 10**9  # sizes, steps and batches beyond this are typing mistakes, not designs


def _positive(name: str):
    def check(value: Optional[int]) -> Optional[int]:
        if value is not None and not 1 <= value <= MOST:
            fail(f"--{name}={value}: must be a whole number from 1 to {MOST:,}")
        return value

    return check


def _positives(name: str):
    one = _positive(name)

    def check(values: Optional[list[int]]) -> Optional[list[int]]:
        for value in values or ():
            one(value)
        return values

    return check


def _seed(value: int) -> int:
    if not 0 <= value < 2**32:
        fail(f"--seed={value}: must be a whole number from 0 to {2**32 - 1} (numpy's and torch's seed range)")
    return value


def _bits(name: str):
    def check(value: Optional[int]) -> Optional[int]:
        if value is not None and not 2 <= value <= 32:
            fail(f"--{name}={value}: bit widths must be between 2 and 32")
        return value

    return check


# options several commands share (typer copies them per command)
INPUT = typer.Option(..., "--input", "-i", help="Input features I.", callback=_positive("input"))
HIDDEN = typer.Option(..., "--hidden", "-H", help="Hidden units H.", callback=_positive("hidden"))
WEIGHT_BITS = typer.Option(8, "--weight-bits", help="Weight width (2..32).", callback=_bits("weight-bits"))
ACT_BITS = typer.Option(8, "--act-bits", help="Activation/state width (2..32).", callback=_bits("act-bits"))
GATE_BITS = typer.Option(None, "--gate-bits", help="Gate output width (2..32); default: --act-bits.",
                         callback=_bits("gate-bits"))


def _weight_scaling(value: str) -> str:
    if value not in ("per_tensor", "per_channel"):
        fail(f"--weight-scaling={value!r}: allowed values are per_tensor, per_channel")
    return value


WEIGHT_SCALING = typer.Option("per_tensor", "--weight-scaling", callback=_weight_scaling,
                              help="per_tensor: one power-of-two weight scale per matrix; per_channel: one "
                                   "per output row (Brevitas' Int8WeightPerChannelFixedPoint).")
FLOAT = typer.Option(False, "--float", help="No quantization (float32 cell).")
JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


@app.command(short_help="Ops per step and per sequence by kind and operand width, with graph depths.")
def count(
    cells: list[str] = typer.Argument(..., metavar="CELL...", help=CELL_HELP + "; several cells print side by side"),
    input_size: int = INPUT,
    hidden_size: int = HIDDEN,
    steps: int = typer.Option(1, "--steps", "-T", help="Time steps per sequence.", callback=_positive("steps")),
    batch: int = typer.Option(1, "--batch", "-B", help="Batch rows per step.", callback=_positive("batch")),
    weight_bits: Optional[int] = WEIGHT_BITS,
    act_bits: Optional[int] = ACT_BITS,
    acc_bits: Optional[int] = typer.Option(None, "--acc-bits", callback=_bits("acc-bits"),
                                           help="Accumulator register width (2..32); default: what the sums "
                                                "provably need."),
    gate_bits: Optional[int] = GATE_BITS,
    weight_scaling: str = WEIGHT_SCALING,
    unquantized: bool = FLOAT,
    as_json: bool = JSON,
):
    """Count ops per step and per sequence, by kind and operand bit width, with graph depths."""
    from gatesim.cells import CellConfig
    from gatesim.pipeline import count as count_ops

    def go():
        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, acc_bits=acc_bits, gate_bits=gate_bits, weight_scaling=weight_scaling)
        return [count_ops(cell, input_size, hidden_size, steps, batch, config) for cell in cells]

    results = run_guarded(go)
    if as_json:  # one cell: one object (the contract); several: a list of them
        typer.echo(json.dumps(results[0] if len(results) == 1 else results))
    elif len(results) == 1:
        _tables().print_counts(results[0])
    else:
        _tables().print_side_by_side(results)


OVERFLOW_HELP = "What a value too wide for a narrowed register does: wrap (two's complement) or saturate."


@app.command(short_help="Run a cell bit-accurately in integers: ranges, widths, overflows, equality with Brevitas.")
def simulate(
    cell: str = typer.Argument(..., metavar="CELL", help=CELL_HELP),
    input_size: int = INPUT,
    hidden_size: int = HIDDEN,
    steps: int = typer.Option(20, "--steps", "-T", help="Time steps simulated.", callback=_positive("steps")),
    batch: int = typer.Option(8, "--batch", "-B", help="Sequences simulated side by side.", callback=_positive("batch")),
    weight_bits: int = WEIGHT_BITS,
    act_bits: int = ACT_BITS,
    gate_bits: Optional[int] = GATE_BITS,
    weight_scaling: str = WEIGHT_SCALING,
    acc_bits: Optional[int] = typer.Option(
        None, "--acc-bits", callback=_bits("acc-bits"),
        help="Accumulator register width (2..32): narrower than the sums provably need, values "
             "wrap or saturate and the overflows are reported; default: the proven width (no overflow)."),
    state_bits: Optional[int] = typer.Option(
        None, "--state-bits", callback=_bits("state-bits"),
        help="Narrow the stored state (same grid, fewer bits) and report the overflows."),
    overflow: str = typer.Option("wrap", "--overflow", help=OVERFLOW_HELP),
    rounding_bits: Optional[int] = typer.Option(
        None, "--rounding-bits", min=1, max=16,
        help="Round every table input wider than this to its most significant bits first, as "
             "`estimate --target tfhe --bounds observed --rounding-bits` does (concrete-python's "
             "round_bit_pattern), and report the output error against the unrounded cell."),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights and inputs.", callback=_seed),
    semantics: str = typer.Option(
        "brevitas", "--semantics",
        help="Fixed-point semantics: brevitas (the default: the built-in Brevitas cell, rounding half to even and "
             "saturating as Brevitas does) or hls4ml (torch's nn.LSTM / nn.GRU as hls4ml builds them: ap_fixed "
             "registers that truncate and wrap, products cast to the accumulator, 1,024-entry tables; lstm and gru "
             "only; checked by `gatesim validate hls4ml`)."),
    precision: str = typer.Option("ap_fixed<16,6>", "--precision",
                                  help="hls4ml: the ap_fixed type of every register but the tables."),
    check_brevitas: bool = typer.Option(
        False, "--check-brevitas",
        help="Also run the same module through Brevitas on the same inputs and compare every "
             "output element (fills bit_exact, mismatches, elements_compared)."),
    as_json: bool = JSON,
):
    """Run a cell bit-accurately in integers over a random sequence: ranges and widths per node,
    overflows of narrowed registers, and (with --check-brevitas) equality with Brevitas."""
    from gatesim.cells import CellConfig
    from gatesim.pipeline import simulate_cell

    if overflow not in ("wrap", "saturate"):
        fail(f"--overflow={overflow!r}: allowed values are wrap, saturate")
    if semantics not in ("brevitas", "hls4ml"):
        fail(f"--semantics={semantics!r}: allowed values are brevitas, hls4ml")
    if semantics == "hls4ml":
        brevitas_only = {"--acc-bits": acc_bits, "--state-bits": state_bits, "--rounding-bits": rounding_bits,
                         "--check-brevitas": check_brevitas, "--gate-bits": gate_bits,
                         "--weight-scaling": weight_scaling != "per_tensor"}
        given = [flag for flag, value in brevitas_only.items() if value]
        if given:
            fail(f"{given[0]} applies to --semantics brevitas; under hls4ml every register has --precision's type")
        from gatesim.pipeline import simulate_hls4ml_cell

        result = run_guarded(lambda: simulate_hls4ml_cell(cell, input_size, hidden_size, steps, batch, seed, precision),
                             brevitas=False)
        typer.echo(json.dumps(result)) if as_json else _tables().print_hls4ml_simulation(result)
        return

    def go():
        config = CellConfig(weight_bits=weight_bits, act_bits=act_bits, gate_bits=gate_bits, acc_bits=acc_bits,
                            weight_scaling=weight_scaling)
        return simulate_cell(cell, input_size, hidden_size, steps, batch, config, seed, state_bits=state_bits,
                             overflow=overflow, check_brevitas=check_brevitas, rounding_bits=rounding_bits)

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _tables().print_simulation(result)


# ----------------------------------------------------------------------------- cost models

TARGET_HELP = " | ".join(TARGETS)


def default_profile(target: str) -> Path:
    """Where `gatesim calibrate TARGET` writes this host's profile by default: the user's
    configuration folder (never the working tree or the installed package)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "gatesim" / "profiles" / f"{target}-{platform.node() or 'host'}.json"


def default_train_dir() -> Path:
    """Where `gatesim train` keeps runs by default: the user's cache folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gatesim" / "train"


def with_target_options(command):
    """Add one option per target parameter the target records declare to `command`'s
    signature (typer reads it); their values reach the command in **options."""
    signature = inspect.signature(command)
    fixed = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    owners: dict[str, list] = {}
    for target in TARGETS.values():
        for option in target.options:
            owners.setdefault(option.name, []).append((target.name, option))
    extra = []
    for name, declared in owners.items():
        option = declared[0][1]
        helps = dict.fromkeys(o.help for _, o in declared)
        text = "; ".join(f"{', '.join(t for t, o in declared if o.help == h)}: {h}" for h in helps) + "."
        is_flag = option.type is bool
        extra.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=bool if is_flag else Optional[option.type],
            default=typer.Option(False if is_flag else None, option.flag, help=text)))
    command.__signature__ = signature.replace(parameters=fixed + extra)
    return command


@app.command(short_help="Energy, latency and resources on a target, with the add-gated / multiply-gated ratio.")
@with_target_options
def estimate(
    cell: str = typer.Argument(..., metavar="CELL", help=CELL_HELP),
    target: str = typer.Option("cpu", "--target", "-t", help=TARGET_HELP),
    input_size: int = INPUT,
    hidden_size: int = HIDDEN,
    steps: int = typer.Option(1, "--steps", "-T", help="Time steps per sequence (figures are for all of them).",
                              callback=_positive("steps")),
    batch: int = typer.Option(1, "--batch", "-B", help="Batch rows per step.", callback=_positive("batch")),
    weight_bits: Optional[int] = WEIGHT_BITS,
    act_bits: Optional[int] = ACT_BITS,
    gate_bits: Optional[int] = GATE_BITS,
    acc_bits: Optional[int] = typer.Option(None, "--acc-bits", callback=_bits("acc-bits"),
                                           help="Accumulator register width (2..32); default: what the sums "
                                                "provably need (hls4ml's default accum_t is the model precision)."),
    weight_scaling: str = WEIGHT_SCALING,
    unquantized: bool = FLOAT,
    as_json: bool = JSON,
    **options,
):
    """Energy, latency and resources of a cell on a target, with the add-gated / multiply-gated
    ratio for the same sizes and bits. Every constant comes from the target's cost file
    (gatesim/costs/data/TARGET.yaml), each with its source."""
    from gatesim.cells import CellConfig
    from gatesim.pipeline import estimate_cell

    if target not in TARGETS:
        fail(f"--target={target!r}: allowed values are {', '.join(TARGETS)}")
    own = {o.name for o in TARGETS[target].options}
    given = {k: v for k, v in options.items() if v is not None and v is not False}  # (0 is a value)
    for name in [k for k in given if k not in own]:
        users = [t for t, r in TARGETS.items() if name in {o.name for o in r.options}]
        fail(f"--{name.replace('_', '-')} applies to --target {' or '.join(users)}, not {target}")
    params = {k: v for k, v in given.items() if k in own}
    note = None
    if "profile" in own and "profile" not in params and TARGETS[target].calibrate:
        params["profile"], note = _host_profile(target)
        if params["profile"] is None:
            del params["profile"]

    def go():
        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, gate_bits=gate_bits, acc_bits=acc_bits, weight_scaling=weight_scaling)
        return estimate_cell(cell, input_size, hidden_size, target, batch, config, steps=steps, **params)

    result = run_guarded(go)
    spot = _quick_spot_check(target, result.get("profile"))
    if spot is not None:
        result["spot_check"] = spot
        if not spot["agrees"]:
            note = ((note + "\n") if note else "") + (
                f"warning: this host disagrees with the profile: {spot['what']} predicted/measured {spot['ratio']:.2f} "
                f"(outside 1/{spot['tolerance']:.2f}..{spot['tolerance']:.2f}"
                + (f"; measured on another CPU, {spot['other_cpu']}" if "other_cpu" in spot else "")
                + f"); `gatesim calibrate {target}` measures this host")
    if note:
        result["profile_note"] = note
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        _tables().print_estimate(result)


def _host_profile(target: str) -> tuple[Optional[Path], str]:
    """This host's profile for `target` when --profile is not given (gatesim.calibrate.match)."""
    from gatesim.calibrate.match import host_profile
    from gatesim.costs.config import PROFILES_DIR

    return host_profile(target, default_profile(target), sorted(PROFILES_DIR.glob(f"{target}-*.json")))


def _quick_spot_check(target: str, profile: Optional[str]) -> Optional[dict]:
    """The target's spot check of `profile` where it takes under a second (cpu), else None."""
    record = TARGETS[target]
    if profile is None or not record.calibrate:
        return None
    calibrator = importlib.import_module(record.calibrate)
    if not getattr(calibrator, "QUICK_SPOT_CHECK", False):
        return None
    from gatesim.calibrate.match import spot_check

    return run_guarded(lambda: spot_check(record.calibrate, Path(profile)))


def _with_entry(kind: str) -> list[str]:
    return [name for name, t in TARGETS.items() if getattr(t, kind)]


@app.command(short_help="Measure this host for a cost model (cpu, ckks, tfhe) and write a profile.")
def calibrate(
    target: str = typer.Argument(..., metavar="TARGET", help=" | ".join(_with_entry("calibrate"))),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Profile file to write (default: "
                                       "~/.config/gatesim/profiles/TARGET-<host>.json)."),
    max_bits: Optional[int] = typer.Option(None, "--max-bits", help="tfhe: widest PBS precision to measure "
                                           "(1..8, default 8).", min=1, max=8),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="cpu: passes over every micro-benchmark, one "
                                         "after the other; each figure is the median of its passes, so that "
                                         "a slow stretch of a shared machine spoils one pass, not the profile "
                                         "(default 3).", min=1),
):
    """Measure this host for a cost model and write a profile that --profile applies
    (cpu: torch micro-benchmarks in three passes, about a minute and a half; ckks: TenSEAL ops at
    N = 8192..32768, about a minute; tfhe: concrete-python PBS per precision and the
    parameters its optimizer picks per precision and noise, about 3.5 minutes)."""
    allowed = _with_entry("calibrate")
    if target not in allowed:
        fail(f"calibrate: unknown target {target!r}; allowed: {', '.join(allowed)}")
    record = TARGETS[target]
    options = {"max_bits": max_bits, "rounds": rounds}
    for name, value in options.items():
        if value is not None and name not in record.calibrate_options:
            fail(f"--{name.replace('_', '-')} does not apply to calibrate {target}")
    from rich.progress import Progress

    calibrator = importlib.import_module(record.calibrate)
    path = out or default_profile(target)
    with Progress(transient=True) as bar:
        passes = rounds or getattr(calibrator, "ROUNDS", 1)
        task = bar.add_task(f"calibrating {target}", total=calibrator.STEPS * passes)
        profile = run_guarded(lambda: calibrator.measure(lambda: bar.advance(task),
                                                         **{k: v for k, v in options.items() if v is not None}))
    from gatesim.files import write_text_atomically

    write_text_atomically(path, json.dumps(profile, indent=1))
    typer.echo(f"wrote {path}", err=True)  # stderr: validate --json calibrates on the way
    warning = getattr(calibrator, "noise_warning", lambda _: None)(profile)
    if warning:
        typer.echo(warning, err=True)


@app.command(short_help="Check a cost model against real execution (PyTorch, ONNX Runtime, TenSEAL, concrete, hls4ml).")
def validate(
    target: str = typer.Argument(..., metavar="TARGET", help=" | ".join([*_with_entry("validate"), "fpga", "hls4ml"])),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Profile to predict with: a path, or the name "
                                           "of a shipped one (default: this host's, calibrated first if missing)."),
    cells: Optional[list[str]] = typer.Option(None, "--cell", help="Cells to run (repeatable; default every "
                                              "built-in cell)."),
    hidden: Optional[list[int]] = typer.Option(None, "--hidden", "-H", help="Hidden sizes (repeatable; default "
                                               "cpu: 8 32 128 512, ckks: 4 8 16, tfhe: 4 8 16)."),
    modes: Optional[list[str]] = typer.Option(None, "--mode", help="cpu: eager, fused, library, int8 and/or "
                                              "library-int8 (repeatable; default all five)."),
    bits: Optional[list[int]] = typer.Option(None, "--bits", help="tfhe: weight and state widths (repeatable; default 3)."),
    rounding_bits: Optional[list[int]] = typer.Option(
        None, "--rounding-bits", help="tfhe: also compile with every table input rounded to this many bits "
                                      "(repeatable; default none)."),
    inhibit: Optional[list[str]] = typer.Option(
        None, "--inhibit", help="tfhe: the add-gated cells' inhibitor, signed and/or unsigned (repeatable; "
                                "default signed)."),
    batch: Optional[list[int]] = typer.Option(None, "--batch", "-B", help="cpu: batch rows per step (repeatable; "
                                              "default 1 and 64).", callback=_positives("batch")),
    input_size: Optional[int] = typer.Option(None, "--input", "-i", help="cpu: input features I (default 32).",
                                             callback=_positive("input")),
    precisions: Optional[list[str]] = typer.Option(
        None, "--precision", help="hls4ml: ap_fixed types given to every register but the tables (repeatable; "
                                  "default ap_fixed<16,6> and ap_fixed<10,4>)."),
    recalibrate: bool = typer.Option(True, "--recalibrate/--no-recalibrate", help="First time one quick operation "
                                     "against the profile (ckks, tfhe); when they disagree by more than 25 %, "
                                     "calibrate this host and predict with that profile (default on)."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Also save the result as FOLDER/validate-TARGET.json; a sweep's report whose "
                                  "results are in FOLDER shows its measured add/mul ratios beside the predicted "
                                  "ones."),
    as_json: bool = JSON,
):
    """Check a cost model against real execution. cpu: the cells run as users run them (eager: a
    plain PyTorch loop; fused: torch.compile; library: torch's nn.GRU/nn.LSTM over a sequence;
    int8: ONNX Runtime on the Brevitas export; library-int8: nn.GRU/nn.LSTM after PyTorch dynamic
    quantization) vs the predicted time per step. tfhe: one step compiled by concrete-python: PBS count vs the compiler's, encrypted run time vs prediction,
    decrypted outputs vs the integer simulator. ckks: one step run with TenSEAL: depth (the
    shortest chain it runs on) and time vs prediction. fpga: the model beside published designs
    (resources, cycles, components). hls4ml: the hls4ml preset against hls4ml's C simulation.
    Predictions are computed exactly as `gatesim estimate` computes them."""
    from gatesim.cells import CELLS
    from gatesim.costs.config import resolve_profile

    if target == "fpga":
        return _validate_fpga(as_json, cell=cells, hidden=hidden, mode=modes, bits=bits, rounding_bits=rounding_bits,
                              inhibit=inhibit, batch=batch, input=input_size, profile=profile, precision=precisions,
                              out=out)
    if target == "hls4ml":
        if out is not None:
            fail("--out saves add/mul ratios for a sweep's report; validate hls4ml has none (use --json)")
        return _validate_hls4ml(cells, hidden, precisions, as_json,
                                modes=modes, bits=bits, rounding_bits=rounding_bits, inhibit=inhibit, batch=batch,
                                input=input_size, profile=profile)
    if precisions:
        fail(f"--precision applies to validate hls4ml, not {target}")
    allowed = _with_entry("validate")
    if target not in allowed:
        fail(f"validate: unknown target {target!r}; allowed: {', '.join(allowed)}")
    from rich.progress import Progress

    check = importlib.import_module(TARGETS[target].validate)
    takes = inspect.signature(check.validate).parameters
    cells = cells or list(CELLS)
    hidden = hidden or list(check.HIDDEN)
    bad = [v for v in cells if v not in CELLS]
    if bad:
        fail(f"--cell={bad[0]!r}: allowed values are {', '.join(CELLS)}")
    if any(h <= 0 for h in hidden):
        fail(f"--hidden={min(hidden)}: must be a whole number >= 1")
    given = {"modes": modes, "bits": bits, "batch": batch, "input_size": input_size,
             "rounding_bits": rounding_bits and [None, *rounding_bits], "inhibit": inhibit}
    flags = {"modes": "--mode", "bits": "--bits", "batch": "--batch", "input_size": "--input",
             "rounding_bits": "--rounding-bits", "inhibit": "--inhibit"}
    for name, value in given.items():
        if value and name not in takes:
            fail(f"{flags[name]} does not apply to validate {target}")
    if modes and any(m not in check.MODES for m in modes):
        fail(f"--mode={[m for m in modes if m not in check.MODES][0]!r}: allowed values are {', '.join(check.MODES)}")
    if inhibit and any(i not in ("signed", "unsigned") for i in inhibit):
        fail(f"--inhibit={[i for i in inhibit if i not in ('signed', 'unsigned')][0]!r}: allowed values are "
             f"signed, unsigned")
    if bits and any(not 2 <= b <= 8 for b in bits):
        fail(f"--bits={[b for b in bits if not 2 <= b <= 8][0]}: tfhe validation takes 2..8")
    extra = {k: v for k, v in given.items() if v}
    # one run per cell, hidden size and mode (cpu) or width (tfhe)
    runs = len(modes or bits or getattr(check, "MODES", None) or getattr(check, "BITS", None) or (None,))
    runs *= len(extra.get("rounding_bits") or (None,)) * len(extra.get("inhibit") or (None,))
    runs *= len(extra.get("batch") or getattr(check, "BATCHES", (None,)))
    runs *= getattr(check, "TICKS_PER_RUN", 1)  # cpu: sizing, then each round of timings
    if profile is not None:
        try:
            path = Path(resolve_profile(profile))
        except ValueError as exc:
            fail(f"--profile={profile}: {exc}")
    else:
        path = default_profile(target)
        if not path.exists():
            typer.echo(f"no profile for this host yet: calibrating first ({path})", err=True)
            calibrate(target, path, None, None)
    spot = None
    if recalibrate and TARGETS[target].calibrate:
        from gatesim.calibrate.match import matched_profile

        def fresh() -> Path:
            where = default_profile(target)
            typer.echo(f"the profile disagrees with this host's spot check: calibrating {where}", err=True)
            calibrate(target, where, None, None)
            return where

        path, spot = run_guarded(lambda: matched_profile(TARGETS[target].calibrate, path, fresh))

    def go():
        with Progress(transient=True) as bar:
            task = bar.add_task("running cells", total=len(cells) * len(hidden) * runs)
            return check.validate(path, cells, hidden, **extra, progress=lambda: bar.advance(task))

    result = run_guarded(go)
    if spot is not None:
        result["spot_check"] = spot
        after = _spot_check_after(target, path)
        result["spot_check_after"] = after
        if not after["agrees"]:
            typer.echo(f"warning: this host's speed changed while validating: {after['what']} predicted/measured "
                       f"{after['ratio']:.2f} after the run, {spot['ratio']:.2f} before (outside 1/{after['tolerance']:.2f}"
                       f"..{after['tolerance']:.2f}): the rows timed meanwhile are not evidence; validate again "
                       "when the machine is steady", err=True)
    if out is not None:
        saved = save_validation(result, target, path, out)
        typer.echo(f"wrote {saved}", err=True)
    if spot is not None:
        if not as_json:
            typer.echo(f"profile {path}: spot check ({spot['what']}) predicted/measured {spot['ratio']:.2f}"
                       + (" after recalibrating" if "recalibrated_because" in spot else ""))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        check.show(result)


def _spot_check_after(target: str, profile: Path) -> dict:
    """The spot check run again once the rows are timed: a machine whose speed moved during
    the run (a shared host's neighbours) disagrees with the profile it agreed with before."""
    from gatesim.calibrate.match import spot_check

    return run_guarded(lambda: spot_check(TARGETS[target].calibrate, profile))


def save_validation(result: dict, target: str, profile: Path, folder: Path) -> Path:
    """FOLDER/validate-TARGET.json: the result with what it was measured on and when."""
    import datetime
    import platform

    from gatesim.calibrate.match import host_cpu
    from gatesim.files import write_text_atomically

    record = {"target": target, "measured_on": datetime.date.today().isoformat(), "host_cpu": host_cpu(),
              "python": platform.python_version(), "profile": str(profile), **result}
    return write_text_atomically(Path(folder) / f"validate-{target}.json", json.dumps(record, indent=1) + "\n")


def _validate_fpga(as_json: bool, **unused) -> None:
    """The FPGA model against published designs (no profile: there is nothing to measure here)."""
    from gatesim.validate import fpga as check

    given = [name for name, value in unused.items() if value]
    if given:
        fail(f"--{given[0].replace('_', '-')} does not apply to validate fpga (it checks the published designs "
             f"in {check.PUBLISHED.name})")
    result = run_guarded(check.validate, brevitas=False)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        check.show(result)


def _validate_hls4ml(cells, hidden, precisions, as_json: bool, **unused) -> None:
    """The hls4ml preset against hls4ml's own C simulation (no cost model, no profile)."""
    from rich.progress import Progress

    from gatesim.validate import hls4ml as check

    given = [name for name, value in unused.items() if value]
    if given:
        fail(f"--{given[0].replace('_', '-')} does not apply to validate hls4ml")
    if hidden and any(h <= 0 for h in hidden):
        fail(f"--hidden={min(hidden)}: must be a whole number >= 1")

    def go():
        cases = len(cells or check.LAYERS) * len(hidden or check.HIDDEN) * len(precisions or check.PRECISIONS)
        with Progress(transient=True, disable=as_json) as bar:
            task = bar.add_task("converting and building with hls4ml", total=cases * len(check.SCALES))
            return check.validate(None, cells, hidden, precisions, progress=lambda: bar.advance(task))

    result = run_guarded(go, brevitas=False)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        check.show(result)


LARGE_SWEEP = 100_000  # points; above this a sweep asks for --yes
SWEEP_POINTS_PER_S_PER_WORKER = 330  # benchmarks/sweep_speed.py on this 2-core machine: 664 points/s, 2 workers


@app.command(short_help="Cost (and train) a design space from a YAML file into a table and an interactive report.")
def sweep(
    config: Path = typer.Argument(..., metavar="CONFIG", help="A sweep file, e.g. configs/sweeps/paper.yaml."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Folder for NAME.parquet, NAME.csv, NAME.html, "
                             "NAME.md and the result cache (NAME is the sweep's name)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Local worker processes (default: one per "
                                          "core; 1 runs in this process).", min=1),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Run on a Dask cluster instead, e.g. "
                                            "tcp://10.0.0.5:8786 (workers need gatesim installed)."),
    no_report: bool = typer.Option(False, "--no-report", help="Write the results table only."),
    yes: bool = typer.Option(False, "--yes", help=f"Run a sweep of more than {LARGE_SWEEP:,} points without asking."),
    as_json: bool = JSON,
):
    """Cost every point of a design space (cells x sizes x bit widths x targets x cost-model
    parameters) and write one row per point and target, then the interactive report.

    CONFIG is YAML: `axes` (cell, input_size, hidden_size, steps, batch, weight_bits, act_bits,
    gate_bits, acc_bits, inhibit, candidate_act, theta) and `targets` (each with lists of its
    parameters); configs/sweeps/paper.yaml is an example.

    Finished points are cached by content in OUT: a re-run computes only what changed, an
    interrupted sweep (Ctrl-C, kill) resumes where it stopped, and sweeps run at the same time
    on one OUT share the work (each point is computed by one of them)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), "eta", TimeRemainingColumn(), transient=True, disable=as_json)
    task = bar.add_task("starting (importing torch and Brevitas)", total=None)

    def check_size():
        from gatesim.sweep import load_sweep
        from gatesim.sweep.points import count_points

        n = count_points(load_sweep(config))
        if n > LARGE_SWEEP and not yes:
            cores = workers or os.cpu_count() or 1
            fail(f"{config}: {n:,} points, at least {n / (SWEEP_POINTS_PER_S_PER_WORKER * cores) / 60:,.0f} min on "
                 f"{cores} worker(s) (more with tfhe's observed bounds or training); pass --yes to run it, or narrow "
                 "an axis / use sampling: {method: random, samples: N}")

    def go():
        from gatesim.api import sweep as run_sweep

        return run_sweep(config, out, workers, scheduler, report=not no_report,
                         progress=lambda done, total, what: bar.update(task, completed=done, total=total,
                                                                       description=what))

    try:
        with bar:  # from the first second: the imports take several
            run_guarded(check_size)
            result = run_guarded(go)
    except KeyboardInterrupt as exc:
        from gatesim.sweep import Interrupted  # (imported late: the bar shows while torch loads)

        if isinstance(exc, Interrupted):
            typer.echo(f"\n{exc}", err=True)
            raise typer.Exit(130)
        typer.echo(f"\ninterrupted while writing the results: every computed point is saved in {out}; run the same "
                   "command again to finish", err=True)
        raise typer.Exit(130)
    summary = {"points": result.points, "computed": result.computed, "cached": result.cached,
               "feasible": int(result.table["feasible"].sum()), "files": {k: str(v) for k, v in result.files.items()},
               "seconds": result.seconds}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    _tables().print_sweep(result, summary)


@app.command(short_help="Rewrite the HTML report and markdown summary of a sweep's results file.")
def report(
    results: Path = typer.Argument(..., metavar="RESULTS", help="A results table from `gatesim sweep` "
                                   "(NAME.parquet or NAME.csv)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for NAME.html and NAME.md "
                                       "(default: beside RESULTS)."),
    title: Optional[str] = typer.Option(None, "--title", help="Page and summary title (default: NAME)."),
    as_json: bool = JSON,
):
    """Write the interactive HTML report (Pareto fronts, add/mul ratios vs hidden size, op-kind
    breakdown, bit-width heatmaps, overflow markers; opens offline) and the markdown summary."""
    from gatesim.report import report as write

    files = run_guarded(lambda: write(results, out, title), brevitas=False)
    if as_json:
        typer.echo(json.dumps({k: str(v) for k, v in files.items()}))
        return
    for kind, path in files.items():
        typer.echo(f"  {kind:9s} {path}")


@app.command(short_help="Quantization-aware training of a cell on a sequence task, scored by the integer simulator.")
def train(
    cell: str = typer.Argument(..., metavar="CELL", help=CELL_HELP),
    task: str = typer.Option("adding", "--task", help="adding (sum of two marked values; MSE) or digits "
                             "(scikit-learn's 8x8 digits, pixel by pixel; accuracy)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", "-T", help="Sequence length (adding: 2..10000, "
                                          "default 100; digits: 64)."),
    hidden_size: int = typer.Option(32, "--hidden", "-H", help="Hidden units H.", callback=_positive("hidden")),
    weight_bits: Optional[int] = WEIGHT_BITS,
    act_bits: Optional[int] = ACT_BITS,
    gate_bits: Optional[int] = GATE_BITS,
    unquantized: bool = FLOAT,
    epochs: int = typer.Option(10, "--epochs", "-e", help="Passes over the training set.", callback=_positive("epochs")),
    seed: int = typer.Option(0, "--seed", help="Seeds the weights, the data and the batch order.", callback=_seed),
    batch_size: int = typer.Option(64, "--batch-size", help="Sequences per gradient step.",
                                   callback=_positive("batch-size")),
    lr: float = typer.Option(2e-3, "--lr", help="Adam learning rate."),
    train_size: Optional[int] = typer.Option(None, "--train-size", help="Training sequences (default: adding "
                                             "10,000; digits all 1,437, the most it has).",
                                             callback=_positive("train-size")),
    test_size: Optional[int] = typer.Option(None, "--test-size", help="Test sequences (default: adding 1,000; "
                                            "digits all 360, the most it has).", callback=_positive("test-size")),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the checkpoint (.pt) and its results "
                                       "(.json) (default: ~/.cache/gatesim/train, never the working tree)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train even if --out holds a run with these settings."),
    device: str = typer.Option("cpu", "--device", help="cpu (default), cuda, or auto (cuda when torch sees a GPU); "
                               "a GPU run is cached apart from CPU runs, and is scored on the CPU."),
    qat: str = typer.Option("fast", "--qat", help="fast (default: Brevitas' forward pass bit for bit, each pass's "
                            "scales and quantized weights computed once: 6-9x faster) or brevitas (its layers as "
                            "they are; a run of its own in the cache)."),
    as_json: bool = JSON,
):
    """Quantization-aware training (Brevitas; CPU unless --device) of CELL plus a quantized readout on a
    sequence task, then the test metric twice: from Brevitas' forward pass and from the
    bit-accurate integer simulator. The two agree exactly (agree: true) when the simulator is
    right. A run with the same settings already in --out is reused, not retrained; one that was
    interrupted (Ctrl-C, kill) goes on from its last finished epoch, to the same result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from gatesim.cells import CellConfig
    from gatesim.train.run import train_cached

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), "eta", TimeRemainingColumn(), transient=True, disable=as_json)
    job = bar.add_task(f"training {cell} on {task}", total=None)

    out = out or default_train_dir()
    from gatesim.errors import GatesimError
    from gatesim.train.tasks import TASKS

    if task in TASKS:  # sizes the task cannot give, named as the flags that asked (an unknown task: below)
        try:
            TASKS[task].sizes(train_size, test_size)
        except GatesimError as exc:
            fail("--" + str(exc).replace("_size=", "-size=", 1))
    from gatesim.train.run import resolve_device

    try:
        resolve_device(device)
    except GatesimError as exc:
        fail("--" + str(exc))
    from gatesim.train.run import QAT_PATHS

    if qat not in QAT_PATHS:
        fail(f"--qat={qat!r}: allowed values are {', '.join(QAT_PATHS)}")

    def go():
        import torch

        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, gate_bits=gate_bits)
        # one thread, as a sweep's workers train: runs cached under one key must not differ by
        # how a reduction was split, and these small products run no faster on more threads
        torch.set_num_threads(1)
        with bar:
            return train_cached(out, retrain, lambda done, total: bar.update(job, completed=done, total=total),
                                cell=cell, task=task, hidden_size=hidden_size, seq_len=seq_len, config=config,
                                epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, train_size=train_size,
                                test_size=test_size, device=device, qat=qat)

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _tables().print_training(result)


if __name__ == "__main__":
    sys.exit(app())
