"""Sweeps: config validation, design points, the results table, the content-addressed cache,
resuming after an interrupt, and the Dask backend on a loopback LocalCluster."""
from __future__ import annotations

import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import gatesim
from gatesim.cells import CellConfig
from gatesim.costs import estimate
from gatesim.costs.config import PROFILES_DIR
from gatesim.pipeline import estimate_cell
from gatesim.errors import GatesimError
from gatesim import sweep
from gatesim.results import read_results
from gatesim.sweep import load_sweep, parse
from gatesim.sweep.points import points

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "schema_version": 1, "name": "small",
    "axes": {"cell": ["gru", "add_gru", "lstm", "add_lstm"], "input_size": [4], "hidden_size": [4, 8],
             "steps": [10], "weight_bits": [4], "act_bits": [3, 4]},
    "targets": {"cpu": {"mode": ["eager", "fused"]}, "fpga": {"reuse_factor": [1, 2]}, "ckks": {}, "tfhe": {}},
}


def config(**changes) -> dict:
    data = copy.deepcopy(SMALL)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[key]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return data


def write_config(tmp_path: Path, data: dict, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          timeout=600, **kw)


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("changes, expected", [
    ({"axes__colour": ["red"]}, "axes.colour: unknown field; allowed:"),
    ({"axes__hidden_size": []}, "axes.hidden_size: empty; give at least one value"),
    ({"axes__hidden_size": [0]}, "axes.hidden_size: 0 is not allowed"),
    ({"axes__cell": ["gruu"]}, "axes.cell: 'gruu' is not allowed; allowed: gru, lstm, add_gru, add_lstm"),
    ({"axes__weight_bits": [40]}, "axes.weight_bits: 40 is not allowed; widths are 2..32"),
    ({"axes__inhibit": ["both"]}, "axes.inhibit"),
    ({"axes__hidden_size": {"start": 8, "stop": 4, "step": 1}}, "axes.hidden_size: stop 4 is below start 8"),
    ({"axes__cell": None}, "axes.cell: required field missing"),
    ({"targets__gpu": {}}, "targets.gpu: unknown target; allowed: cpu, fpga, ckks, tfhe"),
    ({"targets__cpu__clock": [1]}, "targets.cpu.clock: unknown parameter; allowed: mode, profile"),
    ({"targets__cpu__mode": ["turbo"]}, "targets.cpu.mode: 'turbo'"),
    ({"targets__cpu__mode": []}, "targets.cpu.mode: give a non-empty list of values"),
    ({"targets__fpga__steps": [3]}, "targets.fpga.steps: unknown parameter"),
    ({"targets__fpga__part": ["xc7a35t"]}, "targets.fpga.part: 'xc7a35t'; allowed: xcvu9p, xcku115"),
    ({"targets__cpu__profile": ["nope.json"]}, "targets.cpu.profile:"),
    ({"axes__act_bits": [24]}, "axes.act_bits: 24 with target tfhe; the TFHE backend takes tables of at most 16"),
    ({"axes__weight_bits": [None]}, "axes.weight_bits: null (float) with target tfhe"),
    ({"sampling": {"method": "random"}}, "sampling.samples: required with method random"),
    ({"sampling": {"method": "sobol"}}, "sampling.method"),
    ({"schema_version": 7}, "schema_version 7"),
    ({"accuracy": {"task": "copy"}}, "accuracy.task: Input should be 'adding' or 'digits'"),
    ({"accuracy": {"task": "adding", "epoch": 3}}, "accuracy.epoch: unknown field; allowed: task, seeds, epochs"),
    ({"accuracy": {"task": "adding"}, "axes__input_size": [4]},
     "axes.input_size: [4] with accuracy task adding, which feeds 2 feature(s) per step; use [2]"),
    ({"accuracy": {"task": "digits"}, "axes__input_size": None}, "axes.steps: 10 with accuracy task digits"),
])
def test_bad_config_names_file_field_and_allowed(tmp_path, changes, expected):
    path = write_config(tmp_path, config(**changes))
    with pytest.raises(GatesimError) as err:
        load_sweep(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_bad_config_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    path = write_config(tmp_path, config(axes__act_bits=[24]))
    r = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "axes.act_bits" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_missing_and_broken_config_files(tmp_path):
    r = run_cli("sweep", str(tmp_path / "none.yaml"))
    assert r.returncode == 2 and "none.yaml: no such file" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes: [unclosed\n")
    r = run_cli("sweep", str(bad))
    assert r.returncode == 2 and "bad.yaml: not valid YAML" in r.stderr


def test_committed_sweeps_are_valid():
    for path in sorted((ROOT / "configs" / "sweeps").glob("*.yaml")):
        assert points(load_sweep(path)), path


# ----------------------------------------------------------------------------- points


def test_grid_points_are_the_product_with_equivalent_points_merged():
    data = config(axes__inhibit=["signed", "unsigned"])
    pts = points(parse(data))
    # per target-parameter combination: 2 H x 2 act bits x (gru, lstm once; add cells twice)
    designs = 2 * 2 * (1 + 1 + 2 + 2)
    ckks_designs = 2 * (1 + 1 + 2 + 2)  # bit widths mean nothing to CKKS
    assert len(pts) == designs * (2 + 2 + 1) + ckks_designs
    assert len({repr(p) for p in pts}) == len(pts)
    assert all(p["inhibit"] is None for p in pts if p["cell"] in ("gru", "lstm"))
    assert all(p["act_bits"] is None for p in pts if p["target"] == "ckks")


def test_random_sampling_is_seeded_and_keeps_every_cell_of_a_draw():
    data = config(axes__hidden_size={"start": 4, "stop": 64, "step": 4}, sampling={"method": "random", "samples": 5,
                                                                                     "seed": 3})
    a, b = points(parse(data)), points(parse(data))
    assert a == b
    draws = {(p["hidden_size"], p["act_bits"]) for p in a if p["target"] == "cpu"}
    assert len(draws) == 5
    for h, bits in draws:
        assert {p["cell"] for p in a if p["target"] == "cpu" and (p["hidden_size"], p["act_bits"]) == (h, bits)} == \
            {"gru", "add_gru", "lstm", "add_lstm"}
    other = points(parse({**data, "sampling": {"method": "random", "samples": 5, "seed": 4}}))
    assert other != a


def test_ranges_by_step_and_factor():
    cfg = parse(config(axes__hidden_size={"start": 8, "stop": 64, "factor": 2},
                       axes__input_size={"start": 1, "stop": 7, "step": 3}))
    assert cfg.axes.hidden_size == [8, 16, 32, 64] and cfg.axes.input_size == [1, 4, 7]


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    return out, sweep(parse(SMALL), out, workers=1, report=False)


def test_one_row_per_point_with_every_figure(small_run):
    out, result = small_run
    table = read_results(out / "small.parquet")
    assert len(table) == result.points == len(points(parse(SMALL)))
    assert table["key"].is_unique
    for column in ("energy_pj", "latency_s", "step_latency_s", "ops_mac", "ops_mul", "depth_multiplicative",
                   "fpga_lut", "fpga_dsp", "ckks_depth", "tfhe_pbs_per_step", "acc_overflow_possible",
                   "widest_product_bits", "step_latency_s_mac", "feasible", "error"):
        assert column in table.columns, column
    csv = read_results(out / "small.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)
    # multiply-gated cells multiply variables, add-gated ones do not
    assert (table.loc[table["gating"] == "mul", "ops_mul"] > 0).all()
    assert (table.loc[table["gating"] == "add", "ops_mul"] == 0).all()


def test_rows_match_the_cost_models_called_directly(small_run):
    _, result = small_run
    table = result.table
    for target, params in (("cpu", {"mode": "fused"}), ("fpga", {"reuse_factor": 2}), ("ckks", {}), ("tfhe", {})):
        direct = estimate_cell("add_lstm", 4, 8, target, config=CellConfig(weight_bits=4, act_bits=3), steps=10,
                               **params)
        row = table[(table["cell"] == "add_lstm") & (table["hidden_size"] == 8) & (table["target"] == target)]
        if target != "ckks":
            row = row[row["act_bits"] == 3]
        for name, value in params.items():
            row = row[row[name] == value]
        assert len(row) == 1
        assert row["latency_s"].iloc[0] == pytest.approx(direct["latency_s"], rel=1e-12)
        assert row["energy_pj"].iloc[0] == pytest.approx(direct["energy_pj"], rel=1e-12)


def test_a_sweep_with_no_feasible_point_writes_its_table_and_a_report_saying_why(tmp_path):
    """Every point refused (8-bit tables are too wide for TFHE): exit 0, the table, and a report
    whose summary gives each refusal's reason (this once crashed in the ratio figures)."""
    path = write_config(tmp_path, config(axes__act_bits=[8], axes__weight_bits=[8], axes__hidden_size=[4],
                                         targets={"tfhe": {"bounds": ["proven"]}}))
    r = run_cli("sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    summary = (tmp_path / "out" / "small.md").read_text()
    assert "0 feasible" in summary and "## Points a target cannot take" in summary
    assert "the TFHE backend takes at most 16 bits" in summary
    assert len(read_results(tmp_path / "out" / "small.parquet")) == 4


def test_a_point_a_target_cannot_take_is_a_row_with_its_reason(tmp_path):
    data = config(axes__act_bits=[8], axes__weight_bits=[8], targets={"tfhe": {}})
    table = sweep(parse(data), tmp_path, workers=1, report=False).table
    assert not table["feasible"].any()
    assert table["error"].str.contains("the TFHE backend takes at most 16 bits").all()


def test_overflow_flag_from_proven_accumulator_width(tmp_path):
    data = config(axes__acc_bits=[None, 6, 24], targets={"cpu": {}})
    table = sweep(parse(data), tmp_path, workers=1, report=False).table
    wide = table[table["acc_bits"].isna()]
    assert not wide["acc_overflow_possible"].any() and (wide["acc_bits_needed"] > 6).all()
    for bits, overflows in ((6, True), (24, False)):  # proven need: the same as with wide accumulators
        narrow = table[table["acc_bits"] == bits]
        assert (narrow["acc_overflow_possible"] == overflows).all()
        assert (narrow["acc_bits_needed"].values == wide["acc_bits_needed"].values).all()


def test_rerun_computes_nothing_and_gives_the_same_table(small_run):
    out, first = small_run
    again = sweep(parse(SMALL), out, workers=1, report=False)
    assert (again.computed, again.cached) == (0, first.points)
    pd.testing.assert_frame_equal(again.table, first.table)


def test_a_changed_cost_input_recomputes_only_what_it_touches(small_run, tmp_path):
    out, first = small_run
    profile = PROFILES_DIR / "cpu-vm.json"
    data = config(targets={"cpu": {"mode": ["eager"], "profile": [str(profile)]}, "fpga": {"reuse_factor": [1, 2]}})
    result = sweep(parse(data), out, workers=1, report=False)
    cpu = result.table["target"] == "cpu"
    assert result.computed == cpu.sum() and result.cached == (~cpu).sum()


def test_local_pool_gives_the_same_table(small_run, tmp_path):
    _, first = small_run
    result = sweep(parse(SMALL), tmp_path, workers=2, report=False)
    assert result.computed == first.points
    pd.testing.assert_frame_equal(result.table, first.table)


def test_dask_cluster_on_loopback_gives_the_same_table(small_run, tmp_path):
    from distributed import LocalCluster

    _, first = small_run
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster:
        result = sweep(parse(SMALL), tmp_path, scheduler=cluster.scheduler_address, report=False)
    assert result.computed == first.points
    pd.testing.assert_frame_equal(result.table, first.table)


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(GatesimError, match=r"--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler"):
        sweep(parse(SMALL), tmp_path, scheduler="tcp://127.0.0.1:9", report=False)


# ----------------------------------------------------------------------------- interrupts


# big enough that an interrupt after the first saved batch lands well before the last one
# (TFHE by proven bounds: observed ones simulate each design, minutes here, and are not what this checks)
BIG = config(axes__hidden_size={"start": 8, "stop": 800, "step": 8}, axes__input_size=[8, 16],
             targets={"cpu": {}, "fpga": {}, "tfhe": {"bounds": ["proven"]}})


def _rows_saved(cache: Path) -> int:
    try:
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT count(*) FROM rows").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def big_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return sweep(parse(BIG), out, workers=2, report=False).table


def test_a_ctrl_c_while_brevitas_builds_a_cell_is_raised_after_it(monkeypatch):
    """Brevitas resolves a quantizer's parts inside a bare `except:`: a Ctrl-C landing there
    would be lost and an in-process sweep would run to its end (this test's twin below failed
    about half the time so). The pipeline holds it until the cell is built."""
    import gatesim.pipeline as pipeline

    real = pipeline.build_cell

    def swallowing(*args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, inside the bare except's reach
        except:  # noqa: E722 (what Brevitas does)
            pass
        return real(*args)

    monkeypatch.setattr(pipeline, "build_cell", swallowing)
    with pytest.raises(KeyboardInterrupt):
        pipeline.built("gru", 4, 8, CellConfig())


@pytest.mark.parametrize("how, workers", [(signal.SIGINT, "1"), (signal.SIGKILL, "2")])
def test_interrupted_sweep_resumes_to_the_identical_table(tmp_path, big_reference, how, workers):
    path = write_config(tmp_path, BIG)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "sweep", str(path), "--out", str(out),
                             "--workers", workers, "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=how == signal.SIGKILL)
    deadline = time.time() + 300
    while _rows_saved(out / ".gatesim-cache.sqlite") == 0:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.01)
    if how == signal.SIGKILL:  # the whole process group: the parent and its pool
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(how)
    _, err = proc.communicate(timeout=120)
    saved = _rows_saved(out / ".gatesim-cache.sqlite")
    assert 0 < saved < len(big_reference), "the interrupt came too late to test resuming"
    if how == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted:" in err and "run the same command again" in err
    assert not (out / "small.parquet").exists() and not list(out.glob("*.part"))
    r = run_cli("sweep", str(path), "--out", str(out), "--workers", workers, "--no-report", "--json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["cached"] == saved and done["computed"] == len(big_reference) - saved
    pd.testing.assert_frame_equal(read_results(out / "small.parquet"), big_reference)


def _family(pid: int) -> list:
    """The process and everything it started (forkserver, workers, resource tracker)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="module")
def whole_run_s(tmp_path_factory) -> float:
    """Seconds the uninterrupted command takes here (start-up included)."""
    folder = tmp_path_factory.mktemp("timing")
    start = time.time()
    assert run_cli("sweep", str(write_config(folder, BIG)), "--out", str(folder / "out"), "--workers", "2",
                   "--no-report").returncode == 0
    return time.time() - start


@pytest.mark.parametrize("how, after_s", [(signal.SIGKILL, 0.3), (signal.SIGTERM, 0.6), (signal.SIGINT, 0.95),
                                          (signal.SIGKILL, 0.97)])
def test_a_sweep_killed_at_any_moment_leaves_nothing_behind_and_resumes(tmp_path, big_reference, whole_run_s, how,
                                                                        after_s):
    """Fault injection: SIGKILL, SIGTERM or SIGINT to the sweep process alone (not its group), at
    a moment a fraction `after_s` of the way through an uninterrupted run (0.9-1.0: while the
    last batches land and the tables are written). Within 10 s no process it started is left
    (workers notice a dead parent); no .part file survives; the same command then finishes with
    the identical table."""
    import psutil

    path = write_config(tmp_path, BIG)
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "cli.py"), "sweep", str(path), "--out", str(out), "--workers", "2",
               "--no-report"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after_s * whole_run_s)
    family = _family(proc.pid)
    proc.send_signal(how)
    proc.communicate(timeout=120)
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    assert not list(out.glob(".*.part")) and not list(out.glob("*.part"))
    r = run_cli("sweep", str(path), "--out", str(out), "--workers", "2", "--no-report", "--json")
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(read_results(out / "small.parquet"), big_reference)
    assert not list(out.glob(".*.part"))


# ----------------------------------------------------------------------------- results files


def test_a_writer_killed_mid_write_leaves_nothing_behind(tmp_path):
    """SIGKILL skips every cleanup: a process killed halfway through writing a results file
    leaves neither the file nor a temporary one (written nameless, named only once whole);
    an earlier version of the file stays as it was."""
    target = tmp_path / "out" / "small.csv"
    target.parent.mkdir()
    target.write_text("earlier\n")
    script = ("import os, signal, sys\nfrom pathlib import Path\nfrom gatesim.files import write_atomically\n"
              "def half(tmp):\n    with open(tmp, 'w') as f:\n        f.write('half of it'); f.flush()\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "write_atomically(Path(sys.argv[1]), half)\n")
    done = subprocess.run([sys.executable, "-c", script, str(target)], cwd=ROOT)
    assert done.returncode == -signal.SIGKILL
    assert sorted(p.name for p in target.parent.iterdir()) == ["small.csv"] and target.read_text() == "earlier\n"


def test_without_nameless_files_a_killed_writers_part_is_removed_by_the_next_write(tmp_path, monkeypatch):
    """Where the filesystem cannot write nameless files, a `.part` of a process that no longer
    runs is removed by the next write of the same path; a failed write removes its own."""
    import gatesim.files as files

    monkeypatch.setattr(files, "_nameless_file", lambda folder: None)
    target = tmp_path / "small.csv"
    stale = tmp_path / ".small.csv.999999999.part"  # no process has that pid
    stale.write_text("half")
    with pytest.raises(ZeroDivisionError):
        files.write_atomically(target, lambda tmp: (tmp.write_text("half"), 1 / 0))
    assert list(tmp_path.iterdir()) == []
    files.write_text_atomically(target, "whole\n")
    assert [p.name for p in tmp_path.iterdir()] == ["small.csv"] and target.read_text() == "whole\n"


def test_missing_or_corrupt_results_give_clear_errors(tmp_path):
    r = run_cli("report", str(tmp_path / "none.parquet"))
    assert r.returncode == 2 and "none.parquet: no such results file" in r.stderr
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    r = run_cli("report", str(bad))
    assert r.returncode == 2 and "bad.parquet: cannot read it as parquet" in r.stderr and "Traceback" not in r.stderr
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    r = run_cli("report", str(other))
    assert r.returncode == 2 and "other.csv: not a gatesim results table: no column key" in r.stderr
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.md"))


@pytest.mark.parametrize("change, message", [
    (lambda t: t.iloc[0:0], "it has no rows"),
    (lambda t: t.assign(latency_s=float("nan")), "is feasible but has no latency_s"),
    (lambda t: t.assign(latency_s=t["latency_s"].astype(str)), "column latency_s holds text"),
    (lambda t: t.assign(target="gpu"), "target 'gpu'; targets are cpu, fpga, ckks, tfhe"),
    (lambda t: t.assign(hidden_size=-5), "hidden_size -5 in row 0; sizes are whole numbers >= 1"),
])
def test_report_refuses_tables_a_sweep_cannot_write_in_one_line(tmp_path, small_run, change, message):
    _, result = small_run
    path = tmp_path / "odd.parquet"
    change(result.table).to_parquet(path)
    r = run_cli("report", str(path), "--out", str(tmp_path / "report"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "report").exists()


def test_corrupt_cache_is_a_clear_error(tmp_path):
    (tmp_path / ".gatesim-cache.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(GatesimError, match="not a gatesim cache .*delete it"):
        sweep(parse(SMALL), tmp_path, workers=1, report=False)


def test_library_sweep_rows_are_what_estimate_says_of_such_a_cell(small_run):
    """A row costs the design, not one instance: widths that follow learned values (a weight
    scale from max |w|) come from a seeded canonical instance, so a freshly initialized module
    of the same design has the same op counts and latency but may differ in a few bits."""
    _, result = small_run
    row = result.table[(result.table["cell"] == "gru") & (result.table["target"] == "fpga")].iloc[0]
    h, bits = int(row["hidden_size"]), int(row["act_bits"])
    module = gatesim.build_cell("gru", 4, h, CellConfig(weight_bits=4, act_bits=bits))
    graph = gatesim.trace(module, torch.zeros(1, 4), torch.zeros(1, h))
    direct = estimate(graph, "fpga", steps=10, reuse_factor=int(row["reuse_factor"]))
    assert {f"ops_{k}": v for k, v in graph.counts().items()} == {k: row[k] for k in row.index if k.startswith("ops_")}
    assert row["latency_s"] == pytest.approx(direct.latency_s)
    assert row["fpga_lut"] == pytest.approx(direct.resources["lut"], rel=0.05)


def test_accuracy_objective_trains_each_design_once_and_reuses_the_runs(tmp_path):
    data = config(axes__cell=["gru", "add_gru"], axes__input_size=None, axes__hidden_size=[4], axes__steps=[8],
                  axes__act_bits=[4], targets={"cpu": {}, "ckks": {}},
                  accuracy={"task": "adding", "seeds": [0, 1], "epochs": 1, "train_size": 64, "test_size": 16})
    table = sweep(parse(data), tmp_path, workers=1, report=False).table
    runs = sorted((tmp_path / "train").glob("*.pt"))
    assert len(runs) == 2 * 2 * 2  # cells x (4-bit, and the float cell CKKS costs) x seeds
    assert (table["input_size"] == 2).all() and (table["accuracy_seeds"] == 2).all()
    quantized, ckks = table[table["target"] == "cpu"], table[table["target"] == "ckks"]
    assert (quantized["accuracy_agree"] == True).all() and ckks["accuracy_agree"].isna().all()  # noqa: E712
    # the row's value is the mean of its seeds' simulator values, read back from the saved runs
    saved = [json.loads(p.with_suffix(".json").read_text()) for p in runs]
    add4 = [r["value_simulator"] for r in saved if r["cell"] == "add_gru" and r["act_bits"] == 4]
    row = quantized[quantized["cell"] == "add_gru"].iloc[0]
    assert row["accuracy"] == pytest.approx(sum(add4) / 2) and row["accuracy_metric"] == "mse"
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    again = sweep(parse(data), tmp_path, workers=1, report=False).table
    assert {p: p.stat().st_mtime_ns for p in sorted((tmp_path / "train").glob("*.pt"))} == stamps
    pd.testing.assert_frame_equal(again, table)


def test_tfhe_rounding_rows_score_the_trained_design_with_its_tables_rounded(tmp_path):
    """An accuracy sweep with a tfhe rounding axis: the unrounded tfhe row scores what the
    simulator scored at training; rounding to 3 bits rounds tables (the score saved beside the
    run) and the row carries the rounded cell's own score; the accuracy figure draws every
    feasible row against its TFHE latency."""
    from gatesim.report import figures

    data = config(axes__cell=["add_gru"], axes__input_size=None, axes__hidden_size=[4], axes__steps=[8],
                  axes__weight_bits=[4], axes__act_bits=[4], targets={"tfhe": {"bounds": ["observed"], "rounding_bits": [None, 3]}},
                  accuracy={"task": "adding", "seeds": [0], "epochs": 1, "train_size": 64, "test_size": 32})
    table = sweep(parse(data), tmp_path, workers=1, report=False).table
    plain, rounded = table[table["rounding_bits"].isna()].iloc[0], table[table["rounding_bits"] == 3].iloc[0]
    (run,) = [json.loads(p.with_suffix(".json").read_text()) for p in (tmp_path / "train").glob("*.pt")]
    assert plain["accuracy"] == run["value_simulator"] and pd.isna(plain["accuracy_rounding_bits"])
    (saved,) = (tmp_path / "train").glob("*-round3-*.json")
    score = json.loads(saved.read_text())
    assert score["rounded_tables"] and rounded["accuracy"] == score["value"]
    assert rounded["accuracy_rounding_bits"] == 3 and rounded["latency_s"] < plain["latency_s"]
    fig = figures.accuracy_pareto(table)
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) == int(table["feasible"].sum()) == 2


SHARED = {"schema_version": 1, "name": "shared",
          "axes": {"cell": ["gru", "add_gru", "lstm", "add_lstm"], "input_size": [16, 32],
                   "hidden_size": {"start": 8, "stop": 128, "step": 8}, "weight_bits": [4, 8], "act_bits": [4]},
          "targets": {"cpu": {"mode": ["eager", "fused"]}, "fpga": {"reuse_factor": [1, 4]}}}


def test_two_sweeps_on_one_folder_share_the_work(tmp_path):
    """Started together on one --out, the second sweep waits for the points the first has
    claimed instead of computing them again: between them every point is computed once."""
    config = tmp_path / "shared.yaml"
    config.write_text(yaml.safe_dump(SHARED))
    command = [sys.executable, "-m", "gatesim", "sweep", str(config), "--out", str(tmp_path / "out"), "--no-report",
               "--workers", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    import re

    counts = [re.search(r"([\d,]+) points: ([\d,]+) computed, ([\d,]+) from the cache", o) for o in outputs]
    assert all(counts), outputs
    points, computed = (int(counts[0].group(1).replace(",", "")),
                        [int(c.group(2).replace(",", "")) for c in counts])
    assert points == 4 * 2 * 16 * 2 * 4 and sum(computed) == points, outputs
    table = pd.read_csv(tmp_path / "out" / "shared.csv")
    assert len(table) == points and table["key"].is_unique


def test_a_dead_sweeps_claims_are_taken_over(tmp_path):
    """Points claimed by a sweep whose process is gone (killed before it saved them) are
    computed by the next sweep instead of waited for."""
    from gatesim.sweep.cache import ResultCache, code_fingerprint, point_key
    from gatesim.sweep.points import points as expand
    from gatesim.sweep import parse

    config = {**SHARED, "axes": {**SHARED["axes"], "hidden_size": [8, 16]}}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    cache = ResultCache(out / ".gatesim-cache.sqlite")
    keys = [point_key(p, code_fingerprint()) for p in expand(parse(config))]
    import socket

    with cache.db:
        cache.db.executemany("INSERT INTO claims VALUES (?, ?, ?)", [(k, socket.gethostname(), dead.pid) for k in keys])
    cache.close()
    start = time.perf_counter()
    result = gatesim.sweep(config, out, workers=1, report=False)
    assert result.computed == len(keys) and time.perf_counter() - start < 120
