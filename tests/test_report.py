"""Reports: the HTML renders in a real headless Chromium without console errors, opens offline,
and the figures and the markdown summary say what the results table says."""
from __future__ import annotations

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


@pytest.mark.parametrize("which", ["run", "trained"])
def test_report_renders_in_headless_chromium_without_console_errors(which, request):
    require_chromium()
    out, result = request.getfixturevalue(which)
    html = result.files["html"]
    text = html.read_text()
    assert not re.search(r'<script[^>]+src=', text), "the page must not load scripts from elsewhere"
    page = render(html, wait_ms=20000)
    assert page.console_errors == []
    expected = [name for name in figures.FIGURES if name != "accuracy_pareto" or which == "trained"]
    divs = FigureDivs(figures.FIGURES)
    divs.feed(page.dom)
    assert all(divs.svgs[name] > 0 for name in expected), divs.svgs
    assert ("accuracy_pareto" in divs.svgs and divs.svgs["accuracy_pareto"] > 0) == (which == "trained")


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
    assert symbols == {"circle", "x"}  # acc_bits 8 is narrower than these sums need
    text = scatter[0].text[0]
    assert "H=" in text and "latency" in text and "w4a" in text
    n_points = sum(len(t.x) for t in scatter)
    assert n_points == int(result.table["feasible"].sum())
