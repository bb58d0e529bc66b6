"""The integer simulator: bit-exact against Brevitas, exact integer products on every dtype
path, overflow of narrowed registers, width growth, and clear errors."""
from fractions import Fraction

import numpy as np
import pytest
import torch
from brevitas.nn import QuantLSTM, QuantRNN
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gatesim import CellConfig, GatesimError, build_cell, simulate
from gatesim.cells.quant import bias_quant, signed_act_quant, unsigned_act_quant, weight_quant
from gatesim.simulate.exact import ExactMatmul
from tests.user_cells import fixed_elman

CELLS = ["gru", "lstm", "add_gru", "add_lstm"]
N_STATES = {"gru": 1, "lstm": 2, "add_gru": 1, "add_lstm": 2}


@torch.no_grad()
def brevitas_steps(module, x, states):
    """Every state the module returns, at every step: Brevitas' own fake-quant forward."""
    module.eval()
    state = tuple(torch.as_tensor(s, dtype=torch.float32) for s in states)
    xs = torch.as_tensor(x, dtype=torch.float32)
    per_step = []
    for t in range(xs.shape[1]):
        out = module(xs[:, t], *state)
        state = out if isinstance(out, tuple) else (out,)
        per_step.append(state)
    return [torch.stack([s[i] for s in per_step], 1).double().numpy() for i in range(len(state))]


@st.composite
def cell_configs(draw, cell):
    cfg = {"weight_bits": draw(st.integers(2, 8)), "act_bits": draw(st.integers(2, 8)),
           "gate_bits": draw(st.none() | st.integers(2, 8))}
    if cell.startswith("add"):
        cfg["inhibit"] = draw(st.sampled_from(["signed", "unsigned"]))
        cfg["candidate_act"] = draw(st.sampled_from(["hardtanh", "relu", "identity"]))
        cfg["theta"] = draw(st.sampled_from([0.25, 0.5, 1.0, 1.5]))
    return CellConfig(**cfg)


@pytest.mark.parametrize("cell", CELLS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_integer_outputs_equal_brevitas_element_for_element(cell, data):
    config = data.draw(cell_configs(cell), label="config")
    I, H = data.draw(st.integers(1, 12), label="I"), data.draw(st.integers(1, 24), label="H")
    B, T = data.draw(st.integers(1, 4), label="B"), data.draw(st.integers(1, 50), label="T")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    torch.manual_seed(seed)
    module = build_cell(cell, I, H, config)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.3, 1.3, (B, T, I)).astype(np.float32)  # off-grid: both sides quantize
    states = tuple(rng.uniform(-1, 1, (B, H)).astype(np.float32) for _ in range(N_STATES[cell]))

    result = simulate(module, x, *states, check_brevitas=True)
    expected = brevitas_steps(module, x, states)

    assert result.float32_limits == []  # <= 8-bit cells of this size are exact in float32
    assert result.brevitas["bit_exact"] is True and result.brevitas["mismatches"] == 0
    assert result.brevitas["elements_compared"] == B * T * H * N_STATES[cell]
    for ints, scale, real, ref in zip(result.int_outputs, result.scales, result.outputs, expected):
        assert ints.shape == (B, T, H) and ints.dtype == np.int64
        np.testing.assert_array_equal(ints, ref / scale)  # Brevitas' output / its scale, exactly
        np.testing.assert_array_equal(real, ref)
    assert not result.overflowed


def test_beyond_float32_the_reference_is_float64_and_brevitas_error_is_reported():
    torch.manual_seed(0)
    module = build_cell("add_lstm", 4, 8, CellConfig(weight_bits=24, act_bits=24))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 4))
    result = simulate(module, x, check_brevitas=True)
    assert any("needs" in reason for reason in result.float32_limits)
    assert result.brevitas["reference"].startswith("brevitas float64")
    assert result.brevitas["bit_exact"] is True
    assert {"mismatches", "max_error_lsb"} <= result.brevitas["float32"].keys()
    assert set(result.matmul_paths.values()) == {"float64"}


def test_beyond_float64_no_float_run_is_called_exact():
    torch.manual_seed(0)
    module = build_cell("add_gru", 3, 4, CellConfig(weight_bits=30, act_bits=28))
    result = simulate(module, np.random.default_rng(0).uniform(-1, 1, (2, 3, 3)), check_brevitas=True)
    assert result.brevitas["bit_exact"] is None
    assert "int64" in result.matmul_paths.values()


# ----------------------------------------------------------------------------- exact products


def exact_products(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Python integers: no rounding at any size."""
    return x.astype(object) @ w.T.astype(object)


@pytest.mark.parametrize("value, path", [
    (100, "int8"), (2**11, "float32"), (4097, "float64"), (2**26 + 1, "int64")])
def test_exact_matmul_takes_the_cheapest_exact_path_and_crosses_each_boundary(value, path):
    x = np.array([[value, value], [value - 1, -value]], dtype=np.float64)
    w = np.array([[value, value], [1, -value]], dtype=np.float64)
    matmul = ExactMatmul(w, -value, value)
    assert matmul.path == path
    got = matmul(x.astype(np.int64) if path == "int64" else x)
    assert (got.astype(object) == exact_products(x.astype(np.int64), w.astype(np.int64))).all()


def test_unsigned_8_bit_inputs_do_not_take_the_int8_path():
    w = np.array([[1.0, -2.0], [3.0, 4.0]])
    matmul = ExactMatmul(w, 0, 255)
    assert matmul.path == "float32"
    np.testing.assert_array_equal(matmul(np.array([[255.0, 200.0]])), [[255 - 400, 765 + 800]])


def test_float32_blas_past_the_bound_would_round():
    """Why the bound matters: 4097 * 4097 needs 25 bits, float32 BLAS rounds it."""
    x = np.array([[4097.0, 4097.0]])
    w = np.array([[4097.0, 4097.0]])
    naive = x.astype(np.float32) @ w.T.astype(np.float32)
    assert int(naive[0, 0]) != exact_products(x.astype(np.int64), w.astype(np.int64))[0, 0]
    assert int(ExactMatmul(w, -4097, 4097)(x)[0, 0]) == 2 * 4097 * 4097


# ----------------------------------------------------------------------------- overflow


class OneLinear(nn.Module):
    """h' = q(W x + 0 h): one accumulator per step, easy to check by hand."""

    def __init__(self, i, h):
        super().__init__()
        from brevitas.nn import QuantIdentity, QuantLinear
        self.lin = QuantLinear(i, h, bias=False, weight_quant=weight_quant(8),
                               input_quant=signed_act_quant(8, 1.0), return_quant_tensor=False)
        self.out = QuantIdentity(act_quant=signed_act_quant(8, 1.0), return_quant_tensor=False)

    def forward(self, x, h):
        return self.out(self.lin(x) + 0 * self.out(h))


@pytest.mark.parametrize("mode", ["wrap", "saturate"])
def test_narrow_accumulator_does_what_the_hardware_would(mode):
    torch.manual_seed(1)
    m = OneLinear(16, 6)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 1, 16))
    h0 = np.zeros((5, 6))
    bits = 11
    result = simulate(m, x, h0, acc_bits=bits, overflow=mode)

    # by hand, with NumPy integers: acc = W x, fitted into an 11-bit register, then requantized
    qw = m.lin.quant_weight()
    w_int = (qw.value / qw.scale).round().detach().numpy().astype(np.int64)
    s_in = float(m.lin.input_quant.scale().detach())
    x_int = np.clip(np.rint(x[:, 0] / s_in), -128, 127).astype(np.int64)
    acc = x_int @ w_int.T
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    fitted = ((acc - lo) % 2**bits + lo) if mode == "wrap" else np.clip(acc, lo, hi)
    shift = float(qw.scale.detach()) * s_in / float(m.out.act_quant.scale().detach())
    expected = np.clip(np.rint(fitted * shift), -128, 127)
    np.testing.assert_array_equal(result.int_outputs[0][:, 0], expected)

    assert result.overflowed
    lin_events = [n for n in result.overflow["nodes"] if n["node"] == "lin"]
    assert lin_events[0]["count"] == int(((acc < lo) | (acc > hi)).sum()) > 0
    assert lin_events[0]["register_bits"] == bits
    assert set(result.overflow["by_mode"]) == {"wrap", "saturate"}


def test_overflow_is_counted_located_and_flagged_with_its_output_error():
    torch.manual_seed(0)
    module = build_cell("lstm", 16, 32)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 10, 16))
    result = simulate(module, x, acc_bits=12, check_brevitas=True)
    out = result.to_json()
    assert out["overflowed"] is True and out["overflow"]["count"] > 0
    assert {n["node"] for n in out["overflow"]["nodes"]} <= {"input_linear", "hidden_linear", "add"}
    for mode in ("wrap", "saturate"):
        assert out["overflow"]["by_mode"][mode]["output_error"]["mismatched_elements"] > 0
    assert out["bit_exact"] is True  # Brevitas checks the wide run, never the narrowed one


def test_a_register_as_wide_as_proven_never_overflows():
    torch.manual_seed(0)
    module = build_cell("gru", 8, 16)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8))
    wide = simulate(module, x)
    proven = max(wide.widest_bits(static=True)[k] for k in ("mac", "add"))
    narrow = simulate(module, x, acc_bits=proven)
    assert narrow.overflow["count"] == 0 and not narrow.overflowed
    assert narrow.overflow["output_error"]["mismatched_elements"] == 0
    np.testing.assert_array_equal(narrow.int_outputs[0], wide.int_outputs[0])


def test_narrow_state_overflows_at_the_state_store():
    torch.manual_seed(0)
    module = build_cell("add_gru", 8, 16)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 20, 8))
    result = simulate(module, x, state_bits=3, overflow="saturate")
    stores = [n for n in result.overflow["nodes"] if n["kind"] == "store"]
    assert stores and stores[0]["register_bits"] == 3 and stores[0]["count"] > 0
    assert np.abs(result.int_outputs[0]).max() <= 4


# ----------------------------------------------------------------------------- width growth


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_gate_products_need_double_width_only_in_multiply_gated_cells(bits):
    x = np.random.default_rng(0).uniform(-1, 1, (8, 20, 8))
    for cell in CELLS:
        torch.manual_seed(0)
        module = build_cell(cell, 8, 16, CellConfig(weight_bits=bits, act_bits=bits))
        result = simulate(module, x)
        observed, proven = result.widest_bits(), result.widest_bits(static=True)
        if cell.startswith("add"):
            assert "mul" not in observed and "mul" not in proven
        else:
            assert proven["mul"] >= 2 * bits
            assert observed["mul"] >= 2 * bits - 2


# ----------------------------------------------------------------------------- other modules


def test_brevitas_quant_lstm_and_quant_rnn_are_simulated_bit_exactly():
    quant = dict(weight_quant=weight_quant(6), io_quant=signed_act_quant(8, 1.0),
                 gate_acc_quant=signed_act_quant(8, 4.0), bias_quant=bias_quant(True))
    lstm_extra = dict(sigmoid_quant=unsigned_act_quant(8, 1.0), tanh_quant=signed_act_quant(8, 1.0),
                      cell_state_quant=signed_act_quant(8, 4.0))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 6, 5))
    torch.manual_seed(0)
    for module, n_states in ((QuantLSTM(5, 7, batch_first=True, **quant, **lstm_extra), 2),
                             (QuantRNN(5, 7, batch_first=True, **quant), 1)):
        result = simulate(module, x, *[np.zeros((3, 7))] * n_states, check_brevitas=True)
        assert result.brevitas["bit_exact"] is True, type(module).__name__
        assert result.brevitas["elements_compared"] == 3 * 6 * 7 * n_states


def test_user_module_with_a_float_tanh_folds_it_into_a_table():
    torch.manual_seed(0)
    module = fixed_elman(5, 9)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 7, 5))
    result = simulate(module, x, np.zeros((3, 9)), check_brevitas=True)
    assert result.brevitas["bit_exact"] is True
    assert "tanh" in result.widest_bits()


def test_dequantized_outputs_are_integers_times_scale():
    torch.manual_seed(0)
    result = simulate(build_cell("gru", 3, 4), np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(result.outputs[0], result.int_outputs[0] * result.scales[0])
    assert result.cell_steps == 6 and result.cell_steps_per_s > 0


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def gru():
    torch.manual_seed(0)
    return build_cell("gru", 3, 4)


@pytest.mark.parametrize("kwargs, message", [
    ({"x": np.zeros((2, 3))}, "expected shape (batch, steps, features)"),
    ({"x": np.zeros((2, 3, 3), dtype=complex)}, "real-valued"),
    ({"states": (np.zeros((5, 4)),)}, "batch size 2"),
    ({"states": (np.zeros((2, 4)), np.zeros((2, 4)))}, "forward takes 2 inputs (x and 1 state(s)); got x and 2"),
    ({"overflow": "clip"}, "allowed values are wrap, saturate"),
    ({"acc_bits": 1}, "acc_bits=1"),
    ({"x": np.full((2, 3, 3), 0.3), "strict_inputs": True}, "input 'x'"),
])
def test_bad_input_is_named(gru, kwargs, message):
    x = kwargs.pop("x", np.zeros((2, 3, 3)))
    states = kwargs.pop("states", ())
    with pytest.raises(GatesimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        simulate(gru, x, *states, **kwargs)


def test_on_grid_inputs_pass_the_strict_check(gru):
    x = np.full((2, 3, 3), 0.25)  # a multiple of the 8-bit input step 2**-7
    assert simulate(gru, x, strict_inputs=True).int_outputs[0].shape == (2, 3, 4)


class FloatLinear(nn.Module):
    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantIdentity
        self.q = QuantIdentity(act_quant=signed_act_quant(8, 1.0), return_quant_tensor=False)
        self.lin = nn.Linear(4, 4)

    def forward(self, x, h):
        return self.q(self.lin(self.q(x)) + self.q(h))


class UnquantizedSigmoid(OneLinear):
    def forward(self, x, h):
        return self.out(torch.sigmoid(self.lin(x)) + self.out(h))


class DividesByThree(OneLinear):
    def forward(self, x, h):
        return self.out(self.lin(x) / 3 + self.out(h))


@pytest.mark.parametrize("module, message", [
    (FloatLinear(), "node 'lin': a float torch.nn.Linear has no quantizers"),
    (UnquantizedSigmoid(4, 4), "node 'add'.*real-valued output of sigmoid"),
    (DividesByThree(4, 4), "node 'truediv': division by 3 is not a shift"),
])
def test_unsupported_ops_name_the_node(module, message):
    with pytest.raises(GatesimError, match=message):
        simulate(module, np.zeros((1, 2, 4)), np.zeros((1, 4)))


class FloatScaled(nn.Module):
    """h' = q(W [q(x), q(h)] + b) with Brevitas' float (not power-of-two) scales."""

    def __init__(self, i, h):
        super().__init__()
        from brevitas.nn import QuantIdentity, QuantLinear
        from brevitas.quant import Int8ActPerTensorFloatMinMaxInit, Int8WeightPerTensorFloat, Int32Bias

        class Act(Int8ActPerTensorFloatMinMaxInit):
            min_val, max_val = -1.0, 1.0

        self.q = QuantIdentity(act_quant=Act, return_quant_tensor=False)
        self.lin = QuantLinear(i + h, h, bias=True, weight_quant=Int8WeightPerTensorFloat,
                               input_quant=Act, bias_quant=Int32Bias, return_quant_tensor=False)

    def forward(self, x, h):
        return self.q(self.lin(torch.cat([self.q(x), self.q(h)], -1)))


def test_float_scaled_quantizers_are_exact_integer_arithmetic_without_a_float_reference():
    """Requantizing between grids that are not powers of two is exact rational rounding (an
    integer multiplier + shift); no float run of Brevitas is exact, so its errors are reported."""
    torch.manual_seed(0)
    module = FloatScaled(5, 7)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 6, 5))
    result = simulate(module, x, np.zeros((3, 7)), check_brevitas=True)
    assert any("not a power of two" in reason for reason in result.float32_limits)
    assert result.brevitas["bit_exact"] is None and result.brevitas["reference"].startswith("none exact")
    assert {"mismatches", "max_error_lsb"} <= result.brevitas["float64"].keys()
    assert result.brevitas["float64"]["max_error_lsb"] <= 1  # float rounding, never more

    # the first step by hand in exact rationals: requant(W x + b) from the accumulator grid
    s_in = Fraction(float(module.q.act_quant.scale().detach()))
    qw = module.lin.quant_weight()
    s_w = Fraction(float(qw.scale.detach()))
    w_int = (qw.value / qw.scale).round().detach().numpy().astype(np.int64)
    x_int = np.clip(np.rint(x[:, 0] / float(s_in)), -128, 127).astype(np.int64)
    quant_bias = module.lin.bias_quant(module.lin.bias, module.q.act_quant(torch.zeros(1)), qw)
    b_int = (quant_bias.value / quant_bias.scale).round().detach().numpy().astype(np.int64)
    acc = np.concatenate([x_int, np.zeros((3, 7), np.int64)], 1) @ w_int.T + b_int
    expected = [[max(-128, min(127, round(Fraction(int(a)) * s_in * s_w / s_in))) for a in row] for row in acc]
    np.testing.assert_array_equal(result.int_outputs[0][:, 0], expected)


def test_a_state_read_unquantized_on_a_grid_it_cannot_keep_is_refused(monkeypatch):
    """A user cell returning its state on a finer grid than it is stored on, and reading it
    raw (relu(h)): Brevitas carries the exact value, an integer datapath cannot, so the
    simulator refuses, naming the state and the reader. Without the refusal it would run and
    differ from Brevitas; requantizing the returned state makes it exact."""
    import torch

    from gatesim.simulate.api import simulate
    from gatesim.simulate.engine import Simulator
    from tests.user_cells import Leaky

    torch.manual_seed(0)
    x = torch.rand(2, 6, 4) * 2 - 1
    with pytest.raises(GatesimError, match=r"state 'h'.*reads it unquantized in relu.*Requantize"):
        simulate(Leaky(4, 8).eval(), x)
    monkeypatch.setattr(Simulator, "_raw_readers", lambda self, name: [])
    torch.manual_seed(0)
    assert simulate(Leaky(4, 8).eval(), x, check_brevitas=True).brevitas["bit_exact"] is False
    monkeypatch.undo()
    torch.manual_seed(0)
    assert simulate(Leaky(4, 8, requantize=True).eval(), x, check_brevitas=True).brevitas["bit_exact"] is True
