"""Training: the tasks' data, quantization-aware training at tiny sizes, the metric from
Brevitas and from the integer simulator agreeing exactly, checkpoints, and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gatesim.cells import CellConfig
from gatesim.errors import GatesimError
from gatesim.train import get_task, load_checkpoint, train
from gatesim.train.model import brevitas_predictions, simulator_predictions
from gatesim.train.run import train_cached

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=1, train_size=96, test_size=24, batch_size=32)


def test_adding_data_is_the_adding_problem():
    task, _ = get_task("adding", 40)
    x, y = task.make(20_000, 40, seed=3, split="train")
    assert x.shape == (20_000, 40, 2)
    markers = x[..., 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :20].sum(1) == 1).all() and (markers[:, 20:].sum(1) == 1).all()
    assert torch.allclose((x[..., 0] * markers).sum(1), y)
    # predicting the mean scores the variance of a sum of two U(0, 1): 2/12
    assert task.baseline(y, task.make(20_000, 40, seed=3, split="test")[1]) == pytest.approx(2 / 12, abs=0.01)
    again, _ = task.make(20_000, 40, seed=3, split="train")
    other, _ = task.make(20_000, 40, seed=3, split="test")
    assert torch.equal(again, x) and not torch.equal(other, x)  # seeded, and test is not train


def test_digits_data_is_sklearn_digits_pixel_by_pixel():
    from sklearn.datasets import load_digits

    task, seq_len = get_task("digits")
    x_train, y_train = task.make(10_000, seq_len, 0, "train")
    x_test, y_test = task.make(10_000, seq_len, 0, "test")
    assert x_train.shape == (1437, 64, 1) and x_test.shape == (360, 64, 1)
    assert float(x_train.min()) >= 0 and float(x_train.max()) <= 1
    images = {tuple((img / 16).reshape(-1).round(6)) for img in load_digits().images}
    seen = {tuple(row.reshape(-1).numpy().round(6)) for row in torch.cat([x_train, x_test])}
    assert seen <= images


@pytest.mark.parametrize("cell", ["gru", "lstm", "add_gru", "add_lstm"])
def test_simulator_and_brevitas_agree_exactly_after_training(cell, tmp_path):
    r = train(cell, "adding", 6, seq_len=12, config=CellConfig(weight_bits=6, act_bits=6), seed=1,
              checkpoint=tmp_path / "run.pt", **TINY)
    assert r["agree"] is True and r["mismatched_outputs"] == 0
    assert r["value_simulator"] == r["value_brevitas"] and r["metric"] == "mse"
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["value_simulator"] == r["value_simulator"]
    # the checkpoint gives back the trained model: same outputs both ways
    model, meta = load_checkpoint(tmp_path / "run.pt")
    task, _ = get_task("adding", 12)
    x, y = task.make(24, 12, 1, "test")
    assert task.score(brevitas_predictions(model, x), y.numpy()) == r["value_brevitas"]
    assert task.score(simulator_predictions(model, x)[0], y.numpy()) == r["value_simulator"]


def test_digits_accuracy_both_ways():
    r = train("add_gru", "digits", 6, config=CellConfig(weight_bits=5, act_bits=5), **TINY)
    assert r["metric"] == "accuracy" and 0 <= r["value_simulator"] <= 1 and r["agree"] is True


def test_a_float_cell_trains_and_has_no_simulator_value():
    r = train("gru", "adding", 4, seq_len=6, config=CellConfig.unquantized(), **TINY)
    assert r["value_simulator"] is None and r["agree"] is None and r["value_brevitas"] > 0


def test_same_settings_are_not_trained_twice(tmp_path):
    args = dict(cell="gru", task="adding", hidden_size=4, seq_len=6, config=CellConfig(weight_bits=4, act_bits=4),
                **TINY)
    first = train_cached(tmp_path, **args)
    second = train_cached(tmp_path, **args)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["value_simulator"] == first["value_simulator"]
    assert train_cached(tmp_path, **{**args, "seed": 5})["cached"] is False
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_bad_settings_name_the_option():
    with pytest.raises(GatesimError, match="--seq-len=100: the digits task takes 64"):
        train("gru", "digits", 4, seq_len=100)
    with pytest.raises(GatesimError, match="unknown task 'copy'; allowed: adding, digits"):
        train("gru", "copy", 4)
    with pytest.raises(GatesimError, match="--seq-len=1: the adding task takes 2..10000"):
        train("gru", "adding", 4, seq_len=1)


def test_cli_train_json_contract(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "add_lstm", "--task", "adding", "--seq-len",
                        "8", "--hidden", "4", "--weight-bits", "4", "--act-bits", "4", "--epochs", "1",
                        "--train-size", "64", "--test-size", "16", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"task", "metric", "value_brevitas", "value_simulator", "agree"} <= out.keys()
    assert out["task"] == "adding" and out["metric"] == "mse" and out["agree"] is True
    assert Path(out["checkpoint"]).is_file() and np.isfinite(out["baseline"])
    bad = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "gru", "--task", "digits", "--seq-len", "9"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "the digits task takes 64" in bad.stderr


def test_cli_train_keeps_runs_in_the_user_cache_by_default(tmp_path):
    """Without --out, a run goes under $XDG_CACHE_HOME/gatesim/train, never into the working tree."""
    cache, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "gru", "--task", "adding", "--seq-len", "4",
                        "--hidden", "2", "--epochs", "1", "--train-size", "32", "--test-size", "8", "--json"],
                       capture_output=True, text=True, timeout=600, cwd=work,
                       env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["checkpoint"]).parent == cache / "gatesim" / "train"
    assert not any(work.iterdir())


def test_an_interrupted_run_resumes_from_its_last_finished_epoch(tmp_path):
    """Ctrl-C in epoch 2 of 3 leaves epoch 1 saved; training again with the same checkpoint
    goes on from there and ends exactly where an uninterrupted run ends."""
    import torch

    from gatesim.train.run import train

    arguments = dict(cell="add_gru", task="adding", hidden_size=4, seq_len=5, epochs=3, seed=1, batch_size=16,
                     train_size=64, test_size=16, config=CellConfig(weight_bits=4, act_bits=4))
    whole = train(**arguments, checkpoint=tmp_path / "whole.pt")

    def stop_in_epoch_two(done, total):
        if done == total // 3 + 1:
            raise KeyboardInterrupt

    path = tmp_path / "cut.pt"
    with pytest.raises(KeyboardInterrupt):
        train(**arguments, checkpoint=path, progress=stop_in_epoch_two)
    assert path.with_suffix(".partial.pt").is_file() and not path.is_file()
    resumed = train(**arguments, checkpoint=path)
    assert not path.with_suffix(".partial.pt").exists()
    assert resumed["history"] == whole["history"]
    assert resumed["value_simulator"] == whole["value_simulator"] and resumed["agree"] is True
    a, b = torch.load(tmp_path / "whole.pt", weights_only=False), torch.load(path, weights_only=False)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_device_auto_is_the_cpu_run_here_and_cuda_without_a_gpu_is_refused(tmp_path):
    """--device auto takes the GPU where torch sees one; on a CPU machine it is the CPU run
    (same cache entry, same result). Asking for cuda without one is one clear error."""
    import torch

    from gatesim.errors import GatesimError
    from gatesim.train.run import checkpoint_path, train_cached

    arguments = dict(cell="gru", task="adding", hidden_size=4, seq_len=4, epochs=1, seed=0, batch_size=16,
                     train_size=32, test_size=8, config=CellConfig(weight_bits=4, act_bits=4))
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: auto means cuda here")
    assert checkpoint_path(tmp_path, **arguments, device="auto") == checkpoint_path(tmp_path, **arguments)
    cpu = train_cached(tmp_path, **arguments)
    auto = train_cached(tmp_path, **arguments, device="auto")
    assert auto["cached"] is True and auto["value_simulator"] == cpu["value_simulator"]
    with pytest.raises(GatesimError, match="device='cuda': torch sees no CUDA device"):
        train_cached(tmp_path, **arguments, device="cuda")
    r = subprocess.run([sys.executable, "cli.py", "train", "gru", "--device", "cuda", "--epochs", "1"],
                       cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: --device='cuda': torch sees no CUDA device")
