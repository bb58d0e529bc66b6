"""Tracing modules that are not built-in cells, and errors that name the node."""
import pytest
import torch
from brevitas.nn import QuantLSTM, QuantRNN

from gatesim.errors import GatesimError
from gatesim.trace import trace
from tests.user_cells import data_dependent, elman, uses_exp


def test_user_module_traces_with_its_own_quantizer_widths():
    i, h = 5, 7
    g = trace(elman(i, h), batch=2)
    counts = g.counts()
    assert counts["mac"] == 2 * h * (i + h)
    assert counts["tanh"] == 2 * h
    assert counts["mul_const"] == 2 * h and counts["mul"] == 0
    assert counts["relu"] == 2 * h
    tanh_rows = [r for r in g.counts_by_bits() if r["kind"] == "tanh"]
    assert [r["operand_bits"] for r in tanh_rows] == [[6]]


def test_nodes_carry_kind_widths_and_variable_flags():
    g = trace(elman(3, 4))
    macs = [d["op"] for _, d in g.graph.nodes(data=True) if d["op"].kind == "mac"]
    assert all(m.operand_is_var == (True, False) for m in macs)  # data x constant weight
    assert {d["fx_node"] for _, d in g.graph.nodes(data=True) if d["op"].kind == "mac"} == {"wx", "uh"}


def test_op_without_rule_names_the_node_and_op():
    with pytest.raises(GatesimError, match=r"node 'exp'.*torch.*exp"):
        trace(uses_exp(3, 4))


def test_untraceable_module_says_why():
    with pytest.raises(GatesimError, match="cannot trace DataDependent"):
        trace(data_dependent(3, 4))


def test_brevitas_quant_lstm_as_shipped():
    i, h = 6, 5
    g = trace(QuantLSTM(i, h))
    counts = g.counts()
    assert counts["mac"] == 4 * h * (i + h)
    assert (counts["mul"], counts["sigmoid"], counts["tanh"]) == (3 * h, 3 * h, 2 * h)
    assert g.depth()["multiplicative"] == 2
    assert {r["bits"] for r in g.counts_by_bits() if r["kind"] == "mac"} == {8}


def test_brevitas_quant_rnn_as_shipped():
    i, h = 6, 5
    counts = trace(QuantRNN(i, h)).counts()
    assert counts["mac"] == h * (i + h)
    assert counts["tanh"] == h and counts["mul"] == 0


def test_multi_layer_quant_lstm_is_refused_clearly():
    with pytest.raises(GatesimError, match="single-layer"):
        trace(QuantLSTM(3, 4, num_layers=2))


def test_example_inputs_are_required_for_plain_modules():
    with pytest.raises(GatesimError, match="example_inputs"):
        trace(torch.nn.Linear(3, 4))
    assert trace(torch.nn.Linear(3, 4), torch.zeros(2, 3)).counts()["mac"] == 2 * 3 * 4


def test_library_entry_points_and_operand_signedness():
    import gatesim

    g = gatesim.trace(gatesim.build_cell("gru", 3, 4))
    mac = next(d["op"] for _, d in g.graph.nodes(data=True) if d["op"].kind == "mac")
    assert mac.operand_signed == (True, True)
    sig = next(d["op"] for _, d in g.graph.nodes(data=True) if d["op"].kind == "sigmoid")
    assert sig.signed is False  # gate outputs are unsigned
    assert gatesim.count("gru", 3, 4)["per_step"] == g.counts()


class _Half(torch.nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lin = torch.nn.Linear(input_size, hidden_size // 2)

    def forward(self, x, h):
        return self.lin(x)

    def example_inputs(self, batch=1):
        return torch.zeros(batch, self.input_size), torch.zeros(batch, self.hidden_size)


def test_template_refuses_shapes_that_are_not_affine_in_the_sizes():
    from gatesim.pipeline import count

    with pytest.raises(GatesimError, match="not affine"):
        count(_Half, 3, 10)
