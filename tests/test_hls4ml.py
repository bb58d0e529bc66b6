"""The `hls4ml` fixed-point preset: ap_fixed's casts, and torch's LSTM/GRU as hls4ml builds
them, against hls4ml's own C simulation compiled with g++ (skipped, with the reason, where
hls4ml or g++ is missing; CI installs both)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli import app
from gatesim import GatesimError
from gatesim.fixedpoint.hls4ml import ApFixed, Hls4mlTypes, simulate_hls4ml
from gatesim.validate.hls4ml import missing

needs_hls4ml = pytest.mark.skipif(missing() is not None and os.environ.get("CI") != "true",
                                  reason=f"validate hls4ml cannot run here: {missing()}")


@pytest.mark.parametrize("mode, values, expected", [
    # ap_fixed<8,4> (4 fractional bits), values in 1/64ths so 2 bits are dropped
    ("truncate", [-19, -18, -17, 17, 18, 19], [-5, -5, -5, 4, 4, 4]),   # toward -inf: -0.3 -> -0.3125
    ("half_up", [-19, -18, -17, 17, 18, 19], [-5, -4, -4, 4, 5, 5]),    # ties toward +inf (AP_RND)
    ("half_even", [-19, -18, -17, 17, 18, 22], [-5, -4, -4, 4, 4, 6]),  # ties to even (AP_RND_CONV)
])
def test_ap_fixed_rounding_modes(mode, values, expected):
    t = ApFixed(8, 4, rounding=mode)
    np.testing.assert_array_equal(t.rescale(np.array(values), 6), expected)


def test_ap_fixed_overflow_modes_and_parsing():
    wrap, sat = ApFixed.parse("ap_fixed<6,2>"), ApFixed.parse("ap_fixed<6,2,AP_TRN,AP_SAT>")
    assert (wrap.rounding, wrap.overflow, sat.overflow) == ("truncate", "wrap", "saturate")
    assert ApFixed.parse("fixed<18,8,RND_CONV,WRAP,0>").rounding == "half_even"  # hls4ml's own spelling
    np.testing.assert_array_equal(wrap.fit(np.array([31, 32, -33, 95]))[0], [31, -32, 31, 31])  # two's complement
    np.testing.assert_array_equal(sat.fit(np.array([31, 32, -33, 95]))[0], [31, 31, -32, 31])
    for bad in ("ap_fixed<10>", "ap_fixed<16,6,AP_SAT,AP_TRN>", "ap_fixed<40,6>", "float"):
        with pytest.raises(GatesimError, match="ap_fixed|width"):
            ApFixed.parse(bad)


def test_the_preset_refuses_what_hls4ml_does_not_convert():
    x = np.zeros((1, 2, 3))
    with pytest.raises(GatesimError, match="nn.LSTM and nn.GRU"):
        simulate_hls4ml(torch.nn.RNN(3, 4, batch_first=True), x)
    with pytest.raises(GatesimError, match="one layer, one direction"):
        simulate_hls4ml(torch.nn.GRU(3, 4, num_layers=2, batch_first=True), x)
    with pytest.raises(GatesimError, match="register class 'acc'"):
        Hls4mlTypes.of("ap_fixed<16,6>", acc="ap_fixed<20,8>")


@needs_hls4ml
def test_validate_hls4ml_is_bit_exact_against_its_c_simulation():
    """Every step's h of an LSTM and a GRU, with torch's weights and with weights x4 / inputs x3
    (accumulators and states wrap, tables clamp), equal hls4ml's C simulation element for
    element; the JSON rows keep the contract's keys."""
    runner = CliRunner()
    rows = []
    for layer, precision in (("lstm", "ap_fixed<16,6>"), ("gru", "ap_fixed<10,4>")):
        r = runner.invoke(app, ["validate", "hls4ml", "--json", "--cell", layer, "--precision", precision])
        assert r.exit_code == 0, r.output
        rows += json.loads(r.stdout)["rows"]
    assert len(rows) == 4
    for row in rows:
        assert {"layer", "precision", "elements_compared", "mismatches", "max_lsb", "explained"} <= row.keys()
        assert row["elements_compared"] == 64 * 6 * 8
        assert row["mismatches"] == 0 and row["max_lsb"] == 0 and row["explained"] is True, row
    stressed = [r for r in rows if r["weight_scale"] == 4 and r["precision"] == "ap_fixed<10,4>"]
    assert stressed and all(sum(r["overflows"].values()) > 0 for r in stressed)  # wrap-around compared too


@needs_hls4ml
@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_hls4ml_units_equal_the_fpga_models(layer, tmp_path):
    """The multipliers per kernel (hls4ml's multiplier_limit, evaluated from its own
    parameters.h) and the activation table sizes hls4ml writes equal the units gatesim's FPGA
    model builds for the same layer, at a reuse factor that divides the kernels and one that
    does not (hls4ml rounds up)."""
    from gatesim.validate.hls4ml import compare_units

    rows = [r for reuse in (1, 5) for r in compare_units(layer, 8, reuse, str(tmp_path / f"rf{reuse}"))]
    units = {(r["reuse_factor"], r["unit"]) for r in rows}
    assert {(5, "input multipliers"), (5, "recurrent multipliers"), (1, "sigmoid table entries"),
            (1, "tanh table entries")} <= units
    gates = {"lstm": 4, "gru": 3}[layer]
    by = {(r["reuse_factor"], r["unit"]): r for r in rows}
    assert by[5, "input multipliers"]["hls4ml"] == -(-4 * gates * 8 // 5)  # parsed, not defaulted
    assert all(r["equal"] for r in rows), [r for r in rows if not r["equal"]]
    # a hidden size equal to the input size (4): the two kernels are still told apart
    square = compare_units(layer, 4, 1, str(tmp_path / "square"))
    assert {r["unit"] for r in square} >= {"input multipliers", "recurrent multipliers"}
    assert all(r["equal"] for r in square), square
