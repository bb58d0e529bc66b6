"""The benchmark scripts run and end with their JSON line (figures are not asserted here:
machines are shared and noisy; the scripts print ratios against their peers)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_trace_speed_prints_its_contract():
    r = subprocess.run([sys.executable, "benchmarks/trace_speed.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"trace_ms", "recount_ms", "flopcounter_ms"} <= last.keys()
    assert all(last[k] > 0 for k in ("trace_ms", "recount_ms", "flopcounter_ms"))


def test_simulate_speed_prints_its_contract():
    r = subprocess.run([sys.executable, "benchmarks/simulate_speed.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    keys = {"sim_cell_steps_per_s", "brevitas_cell_steps_per_s", "speedup_vs_brevitas",
            "float_lstm_cell_steps_per_s"}
    assert keys <= last.keys() and all(last[k] > 0 for k in keys)


def test_sweep_speed_prints_its_contract():
    r = subprocess.run([sys.executable, "benchmarks/sweep_speed.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"points", "seconds", "points_per_s"} <= last.keys()
    assert last["points"] >= 10_000 and last["seconds"] > 0 and last["points_per_s"] > 0


def test_train_speed_prints_its_contract():
    r = subprocess.run([sys.executable, "benchmarks/train_speed.py"], cwd=ROOT, capture_output=True, text=True,
                       timeout=900, env={**__import__("os").environ, "TRAIN_SPEED_REPEATS": "1"})
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    keys = {"qat_ms_per_batch", "float_ms_per_batch", "ratio", "brevitas_ms_per_batch", "speedup_vs_brevitas"}
    assert keys <= last.keys() and all(last[k] > 0 for k in keys)
    assert set(last["cells"]) == {"gru", "lstm", "add_gru", "add_lstm"}
    assert "gatesim's C++ kernel" in last["qat_path"]  # CI has a compiler: the fast kernel ran
