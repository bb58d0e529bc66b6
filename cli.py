"""gatesim command line: `gatesim COMMAND --help` explains each command."""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

app = typer.Typer(
    help="What a gated recurrent cell really costs, and what add-gating (ReLU + subtraction "
         "instead of sigmoid x state) saves.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
state = {"debug": False}

CELL_HELP = "gru | lstm | add_gru | add_lstm | module:pkg.mod:factory (your own module)"


def _tables():
    """The rich tables module, imported when a command prints (keeps --help fast)."""
    from gatesim import tables

    return tables


def fail(message: str) -> None:
    """One line on stderr naming the bad value and what is allowed; exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def run_guarded(fn):
    """Turn gatesim's input errors into one clear line (full traceback with --debug)."""
    from gatesim.errors import GatesimError

    try:
        return fn()
    except (GatesimError, ValidationError) as exc:
        if state["debug"]:
            raise
        fail(_one_line(exc))


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


def _positive(name: str):
    def check(value: Optional[int]) -> Optional[int]:
        if value is not None and value <= 0:
            fail(f"--{name}={value}: must be a whole number >= 1")
        return value

    return check


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
FLOAT = typer.Option(False, "--float", help="No quantization (float32 cell).")
JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


@app.command()
def count(
    cells: list[str] = typer.Argument(..., metavar="CELL...", help=CELL_HELP + "; several cells print side by side"),
    input_size: int = INPUT,
    hidden_size: int = HIDDEN,
    steps: int = typer.Option(1, "--steps", "-T", help="Time steps per sequence.", callback=_positive("steps")),
    batch: int = typer.Option(1, "--batch", "-B", help="Batch rows per step.", callback=_positive("batch")),
    weight_bits: Optional[int] = WEIGHT_BITS,
    act_bits: Optional[int] = ACT_BITS,
    acc_bits: Optional[int] = typer.Option(None, "--acc-bits", help="Accumulator width (2..32); default: what the sum needs.", callback=_bits("acc-bits")),
    gate_bits: Optional[int] = GATE_BITS,
    unquantized: bool = FLOAT,
    as_json: bool = JSON,
):
    """Count ops per step and per sequence, by kind and operand bit width, with graph depths."""
    from gatesim.cells import CellConfig
    from gatesim.counting import count as count_ops

    def go():
        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, acc_bits=acc_bits, gate_bits=gate_bits)
        return [count_ops(cell, input_size, hidden_size, steps, batch, config) for cell in cells]

    results = run_guarded(go)
    if as_json:  # one cell: one object (the contract); several: a list of them
        typer.echo(json.dumps(results[0] if len(results) == 1 else results))
    elif len(results) == 1:
        _tables().print_counts(results[0])
    else:
        _tables().print_side_by_side(results)


OVERFLOW_HELP = "What a value too wide for a narrowed register does: wrap (two's complement) or saturate."


@app.command()
def simulate(
    cell: str = typer.Argument(..., metavar="CELL", help=CELL_HELP),
    input_size: int = INPUT,
    hidden_size: int = HIDDEN,
    steps: int = typer.Option(20, "--steps", "-T", help="Time steps simulated.", callback=_positive("steps")),
    batch: int = typer.Option(8, "--batch", "-B", help="Sequences simulated side by side.", callback=_positive("batch")),
    weight_bits: int = WEIGHT_BITS,
    act_bits: int = ACT_BITS,
    gate_bits: Optional[int] = GATE_BITS,
    acc_bits: Optional[int] = typer.Option(
        None, "--acc-bits", callback=_bits("acc-bits"),
        help="Narrow every accumulator (mac sums, sums of them) to this many bits and report the "
             "overflows; default: the width the sums provably need (no overflow)."),
    state_bits: Optional[int] = typer.Option(
        None, "--state-bits", callback=_bits("state-bits"),
        help="Narrow the stored state (same grid, fewer bits) and report the overflows."),
    overflow: str = typer.Option("wrap", "--overflow", help=OVERFLOW_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights and inputs."),
    check_brevitas: bool = typer.Option(
        False, "--check-brevitas",
        help="Also run the same module through Brevitas on the same inputs and compare every "
             "output element (fills bit_exact, mismatches, elements_compared)."),
    as_json: bool = JSON,
):
    """Run a cell bit-accurately in integers over a random sequence: ranges and widths per node,
    overflows of narrowed registers, and (with --check-brevitas) equality with Brevitas."""
    from gatesim.cells import CellConfig
    from gatesim.simulate import simulate_cell

    if overflow not in ("wrap", "saturate"):
        fail(f"--overflow={overflow!r}: allowed values are wrap, saturate")

    def go():
        config = CellConfig(weight_bits=weight_bits, act_bits=act_bits, gate_bits=gate_bits)
        return simulate_cell(cell, input_size, hidden_size, steps, batch, config, seed,
                             acc_bits=acc_bits, state_bits=state_bits, overflow=overflow,
                             check_brevitas=check_brevitas)

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _tables().print_simulation(result)


# ----------------------------------------------------------------------------- cost models

TARGET_HELP = "cpu | fpga | ckks | tfhe"
CALIBRATION_DIR = Path(__file__).resolve().parent / "configs" / "calibration"


def default_profile(target: str) -> Path:
    """Where `gatesim calibrate TARGET` writes this host's profile by default."""
    return CALIBRATION_DIR / f"{target}-{platform.node() or 'host'}.json"


@app.command()
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
    unquantized: bool = FLOAT,
    mode: Optional[str] = typer.Option(None, "--mode", help="cpu: eager (a PyTorch loop, default) or fused "
                                                            "(a compiled kernel)."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="cpu, ckks, tfhe: a profile from `gatesim calibrate TARGET`."),
    reuse_factor: Optional[int] = typer.Option(None, "--reuse-factor", help="fpga: uses of each hardware unit per step (default 1)."),
    recurrent_reuse_factor: Optional[int] = typer.Option(
        None, "--recurrent-reuse-factor", help="fpga: reuse factor of the recurrent (state) matrix work; default --reuse-factor."),
    clock_mhz: Optional[float] = typer.Option(None, "--clock-mhz", help="fpga: clock (default from configs/costs/fpga.yaml)."),
    part: Optional[str] = typer.Option(None, "--part", help="fpga: part whose totals give utilization (xcvu9p, xcku115)."),
    poly_degree: Optional[int] = typer.Option(None, "--poly-degree", help="ckks: degree of the sigmoid/tanh/ReLU polynomials (default 3)."),
    poly_modulus_degree: Optional[int] = typer.Option(
        None, "--poly-modulus-degree", help="ckks: ring size N (default: the smallest holding the depth at 128-bit security)."),
    insecure: bool = typer.Option(False, "--insecure", help="ckks: accept an N below 128-bit security for its chain."),
    matvec: Optional[str] = typer.Option(None, "--matvec", help="ckks: matrix-vector method, diagonal (default, as "
                                         "TenSEAL does it) or bsgs (baby-step giant-step)."),
    as_json: bool = JSON,
):
    """Energy, latency and resources of a cell on a target, with the add-gated / multiply-gated
    ratio for the same sizes and bits. Every constant comes from configs/costs/TARGET.yaml."""
    from gatesim.cells import CellConfig
    from gatesim.costs.cells import estimate_cell

    per_target = {"cpu": {"mode": mode, "profile": profile},
                  "fpga": {"reuse_factor": reuse_factor, "recurrent_reuse_factor": recurrent_reuse_factor,
                           "clock_mhz": clock_mhz, "part": part},
                  "ckks": {"profile": profile, "poly_degree": poly_degree, "poly_modulus_degree": poly_modulus_degree,
                           "insecure": insecure or None, "matvec": matvec},
                  "tfhe": {"profile": profile}}
    if target not in per_target:
        fail(f"--target={target!r}: allowed values are {', '.join(per_target)}")
    for other, options in per_target.items():
        given = [name for name, value in options.items() if value is not None]
        shared = set(per_target[target])
        given = [name for name in given if name not in shared]
        if other != target and given:
            fail(f"--{given[0].replace('_', '-')} applies to --target {other}, not {target}")
    params = {k: v for k, v in per_target[target].items() if v is not None}

    def go():
        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, gate_bits=gate_bits)
        return estimate_cell(cell, input_size, hidden_size, target, batch, config, steps=steps, **params)

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        _tables().print_estimate(result)


@app.command()
def calibrate(
    target: str = typer.Argument(..., metavar="TARGET", help="cpu"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Profile file to write (default: "
                                       "configs/calibration/TARGET-<host>.json)."),
    max_bits: int = typer.Option(8, "--max-bits", help="tfhe: widest PBS precision to measure (1..8).",
                                 min=1, max=8),
):
    """Measure this host for a cost model and write a profile that --profile applies
    (cpu: torch micro-benchmarks, about 10 s; ckks: TenSEAL ops at N = 8192..32768, about a
    minute; tfhe: concrete-python PBS per precision, about 40 s)."""
    import importlib

    if target not in CALIBRATORS:
        fail(f"calibrate: unknown target {target!r}; allowed: {', '.join(CALIBRATORS)}")
    from rich.progress import Progress

    calibrator = importlib.import_module(CALIBRATORS[target])
    path = out or default_profile(target)
    options = {"max_bits": max_bits} if target == "tfhe" else {}
    with Progress(transient=True) as bar:
        task = bar.add_task(f"calibrating {target}", total=calibrator.STEPS)
        profile = calibrator.measure(lambda: bar.advance(task), **options)
    from gatesim.files import write_text_atomically

    write_text_atomically(path, json.dumps(profile, indent=1))
    typer.echo(f"wrote {path}")


CALIBRATORS = {"cpu": "gatesim.calibrate.cpu", "ckks": "gatesim.calibrate.ckks", "tfhe": "gatesim.calibrate.tfhe"}


@app.command()
def validate(
    target: str = typer.Argument(..., metavar="TARGET", help="cpu | ckks | tfhe"),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Profile to predict with (default: this "
                                           "host's, calibrated first if missing)."),
    cells: Optional[list[str]] = typer.Option(None, "--cell", help="Cells to run (repeatable; default all four)."),
    hidden: Optional[list[int]] = typer.Option(None, "--hidden", "-H", help="Hidden sizes (repeatable; default "
                                               "cpu: 8 32 128 512, ckks: 4 8 16, tfhe: 2 4 8)."),
    modes: Optional[list[str]] = typer.Option(None, "--mode", help="cpu: eager and/or fused (repeatable; default both)."),
    bits: Optional[list[int]] = typer.Option(None, "--bits", help="tfhe: weight and state widths (repeatable; default 3)."),
    batch: int = typer.Option(64, "--batch", "-B", help="cpu: batch rows per step.", callback=_positive("batch")),
    input_size: int = typer.Option(32, "--input", "-i", help="cpu: input features I.", callback=_positive("input")),
    as_json: bool = JSON,
):
    """Check a cost model against real execution. cpu: the cells as real PyTorch code (eager: a
    plain PyTorch loop; fused: torch.compile) vs the predicted time per step. tfhe: one step
    compiled by concrete-python: PBS count vs the compiler's, encrypted run time vs prediction,
    decrypted outputs vs the integer simulator. ckks: one step run with TenSEAL: depth (the
    shortest chain it runs on) and time vs prediction."""
    import importlib

    checks = {"cpu": "gatesim.validate.cpu", "ckks": "gatesim.validate.ckks", "tfhe": "gatesim.validate.tfhe"}
    if target not in checks:
        fail(f"validate: unknown target {target!r}; allowed: {', '.join(checks)}")
    from rich.progress import Progress

    check = importlib.import_module(checks[target])
    cells = cells or list(check.CELLS)
    hidden = hidden or list(check.HIDDEN)
    bad = [v for v in cells if v not in check.CELLS]
    if bad:
        fail(f"--cell={bad[0]!r}: allowed values are {', '.join(check.CELLS)}")
    if any(h <= 0 for h in hidden):
        fail(f"--hidden={min(hidden)}: must be a whole number >= 1")
    if target == "cpu":
        modes = modes or list(check.MODES)
        bad = [v for v in modes if v not in check.MODES]
        if bad:
            fail(f"--mode={bad[0]!r}: allowed values are {', '.join(check.MODES)}")
        runs, args = len(modes), (modes, input_size, batch)
    elif target == "tfhe":
        bits = bits or list(check.BITS)
        if any(not 2 <= b <= 8 for b in bits):
            fail(f"--bits={[b for b in bits if not 2 <= b <= 8][0]}: tfhe validation takes 2..8")
        runs, args = len(bits), (bits,)
    else:
        runs, args = 1, ()
    path = profile or default_profile(target)
    if profile is None and not path.exists():
        typer.echo(f"no profile for this host yet: calibrating first ({path})", err=True)
        calibrate(target, path, 8)

    def go():
        with Progress(transient=True) as bar:
            task = bar.add_task("running cells", total=len(cells) * len(hidden) * runs)
            return check.validate(path, cells, hidden, *args, progress=lambda: bar.advance(task))

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result))
    elif target == "cpu":
        _tables().print_validation(result)
    elif target == "tfhe":
        _tables().print_tfhe_validation(result)
    else:
        _tables().print_ckks_validation(result)


@app.command()
def sweep(
    config: Path = typer.Argument(..., metavar="CONFIG", help="A sweep file, e.g. configs/sweeps/paper.yaml."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Folder for NAME.parquet, NAME.csv, NAME.html, "
                             "NAME.md and the result cache (NAME is the sweep's name)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Local worker processes (default: one per "
                                          "core; 1 runs in this process).", min=1),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Run on a Dask cluster instead, e.g. "
                                            "tcp://10.0.0.5:8786 (workers need gatesim installed)."),
    no_report: bool = typer.Option(False, "--no-report", help="Write the results table only."),
    as_json: bool = JSON,
):
    """Cost every point of a design space (cells x sizes x bit widths x targets x cost-model
    parameters) and write one row per point and target, then the interactive report.

    CONFIG is YAML: `axes` (cell, input_size, hidden_size, steps, batch, weight_bits, act_bits,
    gate_bits, acc_bits, inhibit, candidate_act, theta) and `targets` (cpu, fpga, ckks, tfhe,
    each with lists of its parameters); configs/sweeps/paper.yaml is an example.

    Finished points are cached by content in OUT: a re-run computes only what changed, and an
    interrupted sweep (Ctrl-C, kill) resumes where it stopped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gatesim.sweep import Interrupted
    from gatesim.sweep import sweep as run_sweep

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), "eta", TimeRemainingColumn(), transient=True, disable=as_json)
    task = bar.add_task("sweeping", total=None)

    def go():
        with bar:
            return run_sweep(config, out, workers, scheduler, report=not no_report,
                             progress=lambda done, total, what: bar.update(task, completed=done, total=total,
                                                                           description=what))

    try:
        result = run_guarded(go)
    except Interrupted as exc:
        typer.echo(f"\n{exc}", err=True)
        raise typer.Exit(130)
    summary = {"points": result.points, "computed": result.computed, "cached": result.cached,
               "feasible": int(result.table["feasible"].sum()), "files": {k: str(v) for k, v in result.files.items()},
               "seconds": result.seconds}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    _tables().print_sweep(result, summary)


@app.command()
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

    files = run_guarded(lambda: write(results, out, title))
    if as_json:
        typer.echo(json.dumps({k: str(v) for k, v in files.items()}))
        return
    for kind, path in files.items():
        typer.echo(f"  {kind:9s} {path}")



@app.command()
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
    seed: int = typer.Option(0, "--seed", help="Seeds the weights, the data and the batch order."),
    batch_size: int = typer.Option(64, "--batch-size", help="Sequences per gradient step.",
                                   callback=_positive("batch-size")),
    lr: float = typer.Option(2e-3, "--lr", help="Adam learning rate."),
    train_size: int = typer.Option(10_000, "--train-size", help="Training sequences (digits: at most 1,437).",
                                   callback=_positive("train-size")),
    test_size: int = typer.Option(1_000, "--test-size", help="Test sequences (digits: at most 360).",
                                  callback=_positive("test-size")),
    out: Path = typer.Option(Path("reports/train"), "--out", "-o", help="Folder for the checkpoint (.pt) and its "
                             "results (.json)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train even if --out holds a run with these settings."),
    as_json: bool = JSON,
):
    """Quantization-aware training (Brevitas, CPU) of CELL plus a quantized readout on a
    sequence task, then the test metric twice: from Brevitas' forward pass and from the
    bit-accurate integer simulator. The two agree exactly (agree: true) when the simulator is
    right. A run with the same settings already in --out is reused, not retrained."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from gatesim.cells import CellConfig
    from gatesim.train.run import train_cached

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), "eta", TimeRemainingColumn(), transient=True, disable=as_json)
    job = bar.add_task(f"training {cell} on {task}", total=None)

    def go():
        bits = dict(weight_bits=None, act_bits=None) if unquantized else dict(weight_bits=weight_bits, act_bits=act_bits)
        config = CellConfig(**bits, gate_bits=gate_bits)
        with bar:
            return train_cached(out, retrain, lambda done, total: bar.update(job, completed=done, total=total),
                                cell=cell, task=task, hidden_size=hidden_size, seq_len=seq_len, config=config,
                                epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, train_size=train_size,
                                test_size=test_size)

    result = run_guarded(go)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _tables().print_training(result)

if __name__ == "__main__":
    sys.exit(app())
