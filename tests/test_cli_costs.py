"""`gatesim estimate`, `gatesim calibrate cpu`, `gatesim validate cpu`: contracts and errors.
Timing figures are not asserted (shared machines are noisy); the CLI reports them."""
import json

import pytest
from typer.testing import CliRunner

from cli import app
from gatesim.costs.cpu import load_profile

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("target, extra", [("cpu", ["--mode", "fused"]), ("fpga", ["--reuse-factor", "4"])])
def test_estimate_json_contract(target, extra):
    r = run("estimate", "gru", "--target", target, "-i", "8", "-H", "16", "--steps", "5", *extra, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"target", "energy_pj", "latency_s", "resources", "by_kind"} <= out.keys()
    assert out["target"] == target and out["energy_pj"] > 0 and out["latency_s"] > 0
    assert all(set(v) == {"energy_pj", "latency_s"} for v in out["by_kind"].values())
    assert out["add_vs_mul"]["pair"] == "add_gru/gru"
    assert set(out["add_vs_mul"]) >= {"energy_pj", "latency_s", "resources"}


def test_estimate_table_is_readable():
    r = run("estimate", "add_lstm", "--target", "fpga", "-i", "4", "-H", "8")
    assert r.exit_code == 0, r.output
    assert "by op kind" in r.stdout and "add_lstm/lstm" in r.stdout and "lut" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--target", "gpu"], "--target='gpu': allowed values are cpu, fpga"),
    (["--target", "cpu", "--reuse-factor", "2"], "--reuse-factor applies to --target fpga, not cpu"),
    (["--target", "fpga", "--reuse-factor", "0"], "reuse_factor=0"),
    (["--target", "cpu", "--profile", "/nonexistent/p.json"], "/nonexistent/p.json: no such file"),
    (["--target", "cpu", "--mode", "jit"], "mode='jit'"),
])
def test_estimate_bad_input_is_one_line_exit_2(args, message):
    r = run("estimate", "gru", "-i", "4", "-H", "8", *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration") / "cpu.json"
    r = run("calibrate", "cpu", "--out", str(path))
    assert r.exit_code == 0, r.output
    return path


def test_calibrate_writes_a_profile_the_model_applies(profile):
    p = load_profile(profile)
    assert p.dispatch_s["add"] > 0 and p.mac_s["float32"] > 0 and p.element_s["eager"]["tanh"]["float32"] > 0
    assert [f.name for f in profile.parent.iterdir()] == ["cpu.json"]  # nothing half-written
    r = run("estimate", "lstm", "-i", "4", "-H", "8", "--profile", str(profile), "--json")
    assert json.loads(r.stdout)["profile"] == str(profile)


def test_validate_reports_predicted_vs_measured(profile):
    r = run("validate", "cpu", "--profile", str(profile), "--cell", "gru", "--cell", "add_gru",
            "-H", "8", "--mode", "eager", "--mode", "fused", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["rows"]) == 4
    for row in out["rows"]:
        assert {"cell", "hidden_size", "mode", "predicted_s", "measured_s", "ratio"} <= row.keys()
        assert row["ratio"] == pytest.approx(row["predicted_s"] / row["measured_s"])
    assert {p["mode"] for p in out["add_vs_mul"]} == {"eager", "fused"}
    assert all({"pair", "hidden_size", "mode", "predicted_ratio", "measured_ratio"} <= p.keys()
               for p in out["add_vs_mul"])


@pytest.mark.parametrize("args, message", [
    (["calibrate", "gpu"], "calibrate: unknown target 'gpu'; allowed: cpu"),
    (["validate", "tpu"], "validate: unknown target 'tpu'; allowed: cpu"),
    (["validate", "cpu", "--cell", "rnn"], "--cell='rnn': allowed values are gru, lstm, add_gru, add_lstm"),
    (["validate", "cpu", "--mode", "jit"], "--mode='jit': allowed values are eager, fused"),
])
def test_calibrate_and_validate_bad_input(args, message):
    r = run(*args)
    assert r.exit_code == 2 and message in r.stderr


def test_tfhe_estimate_calibrate_and_validate(tmp_path):
    out = json.loads(run("estimate", "add_gru", "--target", "tfhe", "-i", "2", "-H", "4",
                         "--weight-bits", "3", "--act-bits", "3", "--json").stdout)
    assert out["resources"]["pbs_per_step"] == 48 and out["add_vs_mul"]["pair"] == "add_gru/gru"
    profile = tmp_path / "tfhe.json"
    r = run("calibrate", "tfhe", "--out", str(profile), "--max-bits", "2")
    assert r.exit_code == 0, r.output
    r = run("validate", "tfhe", "--profile", str(profile), "--cell", "add_lstm", "-H", "2", "--bits", "3", "--json",
            "--no-recalibrate")  # the spot check and recalibration: tests/test_tfhe.py
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["rows"]
    assert {"cell", "hidden_size", "bits", "inhibit", "rounding_bits", "pbs_predicted", "pbs_compiler",
            "predicted_s", "predicted_from",
            "measured_s", "predicted_with_compiler_parameters_s", "output_matches_simulator"} <= row.keys()
    assert "--bounds observed" in row["predicted_from"]
    assert row["pbs_predicted"] == row["pbs_compiler"] and row["output_matches_simulator"] is True


def test_ckks_estimate_and_validate():
    out = json.loads(run("estimate", "lstm", "--target", "ckks", "-i", "4", "-H", "4", "--json").stdout)
    assert out["resources"]["depth"] == 7 and out["resources"]["poly_modulus_degree"] == 16384
    assert out["add_vs_mul"]["pair"] == "add_lstm/lstm"
    r = run("estimate", "gru", "--target", "ckks", "-i", "4", "-H", "4", "--poly-modulus-degree", "4096")
    assert r.exit_code == 2 and "pass --insecure" in r.stderr
    r = run("validate", "ckks", "--profile", "ckks-vm", "--cell", "gru", "-H", "2", "--json", "--no-recalibrate")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["rows"]
    assert {"cell", "hidden_size", "depth_predicted", "depth_measured", "predicted_s", "measured_s"} <= row.keys()
    assert row["depth_predicted"] == row["depth_measured"]
