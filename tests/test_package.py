"""A wheel of gatesim works without the checkout: cost files and shipped profiles are package
data. Built from the tracked files, installed into a fresh virtual environment (its
dependencies from this environment's site-packages), run from another directory."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """\
schema_version: 1
name: small
axes: {cell: [gru, add_gru], hidden_size: [4, 8], input_size: [4]}
targets:
  cpu: {mode: [eager, fused], profile: [cpu-vm]}
  fpga: {reuse_factor: [1, 2]}
"""


def run(args, cwd, **kw):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, **kw)


def test_wheel_in_a_fresh_venv_estimates_and_sweeps_from_another_directory(tmp_path):
    source = tmp_path / "source"
    tracked = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], ROOT).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
                 source], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("gatesim-*.whl"))
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path).returncode == 0
    python, gatesim = venv / "bin" / "python", venv / "bin" / "gatesim"
    installed = run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([python, "-c", "import gatesim.costs.config as c; print(c.COSTS_DIR)"], elsewhere)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr  # the wheel, not the checkout

    estimate = run([gatesim, "estimate", "gru", "--target", "cpu", "-i", "8", "-H", "8", "--json"], elsewhere)
    assert estimate.returncode == 0, estimate.stderr
    assert json.loads(estimate.stdout)["latency_s"] > 0

    (elsewhere / "small.yaml").write_text(SWEEP)
    swept = run([gatesim, "sweep", "small.yaml", "--out", "out", "--workers", "1", "--json"], elsewhere)
    assert swept.returncode == 0, swept.stderr[-2000:]
    summary = json.loads(swept.stdout)
    assert summary["points"] == 16 and summary["feasible"] == 16
    assert (elsewhere / "out" / "small.md").is_file()
    assert not (ROOT / "build").exists()
