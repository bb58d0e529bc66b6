"""`gatesim count`: JSON contract, readable table, one-line errors with exit code 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_count_json_contract():
    r = run("count", "lstm", "--input", "3", "--hidden", "4", "--steps", "10", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"cell", "input_size", "hidden_size", "steps", "per_step", "per_sequence",
            "per_step_by_bits", "depth"} <= out.keys()
    assert out["per_step"]["mac"] == 4 * 4 * (3 + 4)
    assert out["per_sequence"]["mac"] == 10 * out["per_step"]["mac"]
    assert set(out["depth"]) == {"critical_path", "multiplicative", "nonlinear"}
    assert all({"kind", "bits", "count"} <= row.keys() for row in out["per_step_by_bits"])


def test_count_batch_scales_per_step():
    one = json.loads(run("count", "gru", "-i", "3", "-H", "4", "--json").stdout)
    four = json.loads(run("count", "gru", "-i", "3", "-H", "4", "--batch", "4", "--json").stdout)
    assert four["per_step"]["mac"] == 4 * one["per_step"]["mac"]
    assert four["per_step"]["sigmoid"] == 4 * one["per_step"]["sigmoid"]


def test_count_table_is_readable():
    r = run("count", "add_gru", "-i", "3", "-H", "4", "--weight-bits", "4", "--act-bits", "6")
    assert r.exit_code == 0
    assert "per step by operand width" in r.stdout and "6x4" in r.stdout
    assert "multiplicative 0" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["count", "gru", "-i", "0", "-H", "4"], "--input=0: must be a whole number"),
    (["count", "gru", "-i", "3", "-H", "-2"], "--hidden=-2"),
    (["count", "gru", "-i", "3", "-H", "4", "--steps", "0"], "--steps=0"),
    (["count", "gru", "-i", "3", "-H", "4", "--act-bits", "1"], "--act-bits=1: bit widths must be between 2 and 32"),
    (["count", "gru", "-i", "3", "-H", "4", "--weight-bits", "33"], "--weight-bits=33"),
    (["count", "rnn", "-i", "3", "-H", "4"], "unknown cell 'rnn'; allowed: gru, lstm, add_gru, add_lstm"),
    (["count", "module:tests.user_cells:nothing", "-i", "3", "-H", "4"], "cannot load 'nothing'"),
    (["count", "module:tests.user_cells:uses_exp", "-i", "3", "-H", "4"], "no counting rule"),
    (["count", "module:tests.user_cells:data_dependent", "-i", "3", "-H", "4"], "cannot trace"),
    (["count", "module:tests.user_cells:needs_even_hidden", "-i", "3", "-H", "4"],
     "building it with input_size=3, hidden_size=5 failed: ValueError: hidden_size must be even"),
    (["count", "module:nosuchpkg.mod:f", "-i", "3", "-H", "4"], "cannot load 'f' from 'nosuchpkg.mod'"),
    (["count", "module:justone", "-i", "3", "-H", "4"], "expected module:pkg.mod:factory"),
    (["count", "gru", "-i", "3", "-H", "4", "-B", str(10**30)], "--batch=1" + "0" * 30 + ": must be a whole number from 1"),
    (["simulate", "gru", "-i", "3", "-H", "4", "--seed", "-1"], "--seed=-1: must be a whole number from 0 to 4294967295"),
    (["simulate", "gru", "-i", "3", "-H", "4", "--seed", str(2**70)], f"--seed={2**70}: must be"),
    (["simulate", "gru", "-i", "3", "-H", "4", "-T", str(10**8)], "needs about"),
    (["estimate", "gru", "-i", "3", "-H", "4", "--target", "fpga", "--clock-mhz", "inf"],
     "clock_mhz=inf: Input should be a finite number"),
    (["simulate", "module:tests.user_cells:needs_even_hidden", "-i", "3", "-H", "5"],
     "building it with input_size=3, hidden_size=5 failed: ValueError: hidden_size must be even"),
    (["train", "gru", "--task", "digits", "--train-size", "5000"],
     "--train-size=5,000: the digits task has 1,437 train sequences"),
    (["train", "gru", "--task", "digits", "--test-size", "1000"], "--test-size=1,000: the digits task has 360 test"),
    (["simulate", "gru", "-i", "3", "-H", "4", "--weight-scaling", "per_row"],
     "--weight-scaling='per_row': allowed values are per_tensor, per_channel"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


SWEEP_HEAD = "schema_version: 1\nname: bad\naxes:\n  cell: [gru]\n"


@pytest.mark.parametrize("name, text, args, message", [
    ("dup.yaml", SWEEP_HEAD + "  hidden_size: [8]\n  hidden_size: [16]\ntargets: {cpu: {}}\n", ["sweep"],
     "line 6, column 3: duplicate key 'hidden_size'"),
    ("yes.yaml", SWEEP_HEAD + "  hidden_size: [8]\ntargets: {ckks: {insecure: [\"yes\"]}}\n", ["sweep"],
     "targets.ckks.insecure: 'yes': Input should be a valid boolean"),
    ("big.yaml", SWEEP_HEAD + "  hidden_size: {start: 1, stop: 2000, step: 1}\n  input_size: {start: 1, stop: 60, "
                 "step: 1}\ntargets: {cpu: {}}\n", ["sweep"], "120,000 points, at least"),
    ("dig.yaml", "schema_version: 1\nname: bad\naxes:\n  cell: [gru]\n  hidden_size: [8]\n  steps: [64]\n"
                 "targets: {cpu: {}}\naccuracy: {task: digits, test_size: 1000}\n", ["sweep"],
     "accuracy.test_size=1,000: the digits task has 360 test sequences"),
    ("dup.json", '{"schema_version": 1, "schema_version": 1}', ["estimate", "gru", "-i", "3", "-H", "4", "--profile"],
     "duplicate key 'schema_version'"),
])
def test_bad_file_is_one_line_exit_2(tmp_path, name, text, args, message):
    """A file's mistakes (a key given twice, a string where a boolean belongs) are refused in
    one line naming the file and the place, before any work (nothing is written)."""
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "out"
    r = run(*args, str(path), *(["--out", str(out)] if args == ["sweep"] else []))
    assert r.exit_code == 2, r.output
    assert message in r.stderr and str(path) in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_user_module_by_spec():
    out = json.loads(run("count", "module:tests.user_cells:elman", "-i", "3", "-H", "5", "--json").stdout)
    assert out["per_step"]["mac"] == 5 * (3 + 5)


def test_console_script_and_python_cli_py_both_work():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for cmd in (["gatesim"], [sys.executable, "cli.py"]):
        r = subprocess.run([*cmd, "count", "gru", "-i", "2", "-H", "3", "--json"], cwd=ROOT,
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["per_step"]["mul"] == 9
    r = subprocess.run([sys.executable, "cli.py", "count", "gru", "-i", "0", "-H", "3"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: --input=0")


def test_debug_shows_the_traceback():
    r = run("--debug", "count", "rnn", "-i", "3", "-H", "4")
    assert r.exit_code != 0 and r.exception is not None


def test_several_cells_side_by_side():
    r = run("count", "gru", "add_gru", "-i", "3", "-H", "4", "--json")
    both = json.loads(r.stdout)
    assert [c["cell"] for c in both] == ["gru", "add_gru"]
    assert both[0]["per_step"]["mac"] == both[1]["per_step"]["mac"]
    table = run("count", "gru", "add_gru", "-i", "3", "-H", "4").stdout
    assert "gru" in table and "add_gru" in table and "multiplicative depth/step" in table


def test_help_shows_flags_as_flags():
    """Every command's --help: a flag has no value type beside it (no `--json <bool>`),
    options that take a value keep theirs."""
    from typer.main import get_command

    for name in get_command(app).commands:
        r = run(name, "--help")
        assert r.exit_code == 0, (name, r.output)
        assert "<bool>" not in r.output, name
    assert "<int>" in run("count", "--help").output


def test_command_list_reads_one_short_line_per_command():
    """`gatesim --help` at 80 columns: each command's summary is one sentence of at most two
    lines, not a docstring cut mid-paragraph."""
    from typer.main import get_command

    for name, command in get_command(app).commands.items():
        assert command.short_help and len(command.short_help) <= 110 and "\n" not in command.short_help, name


def test_sweep_shows_progress_before_the_heavy_imports(tmp_path):
    """In a terminal the sweep's progress line is the first thing drawn: it says what the
    first seconds are spent on (importing torch and Brevitas) instead of showing nothing."""
    import pty
    import re
    import select

    config = tmp_path / "tiny.yaml"
    config.write_text("schema_version: 1\nname: tiny\naxes: {cell: [gru], input_size: [2], hidden_size: [2], "
                      "steps: [2], weight_bits: [4], act_bits: [4]}\ntargets: {fpga: {}}\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "cli.py", "sweep", str(config), "--out", str(tmp_path / "out"),
                                  "--workers", "1"])
    seen = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert os.waitstatus_to_exitcode(status) == 0, text
    first = next(line for line in text.replace("\r", "\n").splitlines() if line.strip())
    assert first.startswith("starting (importing torch and Brevitas)"), text
