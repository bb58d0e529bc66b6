"""The built-in cells: float GRU/LSTM equal torch's, add-gated cells follow their equations."""
import pytest
import torch

from gatesim.cells import CELLS, CellConfig, Sequence, build_cell
from gatesim.cells.layers import inhibit

B, T, I, H = 3, 7, 5, 6


def _copy_torch_weights(cell, ref):
    with torch.no_grad():
        cell.input_linear.weight.copy_(ref.weight_ih_l0)
        cell.input_linear.bias.copy_(ref.bias_ih_l0)
        cell.hidden_linear.weight.copy_(ref.weight_hh_l0)
        cell.hidden_linear.bias.copy_(ref.bias_hh_l0)


@pytest.mark.parametrize("name, ref_cls", [("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)])
def test_unquantized_cells_match_torch(name, ref_cls):
    torch.manual_seed(0)
    ref = ref_cls(I, H, batch_first=True)
    cell = build_cell(name, I, H, CellConfig.unquantized())
    _copy_torch_weights(cell, ref)
    x = torch.randn(B, T, I)
    state = tuple(torch.randn(B, H) for _ in range(cell.n_states))
    ours, final = Sequence(cell)(x, state)
    ref_state = state[0][None] if name == "gru" else tuple(s[None] for s in state)
    theirs, ref_final = ref(x, ref_state)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    ref_final = (ref_final,) if name == "gru" else ref_final
    for a, b in zip(final, ref_final):
        torch.testing.assert_close(a, b[0], rtol=1e-5, atol=1e-6)


def test_inhibit_shrinks_toward_zero():
    v = torch.tensor([-0.9, -0.2, 0.0, 0.3, 0.8])
    s = torch.full_like(v, 0.25)
    assert inhibit(v, s).tolist() == pytest.approx([-0.65, 0.0, 0.0, 0.05, 0.55])
    assert inhibit(v, torch.zeros_like(v)).tolist() == pytest.approx(v.tolist())
    assert inhibit(v, s, signed=False).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.05, 0.55])


def test_add_gru_closed_update_gate_keeps_state():
    """z = 0 keeps h fully and relu(theta - z) = theta >= |n| blocks the candidate."""
    cell = build_cell("add_gru", I, H, CellConfig.unquantized(theta=1.0))
    with torch.no_grad():
        for lin in (cell.input_linear, cell.hidden_linear):
            lin.weight.zero_()
            lin.bias.zero_()
        cell.input_linear.bias[2 * H:] = 0.7  # candidate n = 0.7, gates r = z = 0
    h = torch.linspace(-0.9, 0.9, H).repeat(B, 1)
    torch.testing.assert_close(cell(torch.randn(B, I), h), h)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantized_cells_stay_on_their_grid(name, bits):
    torch.manual_seed(1)
    cell = build_cell(name, I, H, CellConfig(weight_bits=bits, act_bits=bits))
    out, final = Sequence(cell)(torch.rand(B, T, I) * 2 - 1)
    step = 2.0 ** -(bits - 1)  # state quantizer: [-1, 1) in 2^(bits-1) steps per unit
    ints = out / step
    assert torch.equal(ints, torch.round(ints))
    assert out.abs().max() <= 1.0
    assert len(final) == cell.n_states


def test_config_rejects_out_of_range_bits():
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        CellConfig(weight_bits=1)
