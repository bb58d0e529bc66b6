"""Op counts: the closed forms per step (GRU mac = 3H(I+H), mul = 3H, ...; add-gated cells no mul,
no sigmoid) hold for every size; matmul MACs agree with torch."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from gatesim.cells import CELLS, CellConfig, build_cell
from gatesim.pipeline import count
from gatesim.trace import trace


def closed_form(cell: str, i: int, h: int) -> dict[str, int]:
    gates = 4 if "lstm" in cell else 3
    expected = {"mac": gates * h * (i + h)}
    if cell == "gru":
        expected.update(mul=3 * h, sigmoid=2 * h, tanh=h)
    elif cell == "lstm":
        expected.update(mul=3 * h, sigmoid=3 * h, tanh=2 * h)
    else:
        expected.update(mul=0, sigmoid=0)
    return expected


CONFIGS = [CellConfig(), CellConfig(weight_bits=4, act_bits=3), CellConfig.unquantized()]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("config", CONFIGS, ids=["int8", "w4a3", "float"])
@settings(max_examples=25, deadline=None)
@given(i=st.integers(1, 300), h=st.integers(1, 300), batch=st.integers(1, 9))
def test_closed_forms_hold_for_every_size(cell, config, i, h, batch):
    per_step = count(cell, i, h, batch=batch, config=config)["per_step"]
    for kind, n in closed_form(cell, i, h).items():
        assert per_step[kind] == n * batch, kind


@pytest.mark.parametrize("cell", list(CELLS))
def test_recount_matches_a_fresh_trace(cell):
    """The template's re-evaluated shapes give the same graph as tracing that size directly."""
    config = CellConfig(weight_bits=6, act_bits=5)
    from_template = count(cell, 3, 4, config=config)  # template traced at another size first
    from_template = count(cell, 11, 17, steps=5, batch=2, config=config)
    fresh = trace(build_cell(cell, 11, 17, config), batch=2)
    assert from_template["per_step"] == fresh.counts()
    assert from_template["depth"] == fresh.depth()
    assert from_template["per_sequence"] == {k: 5 * v for k, v in fresh.counts().items()}


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("i, h", [(1, 1), (7, 13), (32, 128)])
def test_macs_equal_flop_counter_matmul_flops(cell, i, h):
    module = build_cell(cell, i, h, CellConfig.unquantized())
    inputs = module.example_inputs(batch=4)
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    assert trace(module, *inputs).counts()["mac"] == counter.get_total_flops() // 2


def test_depths_show_the_gate_products():
    depth = {c: count(c, 4, 8)["depth"] for c in CELLS}
    assert depth["gru"]["multiplicative"] == 2  # r * (W h) then (1 - z) * n
    assert depth["lstm"]["multiplicative"] == 2  # i * g then o * tanh(c')
    assert depth["add_gru"]["multiplicative"] == depth["add_lstm"]["multiplicative"] == 0
    for c in CELLS:
        assert depth[c]["critical_path"] > depth[c]["nonlinear"] >= 2


def test_gate_product_needs_double_width_only_in_multiply_gated_cells():
    cfg = CellConfig(weight_bits=8, act_bits=8)
    for cell in CELLS:
        rows = count(cell, 4, 8, config=cfg)["per_step_by_bits"]
        muls = [r for r in rows if r["kind"] == "mul"]
        if cell.startswith("add_"):
            assert muls == []
        else:
            assert muls and all(r["operand_bits"] >= [8, 8] for r in muls)


def test_operand_widths_follow_the_quantizers():
    rows = count("gru", 5, 6, config=CellConfig(weight_bits=4, act_bits=6))["per_step_by_bits"]
    macs = [r for r in rows if r["kind"] == "mac"]
    assert [r["operand_bits"] for r in macs] == [[6, 4]]
    assert {r["operand_bits"][0] for r in rows if r["kind"] == "sigmoid"} == {6}


def test_accumulator_width_grows_with_the_reduction():
    def widest_add(i):
        rows = count("lstm", i, 4, config=CellConfig())["per_step_by_bits"]
        return max(r["bits"] for r in rows if r["kind"] == "add")

    assert widest_add(1024) > widest_add(4)
    forced = count("lstm", 1024, 4, config=CellConfig(acc_bits=16))["per_step_by_bits"]
    assert max(r["bits"] for r in forced if r["kind"] == "add") == 16
