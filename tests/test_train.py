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
    bad = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "gru", "--qat", "jit"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --qat='jit': allowed values are fast, brevitas")


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


def _loss_and_grads(model, x, y, fast: bool):
    from gatesim.train.fast import steady_scales

    model.zero_grad()
    with steady_scales(model) if fast else __import__("contextlib").nullcontext():
        out = model(x)
    torch.nn.functional.mse_loss(out, y).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("cell", ["gru", "lstm", "add_gru", "add_lstm"])
@pytest.mark.parametrize("config", [CellConfig(), CellConfig(weight_bits=4, act_bits=3, weight_scaling="per_channel")],
                         ids=["w8a8", "w4a3-per-channel"])
def test_the_fast_qat_path_is_brevitas_forward_bit_for_bit(cell, config):
    """The fast path's forward equals Brevitas' layers' own, bit for bit, in training and in
    eval mode; its gradients are the same sums in another order (float rounding apart); and
    the layers run as before once the block is left."""
    from gatesim.train.model import SequenceModel

    torch.manual_seed(1)
    model = SequenceModel(cell, 2, 8, 1, config).train()
    x, y = torch.rand(16, 30, 2) * 2 - 1, torch.rand(16, 1)
    slow, slow_grads = _loss_and_grads(model, x, y, fast=False)
    fast, fast_grads = _loss_and_grads(model, x, y, fast=True)
    assert torch.equal(fast, slow)
    assert fast_grads.keys() == slow_grads.keys() and len(fast_grads) == len(list(model.parameters()))
    largest = max(float(g.abs().max()) for g in slow_grads.values())  # sums that cancel round apart
    for name, grad in slow_grads.items():
        assert torch.allclose(fast_grads[name], grad, rtol=1e-3, atol=1e-6 * largest), name
    model.eval()
    from gatesim.train.fast import steady_scales

    with torch.no_grad(), steady_scales(model):
        fast = model(x)
    assert torch.equal(fast, model(x).detach())
    assert not any("forward" in vars(m) for m in model.modules())  # Brevitas' layers are back


def test_the_fast_qat_path_requantizes_only_what_left_its_grid(monkeypatch):
    """A state the cell's own quantizer made is passed on, not quantized again (the saving);
    a state from an earlier forward pass (other scales) or changed in place since is quantized
    again: each way the result is Brevitas' own."""
    from gatesim.cells import CellConfig, Sequence, build_cell
    from gatesim.train.fast import steady_scales

    torch.manual_seed(2)
    sequence = Sequence(build_cell("lstm", 2, 8, CellConfig())).train()
    x, steps = torch.rand(4, 6, 2), 6
    from gatesim.train import kernel

    made, calls = kernel.fake_quant, []

    def counted(*args):
        quantize = made(*args)
        return lambda x: calls.append(1) or quantize(x)

    monkeypatch.setattr(kernel, "fake_quant", counted)
    with steady_scales(sequence):
        fast, state = sequence(x)
    # per step: x, i f g o before and after their activation (8), c, tanh(c), h; h and c
    # entering the next step come from the same quantizers (h twice: state_in, hidden_linear),
    # so only the first step's zero state is quantized on the way in (+ 2)
    assert len(calls) == 12 * steps + 2 and torch.equal(fast, sequence(x)[0])
    with torch.no_grad():  # a coarser state grid in the next pass: the carried state leaves it
        sequence.cell.state_in.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value.add_(1.0)
    with steady_scales(sequence):
        fast, _ = sequence(x, state)
    assert torch.equal(fast, sequence(x, state)[0])
    with steady_scales(sequence):
        _, state = sequence(x)
        state[0].mul_(1.3)  # changed in place: quantized again
        fast, _ = sequence(x, state)
    assert torch.equal(fast, sequence(x, state)[0])


def test_the_fast_qat_path_takes_scales_that_are_not_powers_of_two():
    """A learned float scale (not a power of two) takes Brevitas' own op sequence, still
    bit for bit."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloatMinMaxInit

    from gatesim.train.fast import steady_scales

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFloatMinMaxInit, min_val=-1.3, max_val=1.3),
        qnn.QuantLinear(6, 5, bias=True, input_quant=Int8ActPerTensorFloatMinMaxInit, input_min_val=-0.7,
                        input_max_val=0.7),
        qnn.QuantTanh(act_quant=Int8ActPerTensorFloatMinMaxInit, min_val=-1.0, max_val=1.0))
    x = torch.randn(40, 6)
    reference = model(x)
    assert float(model[0].act_quant.scale()).hex().split("p")[0] not in ("0x1.0000000000000", "0x1")
    with steady_scales(model):
        fast = model(x)
    assert torch.equal(fast, reference)


def test_the_fast_qat_path_refuses_a_layer_it_cannot_run_and_names_it():
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat

    from gatesim.train.fast import steady_scales

    model = torch.nn.Sequential(qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat))  # scale from runtime stats
    with pytest.raises(GatesimError, match="^0: its scale .* may depend on the input"):
        with steady_scales(model):
            pass
    assert "forward" not in vars(model[0])


def test_training_takes_the_fast_path_unless_asked_for_brevitas(tmp_path):
    """Both paths train the same model: equal settings but for `qat`, cached apart, and after
    an epoch their losses agree to float rounding."""
    from gatesim.train.run import checkpoint_path

    arguments = dict(cell="add_gru", task="adding", hidden_size=8, seq_len=10, seed=0,
                     config=CellConfig(weight_bits=4, act_bits=4), **TINY)
    assert checkpoint_path(tmp_path, **arguments) != checkpoint_path(tmp_path, **arguments, qat="brevitas")
    fast = train(**arguments)
    slow = train(**arguments, qat="brevitas")
    assert fast["history"][0]["train_loss"] == pytest.approx(slow["history"][0]["train_loss"], rel=1e-4)
    assert fast["agree"] and slow["agree"]
    with pytest.raises(GatesimError, match="qat='jit': allowed values are fast, brevitas"):
        train(**arguments, qat="jit")


@pytest.mark.parametrize("low, high, step", [(-128, 127, 2.0 ** -5), (0, 255, 2.0 ** -8), (-4, 3, 0.5),
                                             (-32768, 32767, 2.0 ** 3)])
def test_the_fast_fake_quantization_kernel_is_torchs_fused_kernel(low, high, step):
    """gatesim's C++ kernel (built here; CI has a compiler) gives torch's fused learnable fake
    quantization's values bit for bit and its x gradient exactly, on ties (round half to even),
    both bounds and beyond, zeros of both signs and a non-contiguous input; its scale gradient
    is the same sum in another order. (Far beyond the range, past 2^63 steps, torch's kernel
    takes the lower bound for the scale gradient on both sides, an integer overflow; this one
    takes the bound reached, as Brevitas does.)"""
    from gatesim.train import kernel

    scale = torch.tensor([step], requires_grad=True)
    quantize = kernel.fake_quant(scale, low, high)
    assert quantize is not None, "the kernel did not build"
    torch.manual_seed(3)
    ties = (torch.arange(-2 * high - 9, 2 * high + 9, dtype=torch.float32) / 2)[::max(1, high // 64)] * step
    x = torch.cat([torch.randn(4000) * step * (high - low) / 3, ties, torch.tensor([0.0, -0.0, 1e6 * step * high, -1e6 * step * high])])
    x.requires_grad_()
    grad = torch.randn(x.shape)

    def run(fake):
        x.grad = scale.grad = None
        strided = torch.stack([x, x], 1)[:, 0]
        assert not strided.is_contiguous()
        y = fake(strided)
        y.backward(grad)
        return y.detach(), x.grad.clone(), scale.grad.clone()

    ours = run(quantize)
    torchs = run(lambda v: torch._fake_quantize_learnable_per_tensor_affine(v, scale, torch.zeros(1), low, high, 1.0))
    assert torch.equal(ours[0].view(torch.int32), torchs[0].view(torch.int32))  # every bit, signs of 0 too
    assert torch.equal(ours[1], torchs[1])
    assert torch.allclose(ours[2], torchs[2], rtol=1e-4, atol=1e-4 * float(grad.abs().sum()) * high / 1e6)


def test_the_fast_fake_quantization_kernel_stays_out_of_what_it_does_not_cover():
    """Bounds past its exact rounding, or a scale off the CPU or in another type: None (the
    fast path then takes torch's kernel)."""
    from gatesim.train import kernel

    assert kernel.fake_quant(torch.tensor([0.5]), -2 ** 23, 2 ** 23 - 1) is None
    assert kernel.fake_quant(torch.tensor([0.5], dtype=torch.float64), -128, 127) is None
    assert kernel.fake_quant(torch.tensor([0.5], device="meta"), -128, 127) is None


def test_without_a_compiler_training_falls_back_to_torchs_kernel_and_says_so(tmp_path):
    """No working C++ compiler: one warning naming the failed build, and the fast path takes
    torch's kernel (the same numbers, slower) instead of failing."""
    import os
    import subprocess
    import sys

    code = ("import torch\nfrom gatesim.train import kernel\n"
            "print('kernel:', kernel.fake_quant(torch.tensor([0.25]), -8, 7))")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "CXX": str(tmp_path / "no-such-g++")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "kernel: None" in r.stdout
    assert "the fast fake-quantization kernel could not be built" in r.stderr
    assert "training uses torch's kernel instead" in r.stderr
