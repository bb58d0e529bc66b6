"""`gatesim simulate`: JSON contract, readable table, overflow flags, one-line errors."""
import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_simulate_json_contract_with_brevitas_check():
    r = run("simulate", "lstm", "--input", "4", "--hidden", "6", "--steps", "5", "--batch", "3",
            "--weight-bits", "6", "--act-bits", "5", "--seed", "3", "--check-brevitas", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"bit_exact", "mismatches", "elements_compared", "overflow", "widest_bits",
            "cell_steps_per_s"} <= out.keys()
    assert out["bit_exact"] is True and out["mismatches"] == 0
    assert out["elements_compared"] == 3 * 5 * 6 * 2  # h and c at every step
    assert {"count", "nodes"} <= out["overflow"].keys() and out["overflow"]["count"] == 0
    assert out["widest_bits"]["mul"] >= 9 and out["cell_steps_per_s"] > 0


def test_without_check_bit_exact_is_null():
    out = json.loads(run("simulate", "add_gru", "-i", "3", "-H", "4", "--json").stdout)
    assert out["bit_exact"] is None and out["mismatches"] is None
    assert "mul" not in out["widest_bits"]


def test_narrow_accumulator_overflows_are_flagged_everywhere():
    args = ["simulate", "gru", "-i", "8", "-H", "16", "--acc-bits", "10", "--overflow", "saturate"]
    out = json.loads(run(*args, "--json").stdout)
    assert out["overflowed"] is True and out["overflow"]["count"] > 0
    assert out["overflow"]["mode"] == "saturate"
    assert set(out["overflow"]["by_mode"]) == {"wrap", "saturate"}
    table = run(*args).stdout
    assert "OVERFLOWED" in table and "wrap:" in table and "saturate:" in table


def test_table_is_readable():
    r = run("simulate", "gru", "-i", "3", "-H", "4", "--check-brevitas")
    assert r.exit_code == 0, r.output
    assert "bit-exact" in r.stdout and "widest intermediate per op kind" in r.stdout
    assert "cell-steps/s" in r.stdout


def test_user_module_by_spec():
    out = json.loads(run("simulate", "module:tests.user_cells:fixed_elman", "-i", "3", "-H", "5",
                         "--check-brevitas", "--json").stdout)
    assert out["bit_exact"] is True


@pytest.mark.parametrize("args, message", [
    (["--overflow", "clip"], "--overflow='clip': allowed values are wrap, saturate"),
    (["--acc-bits", "1"], "--acc-bits=1: bit widths must be between 2 and 32"),
    (["--steps", "0"], "--steps=0"),
    (["--weight-bits", "40"], "--weight-bits=40"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    r = run("simulate", "gru", "-i", "3", "-H", "4", *args)
    assert r.exit_code == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unsupported_module_names_the_node():
    r = run("simulate", "module:tests.user_cells:elman", "-i", "3", "-H", "4")
    assert r.exit_code == 2
    assert "node 'wx'" in r.stderr and "bias" in r.stderr


def test_acc_bits_is_the_accumulator_register_in_counting_and_simulation_alike():
    """One meaning: the width the sums are kept in. Counting shows it, the simulator narrows
    to it, and the bias quantizer (32 bits on the accumulator grid) does not depend on it."""
    from gatesim.cells import CellConfig, build_cell
    from gatesim.pipeline import graph_at, simulate_cell

    narrow = CellConfig(weight_bits=4, act_bits=4, acc_bits=9)
    assert graph_at("gru", 4, 8, 1, narrow).accumulator_bits() == 9
    assert graph_at("gru", 4, 8, 1, CellConfig(weight_bits=4, act_bits=4)).accumulator_bits() > 9
    run = simulate_cell("gru", 4, 8, steps=6, batch=4, config=narrow)
    assert run["options"]["acc_bits"] == 9 and run["overflow"]["acc_bits"] == 9
    assert all(n["register_bits"] == 9 for n in run["overflow"]["nodes"] if n["kind"] == "mac")
    assert build_cell("gru", 4, 8, narrow).q.bias.bit_width == 32


def test_simulate_rounds_the_tables_estimate_rounds_and_reports_the_error():
    import numpy as np
    import torch

    from gatesim import build_cell, simulate
    from gatesim.cells import CellConfig
    from gatesim.pipeline import design_params, simulate_cell

    config = CellConfig(weight_bits=3, act_bits=3)
    run = simulate_cell("add_gru", 4, 8, steps=10, batch=4, config=config, rounding_bits=4)
    derived = design_params("add_gru", 4, 8, "tfhe", config, {"bounds": "observed", "rounding_bits": 4})
    assert run["rounding"]["tables"] == derived["rounding"] and run["rounding"]["tables"]
    assert simulate_cell("add_gru", 4, 8, steps=10, batch=4, config=config)["rounding"] is None

    torch.manual_seed(0)
    module = build_cell("add_gru", 4, 8, config)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 10, 4))
    exact, rounded = simulate(module, x), simulate(module, x, rounding=derived["rounding"])
    differ = sum(int((a != b).sum()) for a, b in zip(exact.int_outputs, rounded.int_outputs))
    assert rounded.rounding["output_error"]["mismatched_elements"] == differ
