"""Cost models: figures follow the configs' formulas, FPGA against a published design, errors."""
import math
from pathlib import Path

import pytest
import yaml

import gatesim
from gatesim import CellConfig, GatesimError
from gatesim.costs import estimate
from gatesim.costs import config as cost_config
from gatesim.costs.config import COSTS_DIR
from gatesim.pipeline import estimate_cell, template

ROOT = Path(__file__).resolve().parents[1]
CPU = yaml.safe_load((COSTS_DIR / "cpu.yaml").read_text())
FPGA = yaml.safe_load((COSTS_DIR / "fpga.yaml").read_text())


def graph(cell, i=8, h=16, config=None, batch=1):
    return template(cell, i, h, config or CellConfig(), batch).at(i, h, batch)


@pytest.mark.parametrize("name", ["cpu", "fpga"])
def test_every_number_in_the_cost_configs_has_a_source(name):
    def leaves(node, path=""):
        if isinstance(node, dict) and "value" in node:
            yield path, node
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, f"{path}.{key}")

    data = yaml.safe_load((COSTS_DIR / f"{name}.yaml").read_text())
    found = list(leaves(data))
    assert found
    assert all(len(leaf["source"]) > 10 and leaf["value"] > 0 for _, leaf in found)


def test_cpu_integer_energy_follows_the_qtools_fits():
    """ReLU and add energy per element = 0.003125 pJ x operand bits (QTools add fit)."""
    g = graph("add_gru", config=CellConfig(weight_bits=6, act_bits=6))
    est = estimate(g, "cpu")
    per_bit = CPU["energy"]["int_add_pj_per_bit"]["value"]
    relu = sum(row["count"] * row["bits"] for row in g.counts_by_bits() if row["kind"] == "relu")
    assert est.by_kind["relu"]["energy_pj"] == pytest.approx(relu * per_bit)
    m2, m1 = CPU["energy"]["int_mul_pj_per_bit2"]["value"], CPU["energy"]["int_mul_pj_per_bit"]["value"]
    mac = [n for n in est.by_node if n["kind"] == "mac"][0]
    op = g.graph.nodes[mac["node"]]["op"]
    assert mac["energy_pj"] == pytest.approx(op.count * (m2 * op.bits**2 + m1 * op.bits + per_bit * op.out_bits))


def test_cpu_eager_pays_one_call_per_op_and_fused_one_per_step():
    g = graph("add_gru")
    lat = CPU["latency"]
    eager, fused = estimate(g, "cpu", mode="eager"), estimate(g, "cpu", mode="fused")
    calls = g.dispatches
    assert eager.details["per_step"]["overhead_s"] == pytest.approx(
        lat["step_s"]["value"] + calls * lat["dispatch_s"]["value"])
    assert fused.details["per_step"]["overhead_s"] == pytest.approx(
        lat["fused_launch_s"]["value"] + lat["fused_module_s"]["value"] + 2 * lat["fused_extern_s"]["value"])
    assert graph("add_gru").dispatches > graph("gru").dispatches  # more, smaller kernels


def test_cpu_steps_scale_the_figures():
    one, ten = estimate(graph("lstm"), "cpu"), estimate(graph("lstm"), "cpu", steps=10)
    assert ten.energy_pj == pytest.approx(10 * one.energy_pj)
    assert ten.latency_s == pytest.approx(10 * one.latency_s)


def test_fpga_units_follow_the_reuse_factor_and_operand_widths():
    g = graph("gru", i=8, h=16, config=CellConfig(weight_bits=4, act_bits=4))
    for reuse in (1, 4):
        est = estimate(g, "fpga", reuse_factor=reuse)
        macs = g.counts()["mac"]
        mults = sum(math.ceil(r["count"] / reuse) for r in est.by_node if r["kind"] in ("mac", "mul", "mul_const"))
        assert est.resources["multipliers"] == mults
        assert est.resources["multipliers"] >= math.ceil(macs / reuse)
        assert est.resources["dsp"] == 0  # 4-bit products go to LUTs
    wide = estimate(graph("gru", config=CellConfig(weight_bits=16, act_bits=16)), "fpga")
    assert wide.resources["dsp"] >= wide.resources["multipliers"] * 0.5
    assert estimate(g, "fpga", reuse_factor=4).resources["bram18"] > estimate(g, "fpga").resources["bram18"]


def test_fpga_add_gated_cells_need_no_var_x_var_multiplier():
    mul = estimate(graph("gru"), "fpga")
    add = estimate(graph("add_gru"), "fpga")
    assert any(r["kind"] == "mul" for r in mul.by_node) and not any(r["kind"] == "mul" for r in add.by_node)
    assert add.resources["multipliers"] < mul.resources["multipliers"]


def published():
    return yaml.safe_load((ROOT / "tests/fixtures/fpga_published.yaml").read_text())


@pytest.mark.parametrize("entry", published(), ids=lambda e: e["name"])
def test_fpga_model_beside_a_published_design(entry):
    """docs/estimate.md states these errors; a change that moves them far is a regression."""
    d = entry["design"]
    r = estimate_cell(d["cell"], d["input_size"], d["hidden_size"], "fpga", 1,
                      CellConfig(weight_bits=d["bits"], act_bits=d["bits"]), steps=d["steps"],
                      reuse_factor=d["reuse_factor"], recurrent_reuse_factor=d["recurrent_reuse_factor"],
                      clock_mhz=d["clock_mhz"], part=d["part"])
    ours = {**{k: r["resources"][k] for k in ("lut", "ff", "dsp", "bram18")},
            "latency_cycles": r["resources"]["sequence_cycles"]}
    for key, value in entry["published"].items():
        assert 0.25 <= ours[key] / value <= 4, (key, ours[key], value)


def test_ratios_are_given_for_the_counterpart():
    r = estimate_cell("gru", 8, 16, "fpga", reuse_factor=2)
    assert r["add_vs_mul"]["pair"] == "add_gru/gru"
    add = estimate_cell("add_gru", 8, 16, "fpga", reuse_factor=2)
    assert r["add_vs_mul"]["energy_pj"] == pytest.approx(add["energy_pj"] / r["energy_pj"])


def test_library_estimate_takes_a_module():
    est = gatesim.estimate(gatesim.build_cell("lstm", 4, 8), target="cpu", mode="fused")
    assert est.target == "cpu" and est.latency_s > 0 and est.energy_pj > 0
    assert set(est.to_json()) >= {"target", "energy_pj", "latency_s", "resources", "by_kind"}


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("target, params, message", [
    ("gpu", {}, "unknown target 'gpu'; allowed: cpu, fpga"),
    ("fpga", {"reuse_factor": 0}, "reuse_factor=0"),
    ("fpga", {"clock_mhz": -5}, "clock_mhz=-5"),
    ("fpga", {"part": "xc7z020"}, "unknown part 'xc7z020'"),
    ("cpu", {"mode": "jit"}, "mode='jit'"),
])
def test_bad_parameters_are_named(target, params, message):
    with pytest.raises(GatesimError, match=message.replace("(", r"\(")):
        estimate(graph("gru"), target, **params)


def test_malformed_cost_yaml_names_file_and_key(tmp_path, monkeypatch):
    broken = yaml.safe_load((COSTS_DIR / "cpu.yaml").read_text())
    broken["energy"]["float32_add_pj"]["value"] = -1
    del broken["latency"]["clock_hz"]
    (tmp_path / "costs").mkdir()
    (tmp_path / "costs" / "cpu.yaml").write_text(yaml.safe_dump(broken))
    monkeypatch.setattr(cost_config, "COSTS_DIR", tmp_path / "costs")
    with pytest.raises(GatesimError, match=r"cpu.yaml: .*energy.float32_add_pj.value.*greater than 0.*"
                                           r"latency.clock_hz: Field required"):
        estimate(graph("gru"), "cpu")
    (tmp_path / "costs" / "cpu.yaml").write_text("energy: [1, 2\n")
    with pytest.raises(GatesimError, match="cpu.yaml: not valid YAML"):
        estimate(graph("gru"), "cpu")
    (tmp_path / "costs" / "cpu.yaml").unlink()
    with pytest.raises(GatesimError, match="cpu.yaml: no such file"):
        estimate(graph("gru"), "cpu")


def test_profile_of_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"schema_version": 0, "target": "cpu"}')
    with pytest.raises(GatesimError, match="schema_version 0; this gatesim reads version 1"):
        estimate(graph("gru"), "cpu", profile=path)


def test_fpga_energy_is_split_and_a_design_its_part_cannot_hold_is_infeasible():
    """Static and dynamic energy add up to the total; a design beyond its part's LUTs is an
    infeasible sweep point with its utilisation, not a costed one."""
    from gatesim.pipeline import estimate_cell, row

    small = estimate_cell("gru", 8, 16, "fpga", config=CellConfig(weight_bits=8, act_bits=8), steps=10)
    assert small["infeasible"] is None and small["static_energy_pj"] > 0 and small["dynamic_energy_pj"] > 0
    assert small["static_energy_pj"] + small["dynamic_energy_pj"] == pytest.approx(small["energy_pj"])
    point = {"cell": "lstm", "input_size": 128, "hidden_size": 512, "steps": 1, "batch": 1, "weight_bits": 8,
             "act_bits": 8, "gate_bits": None, "acc_bits": None, "inhibit": "signed", "candidate_act": "hardtanh",
             "theta": 1.0, "target": "fpga", "params": {}}
    out = row(point)
    assert out["feasible"] is False and out["error"].startswith("does not fit xcvu9p: lut ")
    assert out["energy_pj"] is None and out["fpga_utilization_lut"] > 1
