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
    """hls4ml's reuse factor shares the dense kernels' multipliers: ceil(n_in n_out / R) of them
    (its multiplier_limit; the resource strategy shares min(n_in, R)); every other product
    keeps its own unit."""
    g = graph("gru", i=8, h=16, config=CellConfig(weight_bits=4, act_bits=4))
    ops = {n: d["op"] for n, d in g.graph.nodes(data=True)}
    for reuse, strategy in [(1, "latency"), (4, "latency"), (32, "latency"), (32, "resource")]:
        est = estimate(g, "fpga", reuse_factor=reuse, strategy=strategy)
        for row in est.by_node:
            op = ops[row["node"]]
            if row["kind"] == "mac":
                shared = min(reuse, op.reduction) if strategy == "resource" else reuse
                assert row["units"] == math.ceil(op.count / shared)
            elif row["kind"] in ("mul", "mul_const"):
                assert row["units"] == op.count
        assert est.resources["multipliers"] == sum(r["units"] for r in est.by_node if r["kind"] in ("mac", "mul"))
        assert est.resources["dsp"] == 0  # 4-bit products go to LUTs
    wide = estimate(graph("gru", config=CellConfig(weight_bits=16, act_bits=16)), "fpga")
    assert wide.resources["dsp"] >= wide.resources["multipliers"] * 0.5


def test_fpga_strategy_puts_weights_in_block_ram_reshaped_reuse_deep():
    """Strategy resource: each kernel's weights in BRAM18s 36 bits wide, R words deep (hls4ml's
    ARRAY_RESHAPE block factor n_in n_out / R); latency: constants, no block RAM for them."""
    g = graph("gru", i=64, h=64, config=CellConfig(weight_bits=16, act_bits=16, acc_bits=16))
    ours = estimate(g, "fpga", reuse_factor=64, strategy="resource")
    weights = [r for r in ours.by_node if r["kind"] == "load" and r["bram18"]]
    assert [r["bram18"] for r in weights] == [math.ceil(3 * 64 * 64 // 64 * 16 / 36)] * 2  # 86 each
    assert ours.details["components"]["input_matrix"]["bram18"] == 86
    latency = estimate(g, "fpga", reuse_factor=64)
    assert latency.details["components"]["input_matrix"]["bram18"] == 0
    assert latency.resources["lut"] > ours.resources["lut"]  # the constant weights are muxed per multiplier


def test_fpga_activation_tables_are_shared_per_call_and_hard_ones_need_no_table():
    """hls4ml applies sigmoid to r and z in one call: a 1024-entry table of 16 bits is one BRAM18,
    copied once per two lookups; hard sigmoid/tanh are comparators."""
    g = graph("gru", i=8, h=5, config=CellConfig(weight_bits=16, act_bits=16, acc_bits=16))
    tables = estimate(g, "fpga").details["components"]["activations"]
    assert tables["bram18"] == math.ceil(2 * 5 / 2) + math.ceil(5 / 2)  # one call over 2H, one over H
    hard = estimate(g, "fpga", activation="hard").details["components"]["activations"]
    assert hard["bram18"] == 0 and hard["lut"] < tables["lut"]
    half = estimate(g, "fpga", activation="hard_tanh").details["components"]["activations"]
    assert half["bram18"] == math.ceil(2 * 5 / 2)


def test_fpga_sequence_is_t_steps_unless_pipelined():
    g = graph("lstm", i=8, h=16, config=CellConfig(weight_bits=8, act_bits=8))
    plain = estimate(g, "fpga", steps=10, reuse_factor=4, recurrent_reuse_factor=1).resources
    assert plain["sequence_cycles"] == 10 * plain["cycles_per_step"]
    piped = estimate(g, "fpga", steps=10, reuse_factor=4, recurrent_reuse_factor=1, pipeline_steps=True).resources
    assert piped["sequence_cycles"] == piped["cycles_per_step"] + 9 * piped["initiation_interval_cycles"]
    assert piped["initiation_interval_cycles"] < piped["cycles_per_step"]  # the slower x kernel is off the loop


def test_fpga_static_energy_is_the_parts_static_power_over_the_run():
    g = graph("gru", i=8, h=16, config=CellConfig(weight_bits=8, act_bits=8))
    for part in ("xcvu9p", "xc7z020"):
        est = estimate(g, "fpga", steps=10, part=part)
        static_w = FPGA["parts"][part]["static_w"]["value"]
        assert est.details["static_energy_pj"] == pytest.approx(static_w * est.latency_s * 1e12)
        assert est.details["static_energy_pj"] + est.details["dynamic_energy_pj"] == pytest.approx(est.energy_pj)


def test_fpga_add_gated_cells_need_no_var_x_var_multiplier():
    mul = estimate(graph("gru"), "fpga")
    add = estimate(graph("add_gru"), "fpga")
    assert any(r["kind"] == "mul" for r in mul.by_node) and not any(r["kind"] == "mul" for r in add.by_node)
    assert add.resources["multipliers"] < mul.resources["multipliers"]


def test_fpga_model_beside_published_designs():
    """`gatesim validate fpga`: single layers (one a GRU) and post-placement overlays, every
    held total within its stated band, tighter than the old 0.25..4; predictions made as
    `estimate` makes them; an overlay's fitted part is published minus the layer on the one
    design it is fitted on, and that design is not held."""
    from gatesim.pipeline import estimate_cell
    from gatesim.validate import fpga as check

    result = check.validate()
    found = check.published()
    assert len(found.designs) >= 3 and any(d.design.cell == "gru" for d in found.designs)
    totals = [r for r in result["rows"] if r["component"] == "total"]
    held = [r for r in totals if r["held"] == "band"]
    for row in held:
        low, high = check.BANDS[row["quantity"]]
        assert low <= row["ratio"] <= high, row
        assert low >= 0.25 and high <= 2.0 and high / low < 16
    assert result["all_in_band"]
    placed = {e.name for e in found.designs if "post-placement" in e.stage}
    assert {r["quantity"] for r in held if r["design"] in placed} >= {"lut", "ff", "bram18"}
    assert {r["quantity"] for r in held if r["design"] not in placed} >= {"lut", "ff", "dsp", "bram18",
                                                                           "cycles_per_step", "sequence_cycles"}
    (overlay,) = found.overlays.values()
    fit = next(e for e in found.designs if e.name == overlay.fitted_on)
    assert all(r["held"].startswith("fitted") for r in totals if r["design"] == fit.name)
    layer = check.predict(fit.design)["resources"]
    assert result["overlays"][fit.overlay]["fitted"]["lut"] == fit.published.lut - layer["lut"]
    d = found.designs[0].design
    same = estimate_cell(d.cell, d.input_size, d.hidden_size, "fpga", 1,
                         CellConfig(weight_bits=d.bits, act_bits=d.bits, acc_bits=d.bits), **d.params())
    lut = next(r for r in totals if r["design"] == found.designs[0].name and r["quantity"] == "lut")
    assert lut["gatesim"] == same["resources"]["lut"]


def test_finn_layer_builds_a_row_of_lanes_per_gate_and_folds_the_units():
    """FINN-L: per gate and PE a multiplier per weight of the unit's row, ROMs a row wide and
    directions x H / PE deep, H / PE unit groups per direction at an interval of the fold."""
    g = graph("lstm", i=32, h=128, config=CellConfig(weight_bits=4, act_bits=8, acc_bits=16))
    est = estimate(g, "fpga", architecture="finn", pe=2, simd_input=4, simd_recurrent=16, directions=2)
    macs = {r["fx_node"]: r for r in est.by_node if r["kind"] == "mac"}
    assert macs["input_linear"]["units"] == 4 * 2 * 32 and macs["hidden_linear"]["units"] == 4 * 2 * 128
    roms = [r["bram18"] for r in est.by_node if r["kind"] == "load" and r["component"] == "recurrent_matrix"
            and r["bram18"]]
    assert roms == [4 * math.ceil(2 * 128 // 2 / 512) * math.ceil(128 * 2 * 4 / 36)]
    fold = max(32 // 4, 128 // 16)
    assert est.resources["cycles_per_step"] - 2 * (128 // 2) * fold in range(1, 20)
    with pytest.raises(GatesimError, match="simd_input=5 must divide 32"):
        estimate(g, "fpga", architecture="finn", simd_input=5)
    with pytest.raises(GatesimError, match="strategy applies to architecture hls4ml"):
        estimate(g, "fpga", architecture="finn", strategy="resource")


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
    ("fpga", {"part": "xc7a35t"}, "unknown part 'xc7a35t'"),
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


def test_cpu_weights_fit_the_cache_the_profile_measured(tmp_path):
    """Weights beyond the cache stream from memory each step (roofline stall, DRAM energy per
    bit): the cache is the profile's host's own L2 where it recorded one, the cost file's else."""
    import json

    from gatesim.costs.config import PROFILES_DIR

    data = json.loads((PROFILES_DIR / "cpu-vm.json").read_text())
    g = graph("gru", i=32, h=128, config=CellConfig.unquantized())  # 248,832 bytes of float32 weights and biases
    found = {}
    for cache in (2**17, 2**21):
        path = tmp_path / f"cache-{cache}.json"
        path.write_text(json.dumps({**data, "cache_bytes": cache}))
        found[cache] = estimate(g, "cpu", profile=path)
    small, large = found[2**17].details["per_step"], found[2**21].details["per_step"]
    weights = found[2**17].resources["weight_bytes"]
    assert weights == (32 + 128) * 3 * 128 * 4 + 2 * 3 * 128 * 4
    assert small["memory_s"] == pytest.approx(weights / data["memory_bytes_per_s"]) and large["memory_s"] == 0
    assert found[2**17].energy_pj > found[2**21].energy_pj  # the weights' bits cost DRAM energy
    without = tmp_path / "without.json"
    without.write_text(json.dumps({k: v for k, v in data.items() if k != "cache_bytes"}))
    default = CPU["energy"]["cache_bytes"]["value"]
    assert (estimate(g, "cpu", profile=without).details["per_step"]["memory_s"] > 0) == (weights > default)


def test_cpu_weights_in_the_l3_stream_at_its_measured_speed(tmp_path):
    """Weights beyond the L2 but within half the L3 stream each step at the L3's speed the
    profile measured (at that working set); larger ones, or without L3 figures, from memory."""
    import json

    from gatesim.costs.config import PROFILES_DIR

    data = {**json.loads((PROFILES_DIR / "cpu-vm.json").read_text()), "cache_bytes": 2**17}
    g = graph("gru", i=32, h=128, config=CellConfig.unquantized())
    weights = estimate(g, "cpu", profile=PROFILES_DIR / "cpu-vm.json").resources["weight_bytes"]
    found = {}
    for name, extra in {"l3": {"l3_cache_bytes": 2**20, "l3_bytes_per_s": 4 * data["memory_bytes_per_s"]},
                        "small l3": {"l3_cache_bytes": 2 * 2**17, "l3_bytes_per_s": 4 * data["memory_bytes_per_s"]},
                        "none": {}}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**data, **extra}))
        found[name] = estimate(g, "cpu", profile=path).details["per_step"]["memory_s"]
    assert 2**17 < weights <= 2**20 / 2
    assert found["l3"] == pytest.approx(weights / (4 * data["memory_bytes_per_s"]))
    assert found["small l3"] == found["none"] == pytest.approx(weights / data["memory_bytes_per_s"])


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
