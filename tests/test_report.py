"""Reports: the HTML renders in a real headless Chromium without console errors, opens offline,
and the figures and the markdown summary say what the results table says."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from gatesim.report import figures
from gatesim.report.compare import pareto_mask, ratios
from gatesim import sweep
from gatesim.results import read_results
from gatesim.sweep import parse
from tests.browser import render, require_chromium

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {
    "schema_version": 1, "name": "rep", "description": "Report test sweep",
    "axes": {"cell": ["gru", "add_gru", "lstm", "add_lstm"], "input_size": [4], "hidden_size": [4, 8, 16],
             "steps": [10], "weight_bits": [4], "act_bits": [3, 4], "acc_bits": [None, 8]},
    "targets": {"cpu": {"mode": ["eager", "fused"]}, "fpga": {}, "ckks": {}, "tfhe": {}},
}
TRAINED = {**CONFIG, "name": "acc", "axes": {**CONFIG["axes"], "input_size": [2], "hidden_size": [4],
                                             "acc_bits": [None]},
           "targets": {"cpu": {}, "tfhe": {}},
           "accuracy": {"task": "adding", "epochs": 1, "train_size": 32, "test_size": 8}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, sweep(parse(CONFIG), out, workers=1)


class FigureDivs(HTMLParser):
    """For each figure div (by id), how many rendered Plotly SVG roots it holds."""

    def __init__(self, ids):
        super().__init__()
        self.ids, self.stack, self.svgs = set(ids), [], dict.fromkeys(ids, 0)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            self.stack.append(attrs.get("id") if attrs.get("id") in self.ids else None)
        if tag == "svg" and "main-svg" in (attrs.get("class") or "").split():
            for figure in filter(None, self.stack):
                self.svgs[figure] += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.stack:
            self.stack.pop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    return out, sweep(parse(TRAINED), out, workers=1)


# Each figure's traces as the page holds them (plotly.js decodes arrays into typed arrays)
FIGURE_DATA = """(() => {
  const plain = v => v == null ? null : ArrayBuffer.isView(v) ? Array.from(v)
                   : Array.isArray(v) ? v.map(plain) : v;
  return JSON.stringify(Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map(
    d => [d.id, d._fullData.map(t => ({name: t.name, type: t.type, meta: t.meta || null, x: plain(t.x),
                                  y: plain(t.y), z: plain(t.z)}))])));
})()"""
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"


def dominated(x: list, y: list) -> list[bool]:
    """Brute force, independent of the report's own front code: whether another point is at
    least as good in both and better in one."""
    return [any(x2 <= x1 and y2 <= y1 and (x2 < x1 or y2 < y1) for x2, y2 in zip(x, y)) for x1, y1 in zip(x, y)]


@pytest.mark.parametrize("which", ["run", "trained"])
def test_report_renders_in_headless_chromium_without_console_errors(which, request):
    """What a person sees: no console errors, every figure drawn with data, each Pareto front
    with every non-dominated point (two or more where the data has them), the breakdown's
    stacks summing to the table's step latency; a full-page screenshot is left in
    .artifacts/screenshots for a person to look at."""
    require_chromium()
    out, result = request.getfixturevalue(which)
    html = result.files["html"]
    text = html.read_text()
    assert not re.search(r'<script[^>]+src=', text), "the page must not load scripts from elsewhere"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"report-{which}.png"
    page = render(html, wait_ms=20000, evaluate=FIGURE_DATA, screenshot=shot)
    assert page.console_errors == []
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    expected = [name for name in figures.FIGURES if name != "accuracy_pareto" or which == "trained"]
    divs = FigureDivs([*figures.FIGURES, "validated_ratios"])
    divs.feed(page.dom)
    assert all(divs.svgs[name] > 0 for name in expected), divs.svgs
    assert ("accuracy_pareto" in divs.svgs and divs.svgs["accuracy_pareto"] > 0) == (which == "trained")
    drawn = json.loads(page.value)
    for name in expected:  # every figure holds data, not only axes
        assert any((t["x"] or t["z"]) for t in drawn[name]), name
    table = result.table[result.table["feasible"].astype(bool)]
    fronts = [t for t in drawn["pareto"] if (t["meta"] or {}).get("role") == "front"]
    assert fronts
    for front in fronts:
        m = front["meta"]
        group = table[(table["target"] == m["target"]) & (table["cell"] == m["cell"])
                      & (table["hidden_size"] == m["hidden_size"])]
        y_col = figures.objective(m["target"])[0]
        keep = [not d for d in dominated(list(group["latency_s"]), list(group[y_col]))]
        # equal points are one point of the front
        assert sorted(set(front["x"])) == pytest.approx(sorted(set(group["latency_s"][keep])))
    parts = [t for t in drawn["op_breakdown"] if (t["meta"] or {}).get("role") == "part"]
    totals = [t for t in drawn["op_breakdown"] if (t["meta"] or {}).get("role") == "total"]
    assert {t["meta"]["target"] for t in totals} == set(table["target"])  # every target has its stack
    for total in totals:
        stacks = [p for p in parts if p["meta"]["target"] == total["meta"]["target"]]
        for i, step in enumerate(total["y"]):
            assert sum(p["y"][i] for p in stacks) == pytest.approx(step, rel=1e-9)
            setting, cell = total["x"][0][i], total["x"][1][i]
            rows = table[(table["target"] == total["meta"]["target"]) & (table["cell"] == cell)]
            assert step in set(rows["step_latency_s"]), (setting, cell)


def test_accuracy_summary_and_figure(trained):
    out, result = trained
    md = (out / "acc.md").read_text()
    assert "## Accuracy on the adding task" in md and "| yes |" in md
    fig = figures.accuracy_pareto(result.table)
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) == int((result.table["feasible"] & result.table["accuracy"].notna()).sum())
    assert figures.accuracy_pareto(result.table.drop(columns=[c for c in result.table if c.startswith("accuracy")])) \
        is None


def test_sweep_writes_every_file_and_the_report_command_rewrites_them(run, tmp_path):
    out, result = run
    assert {k: v.name for k, v in result.files.items()} == {
        "parquet": "rep.parquet", "csv": "rep.csv", "html": "rep.html", "markdown": "rep.md"}
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "report", str(out / "rep.csv"), "--out", str(tmp_path),
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep.md").read_text() == (out / "rep.md").read_text().replace("Report test sweep", "rep")


def test_summary_ratios_are_twin_points_of_the_table(run):
    out, _ = run
    table = read_results(out / "rep.parquet")
    md = (out / "rep.md").read_text()
    pick = {"target": "fpga", "input_size": 4, "hidden_size": 16, "act_bits": 4, "acc_bits": None}
    rows = table
    for k, v in pick.items():
        rows = rows[rows[k].isna()] if v is None else rows[rows[k] == v]
    add = rows[rows["cell"] == "add_gru"]["latency_s"]
    mul = rows[rows["cell"] == "gru"]["latency_s"]
    assert len(add) == len(mul) == 1
    expected = f"{add.iloc[0] / mul.iloc[0]:.2f}"
    line = next(ln for ln in md.splitlines() if ln.startswith("| fpga |  | add_gru |"))
    assert expected in line.split("|")[-2]  # the H=16 column, the last one
    assert "## Latency: add-gated / multiply-gated" in md


def test_every_add_point_is_paired_with_its_one_multiply_gated_twin(run):
    _, result = run
    table = result.table
    same = ["target", "input_size", "hidden_size", "steps", "batch", "weight_bits", "act_bits", "acc_bits", "mode"]
    expected = {}
    for _, add in table[(table["gating"] == "add") & table["feasible"]].iterrows():
        twin = table[(table["cell"] == add["cell"].removeprefix("add_")) & table["feasible"]]
        for column in same:
            twin = twin[twin[column].isna()] if pd.isna(add[column]) else twin[twin[column] == add[column]]
        assert len(twin) <= 1
        if len(twin):
            expected[add["key"]] = add["latency_s"] / twin["latency_s"].iloc[0]
    both = ratios(table)
    assert dict(zip(both["key"], both["latency_ratio"])) == pytest.approx(expected)
    assert len(expected) > 0


def test_fastest_points_carry_their_risk(run):
    """The fastest-point table marks a point whose accumulator may overflow (acc_bits 8 here
    is narrower than every sum needs), naming held and needed widths; among equally fast
    points a safe one is shown, so a mark means every fastest choice carries that risk."""
    from gatesim.report.summary import cheapest, variant_label

    _, result = run
    table = result.table[result.table["feasible"].astype(bool)]
    table = table.assign(v=table.apply(variant_label, axis=1))
    best = cheapest(result.table)
    for _, row in best.iterrows():
        group = table[(table["target"] == row["target"]) & (table["hidden_size"] == row["H"])
                      & (table["v"] == row["cell"])]
        fastest = group[group["latency_s"] == group["latency_s"].min()]
        assert bool(row["risk"]) == fastest["acc_overflow_possible"].astype(bool).all(), row.to_dict()
    assert best["risk"].str.contains("accumulator may overflow \\(8 bits held, ").any()


def test_pareto_front_is_the_non_dominated_points():
    x = pd.Series([1.0, 2.0, 3.0, 1.5, 4.0])
    y = pd.Series([5.0, 3.0, 1.0, 6.0, 2.0])
    assert pareto_mask(x, y).tolist() == [True, True, True, False, False]


def test_pareto_figure_marks_overflow_and_carries_hover_details(run):
    _, result = run
    fig = figures.pareto(result.table)
    scatter = [t for t in fig.data if t.mode == "markers"]
    assert {t.name for t in scatter} == {"gru", "add_gru", "lstm", "add_lstm"}
    symbols = {s for t in scatter for s in t.marker.symbol}
    sizes = set(figures.size_symbols(result.table).values())
    assert {s.removesuffix("-open") for s in symbols} == sizes  # marker shape: hidden size, one meaning
    assert any(s.endswith("-open") for s in symbols)  # acc_bits 8 is narrower than these sums need
    text = scatter[0].text[0]
    assert "H=" in text and "latency" in text and "w4a" in text
    n_points = sum(len(t.x) for t in scatter)
    assert n_points == int(result.table["feasible"].sum())
    assert len({t.legend for t in scatter}) == len(figures.targets(result.table))  # a legend per panel


def test_a_front_holds_each_trade_off_of_one_size(tmp_path):
    """FPGA reuse factors trade LUTs for cycles: at one hidden size the front has both."""
    config = {"schema_version": 1, "name": "rf", "axes": {"cell": ["gru"], "input_size": [4], "hidden_size": [8],
                                                          "steps": [10], "weight_bits": [4], "act_bits": [4]},
              "targets": {"fpga": {"reuse_factor": [1, 4]}}}
    result = sweep(parse(config), tmp_path, workers=1)
    fronts = [t for t in figures.pareto(result.table).data if t.meta and t.meta["role"] == "front"]
    assert [len(t.x) for t in fronts] == [2]
    assert sorted(fronts[0].x) == sorted(result.table["latency_s"])


def test_he_points_read_na_energy_and_times_in_human_units(run):
    _, result = run
    tfhe = result.table[(result.table["target"] == "tfhe") & result.table["feasible"].astype(bool)]
    text = figures.hover_text(tfhe.head(3))
    assert all("energy n/a" in t and "PBS per step" in t for t in text)
    assert not any(" s (" in t and "e-0" in t for t in text)  # no raw floats for times


def test_every_target_trades_latency_against_a_figure_that_varies(run):
    """A second objective that is one constant makes every front a point: within one hidden
    size, each target's objective takes more than one value (CKKS' ring size varies with the
    cell's depth, across cells)."""
    _, result = run
    table = result.table[result.table["feasible"].astype(bool)]
    for target, group in table.groupby("target"):
        column = figures.objective(target)[0]
        within = group.groupby("hidden_size")[column].nunique().max()
        assert within > 1, (target, column)


def test_ratio_axes_keep_small_differences_small(run):
    _, result = run
    fig = figures.ratio_vs_hidden(result.table)
    for axis in [k for k in fig.layout if k.startswith("yaxis")]:
        lo, hi = fig.layout[axis].range
        assert lo <= 1 - figures.RATIO_SPAN and hi >= 1 + figures.RATIO_SPAN


def test_bit_heatmaps_draw_only_the_grids_the_widths_change(run):
    _, result = run
    fig = figures.bit_heatmaps(result.table)
    for heat in fig.data:
        values = pd.Series([v for row in heat.z for v in row]).dropna().round(2)
        assert values.nunique() > 1, heat.meta
    both = ratios(result.table)
    both = both[both["weight_bits"].notna()]
    drawn = {t.meta["panel"] for t in fig.data}
    note = " ".join(a.text for a in fig.layout.annotations if "not drawn" in a.text or "No add/mul" in a.text)
    for (target, setting), _ in both.groupby(["target", "setting"]):
        name = target + (f" ({setting})" if setting else "")
        assert name in drawn or name in note, name
    assert "No add/mul pairs with bit widths on ckks" in note  # every target drawn or its absence said


def test_validated_ratios_sit_beside_the_predictions(run, tmp_path):
    """`gatesim validate cpu --out` saves a real run; the report of results in that folder
    draws its predicted and measured add/mul ratios side by side."""
    out, _ = run
    folder = tmp_path / "with-validation"
    folder.mkdir()
    (folder / "rep.parquet").write_bytes((out / "rep.parquet").read_bytes())
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "validate", "cpu", "--cell", "gru", "--cell", "add_gru",
                        "-H", "8", "--mode", "eager", "-B", "1", "--input", "4", "--profile", "cpu-vm",
                        "--no-recalibrate", "--out", str(folder)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    saved = json.loads((folder / "validate-cpu.json").read_text())
    from gatesim.report import report

    files = report(folder / "rep.parquet")
    assert 'id="validated_ratios"' in files["html"].read_text()
    md = files["markdown"].read_text()
    assert "## Add/mul ratios predicted and measured" in md
    assert f"| cpu | add_gru/gru | batch=1, mode=eager | 8 | {saved['add_vs_mul'][0]['predicted_ratio']:.2f} | " \
           f"{saved['add_vs_mul'][0]['measured_ratio']:.2f} |" in md
    from gatesim.report import load_validated

    fig = figures.validated_ratios(pd.read_parquet(folder / "rep.parquet"), load_validated(folder))
    bars = {t.meta["role"]: list(t.y) for t in fig.data if t.type == "bar"}
    assert bars["measured"] == [p["measured_ratio"] for p in saved["add_vs_mul"]]
    assert bars["predicted"] == [p["predicted_ratio"] for p in saved["add_vs_mul"]]
