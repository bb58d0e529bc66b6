"""Brevitas' recurrent layers as users configure them, against Brevitas' own forward pass.

Each configuration is simulated from zero states (torch's convention, no states passed) and
its integer outputs, times their scale, must equal the real layer's float32 outputs at every
step, element for element; a configuration the simulator cannot run exactly is refused with a
GatesimError that says why. The table in docs/simulate.md ("Supported Brevitas recurrent layers")
lists these same configurations.
"""
from __future__ import annotations

import brevitas.quant as presets
import brevitas.quant.fixed_point as fixed_point_presets
import numpy as np
import pytest
import torch
from brevitas.nn import QuantLSTM, QuantRNN
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gatesim import GatesimError, simulate
from gatesim.cells.quant import bias_quant, signed_act_quant, unsigned_act_quant, weight_quant

I, H, B, T = 5, 7, 3, 6
PER_CHANNEL = type("Int6WeightPerChannelFixedPoint", (Int8WeightPerChannelFixedPoint,), {"bit_width": 6})


def fixed_point(per_channel: bool = False, **extra) -> dict:
    quant = dict(weight_quant=PER_CHANNEL if per_channel else weight_quant(6), io_quant=signed_act_quant(8, 1.0),
                 gate_acc_quant=signed_act_quant(8, 4.0), bias_quant=bias_quant(True))
    return {**quant, **extra}


LSTM_ACTS = dict(sigmoid_quant=unsigned_act_quant(8, 1.0), tanh_quant=signed_act_quant(8, 1.0),
                 cell_state_quant=signed_act_quant(8, 4.0))

# name -> (layer class, keyword arguments, exact: True, or the refusal's words)
CONFIGS = {
    "lstm fixed point": (QuantLSTM, fixed_point(**LSTM_ACTS), True),
    "lstm per-channel weights": (QuantLSTM, fixed_point(True, **LSTM_ACTS), True),
    "lstm bias=False": (QuantLSTM, fixed_point(bias=False, **LSTM_ACTS), True),
    "lstm coupled input-forget gates": (QuantLSTM, fixed_point(coupled_input_forget_gates=True, **LSTM_ACTS), True),
    "lstm shared intra-layer quantizers": (QuantLSTM, fixed_point(shared_intra_layer_weight_quant=True,
                                                                  shared_intra_layer_gate_acc_quant=True,
                                                                  **LSTM_ACTS), True),
    "lstm batch_first=False": (QuantLSTM, fixed_point(batch_first=False, **LSTM_ACTS), True),
    "lstm return_quant_tensor": (QuantLSTM, fixed_point(return_quant_tensor=True, **LSTM_ACTS), True),
    "lstm cell state not quantized": (QuantLSTM, fixed_point(**{**LSTM_ACTS, "cell_state_quant": None}),
                                      "input 'c' is not read by a quantizer"),
    "rnn fixed point": (QuantRNN, fixed_point(), True),
    "rnn per-channel weights": (QuantRNN, fixed_point(True), True),
    "rnn bias=False": (QuantRNN, fixed_point(bias=False), True),
    "rnn batch_first=False": (QuantRNN, fixed_point(batch_first=False), True),
    "rnn return_quant_tensor": (QuantRNN, fixed_point(return_quant_tensor=True), True),
}


def spread_channels(layer: torch.nn.Module) -> None:
    """Rows of every weight matrix 2^-3..2^2 apart, so per-channel scales really differ."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if "weight" in name and p.ndim == 2:
                p.mul_(torch.logspace(-3, 2, p.shape[0], base=2.0)[:, None])


def brevitas_outputs(layer, x: np.ndarray, batch_first: bool) -> np.ndarray:
    """The layer's own forward over the whole sequence: the hidden state at every step (B, T, H)."""
    xs = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        out = layer.eval()(xs if batch_first else xs.transpose(0, 1))[0]
    out = getattr(out, "value", out)
    return (out if batch_first else out.transpose(0, 1)).double().numpy()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_brevitas_configuration_is_exact_or_refused_with_its_reason(name):
    cls, kwargs, exact = CONFIGS[name]
    torch.manual_seed(0)
    layer = cls(I, H, **{"batch_first": True, **kwargs})
    if "per-channel" in name:
        spread_channels(layer)
        inner = layer.layers[0][0]
        params = inner.gate_params if cls is QuantRNN else inner.input_gate_params
        scales = inner.gate_params_fwd(params, inner.io_quant(torch.zeros(1, I)))[0].scale
        assert len(set(scales.flatten().tolist())) > 1, "the channels must really have distinct scales"
    x = np.random.default_rng(1).uniform(-1, 1, (B, T, I))
    if exact is not True:
        with pytest.raises(GatesimError, match=exact):
            simulate(layer, x)
        return
    result = simulate(layer, x)  # zero initial states, as torch's RNNs start
    hidden = result.int_outputs[0] * result.scales[0]
    np.testing.assert_array_equal(hidden, brevitas_outputs(layer, x, kwargs.get("batch_first", True)))


def test_quant_linear_with_per_channel_scales_is_exact():
    """A user's cell whose QuantLinears quantize weights per output channel (scales 2^-3..2^2
    apart): every channel accumulates and requantizes on its own grid, bit-exactly."""
    from tests.user_cells import FixedElman

    torch.manual_seed(0)
    module = FixedElman(I, H, weight_quant=PER_CHANNEL)
    spread_channels(module)
    assert len(set(module.wx.quant_weight().scale.flatten().tolist())) > 1
    result = simulate(module, np.random.default_rng(1).uniform(-1, 1, (B, T, I)), check_brevitas=True)
    assert result.brevitas["bit_exact"] is True and result.brevitas["elements_compared"] == B * T * H


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.sampled_from(["gru", "lstm", "add_gru", "add_lstm"]), weight_bits=st.sampled_from([3, 4, 8]),
       act_bits=st.sampled_from([4, 6, 8]), seed=st.integers(0, 2**16))
def test_built_in_cells_with_per_channel_scales_are_exact(cell, weight_bits, act_bits, seed):
    """The built-in cells with `weight_scaling="per_channel"` and rows 2^-3..2^2 apart: distinct
    power-of-two scales per output channel, and the simulator equals the cell's own forward."""
    from gatesim.cells import CellConfig, build_cell

    torch.manual_seed(seed)
    module = build_cell(cell, I, H, CellConfig(weight_bits=weight_bits, act_bits=act_bits,
                                               weight_scaling="per_channel"))
    spread_channels(module)
    scales = [m.quant_weight().scale for m in module.modules() if hasattr(m, "quant_weight")]
    assert scales and all(len(set(s.flatten().tolist())) > 1 for s in scales), "channels must differ"
    result = simulate(module, np.random.default_rng(seed).uniform(-1, 1, (B, T, I)), check_brevitas=True)
    assert result.brevitas["bit_exact"] is True, result.brevitas
    assert result.brevitas["elements_compared"] == B * T * H * (2 if "lstm" in cell else 1)


def test_inputs_quantized_upstream_and_states_from_the_signature():
    """QuantLinears without input quantizers, fed by QuantIdentity layers, in a module with no
    example_inputs: zero states from forward(x, h) and its input_size / hidden_size."""
    from tests.user_cells import UpstreamElman

    torch.manual_seed(0)
    result = simulate(UpstreamElman(I, H), np.random.default_rng(1).uniform(-1, 1, (B, T, I)), check_brevitas=True)
    assert result.brevitas["bit_exact"] is True and result.brevitas["elements_compared"] == B * T * H


def test_float_scales_are_one_grid_and_exactness_is_said_to_be_unknown():
    """Brevitas' defaults (float scales): grids a float rounding apart are one grid; no float
    run is exact on such grids, so bit_exact is null and the reason names a node."""
    torch.manual_seed(0)
    result = simulate(QuantLSTM(I, H, batch_first=True), np.random.default_rng(1).uniform(-1, 1, (B, T, I)),
                      check_brevitas=True)
    assert result.brevitas["bit_exact"] is None
    assert "is not a power of two" in result.brevitas["reference"]


WEIGHT_PRESETS = ["Int8WeightPerTensorFixedPoint", "Int8WeightPerChannelFixedPoint", "Int8WeightPerTensorFloat",
                  "Int8WeightPerChannelFloat", "Int8WeightPerChannelFloatDecoupled", "Int4WeightPerTensorFloatDecoupled"]
ACT_PRESETS = ["Int8ActPerTensorFixedPoint", "Int8ActPerTensorFixedPointMinMaxInit", "Int8ActPerTensorFloat",
               "Int8ActPerTensorFloatMinMaxInit"]


def preset(name: str, bits: int, **attrs):
    base = getattr(presets if hasattr(presets, name) else fixed_point_presets, name)
    if "MinMaxInit" in name:
        attrs = {"min_val": -1.0, "max_val": 1.0, **attrs}
    return type(f"{name}{bits}", (base,), {"bit_width": bits, **attrs})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cls=st.sampled_from([QuantLSTM, QuantRNN]), weight=st.sampled_from(WEIGHT_PRESETS),
       act=st.sampled_from(ACT_PRESETS), bits=st.sampled_from([4, 8]), spread=st.booleans(),
       seed=st.integers(0, 2**16))
def test_no_brevitas_preset_is_ever_silently_wrong(cls, weight, act, bits, spread, seed):
    """Over Brevitas' own presets (fixed point, min-max init, float, per-channel, decoupled;
    4 and 8 bits): bit_exact is True, or null with the reason named, or the run is refused
    with a GatesimError - never a result that differs from Brevitas without saying so."""
    torch.manual_seed(seed)
    kwargs = dict(weight_quant=preset(weight, bits), io_quant=preset(act, bits), gate_acc_quant=preset(act, 8))
    if cls is QuantLSTM:
        kwargs.update(sigmoid_quant=unsigned_act_quant(8, 1.0), tanh_quant=signed_act_quant(8, 1.0),
                      cell_state_quant=preset(act, 8))
    layer = cls(I, H, batch_first=True, **kwargs)
    if spread:
        spread_channels(layer)
    x = np.random.default_rng(seed).uniform(-1, 1, (2, 4, I))
    try:  # a preset Brevitas' own layer cannot run (decoupled weights in a recurrent layer) tests nothing
        brevitas_outputs(layer, x, True)
    except RuntimeError:
        assume(False)
    try:
        result = simulate(layer, x, check_brevitas=True)
    except GatesimError as exc:
        assert str(exc)  # refused, with its reason
        return
    verdict = result.brevitas
    assert verdict["bit_exact"] is not False, verdict
    if verdict["bit_exact"]:  # and against the layer's own forward, not only its step code
        np.testing.assert_array_equal(result.int_outputs[0] * result.scales[0], brevitas_outputs(layer, x, True))
    if verdict["bit_exact"] is None:
        assert verdict["reference"].startswith("none exact (") and "grid" in verdict["reference"]
