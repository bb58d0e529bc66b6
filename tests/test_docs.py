"""Every `$ gatesim ...` example in README.md and docs/*.md runs, and prints what the page shows.

The examples run in this process through typer's CliRunner (tools/update_docs_examples.py
says how: one temporary directory per page, COLUMNS=80, `...` for measured figures only).
After a change to what a command prints, `python tools/update_docs_examples.py` rewrites the
output the pages show; review the diff like any other.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("update_docs_examples", ROOT / "tools" / "update_docs_examples.py")
docs = sys.modules.setdefault("update_docs_examples", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(docs)

PAGES = docs.pages()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_print_what_the_page_shows(page, tmp_path):
    problems = docs.check_page(page, tmp_path)
    assert not problems, ("\n\n".join(problems)
                          + "\n\nIf the new output is right: python tools/update_docs_examples.py "
                          + str(page.relative_to(ROOT)))


def test_the_readme_and_every_command_have_examples():
    """The front page has a tour, and each command's page shows it run (or says why not)."""
    assert docs.parse(ROOT / "README.md").examples
    for command in ("count", "simulate", "estimate", "validate", "train", "sweep", "report"):
        page = docs.parse(ROOT / "docs" / f"{command}.md")
        assert any(e.command.split()[1:2] == [command] or f" gatesim {command} " in f" {e.command} "
                   for e in page.examples), command
    assert (ROOT / "docs" / "calibrate.md").exists()  # calibration measures for minutes: shown, not run


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text) < 12_500
    assert text.startswith("# gatesim\n\n```bash\npython -m pip install torch==2.13.0 && python -m pip install -e . "
                           "&& gatesim sweep configs/sweeps/paper.yaml\n")
    for page in [p for p in (ROOT / "docs").glob("*.md")]:
        assert f"(docs/{page.name})" in text, f"the README links no docs/{page.name}"


def test_links_between_pages_resolve():
    for page in PAGES:
        text = page.read_text()
        for target, anchor in re.findall(r"\]\(((?!https?:)[^)#\s]*)(?:#([^)\s]+))?\)", text):
            linked = (page.parent / target).resolve() if target else page
            assert linked.exists(), f"{page.name}: link to {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.name}: no heading #{anchor} in {linked.name}"


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_docs_cite_no_file_that_is_not_in_the_repository(page):
    """As tests/test_structure.py checks for README.md and docs/architecture.md."""
    tracked = set(subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.split())
    cited = set(re.findall(r"`((?:gatesim|configs|docs|tests|benchmarks|tools)/[\w./-]+\.\w+|reports/[\w.-]+\.md)`",
                           page.read_text()))
    assert not [c for c in cited if c not in tracked and "*" not in c and "<" not in c]


def test_ellipses_match_what_they_stand_for():
    assert docs.matches(["a", "...", "b"], ["a", "b"])
    assert docs.matches(["a", "...", "b"], ["a", "x", "y", "b"])
    assert not docs.matches(["a", "b"], ["a", "x", "b"])
    assert docs.matches(["│ gru │        ... │"], ["│ gru │       66.9 │"])
    assert not docs.matches(["│ gru │        ... │"], ["│ lstm │       66.9 │"])
    assert not docs.matches(["speed ... s"], ["speed 3 s", "more"])
    # rewriting keeps what still fits, and says when an ellipsis had to go
    assert docs.merged(["x ... y", "z"], ["x 1 y", "z", "new"]) == (["x ... y", "z", "new"], True)
    assert docs.merged(["x ... y", "z"], ["x 1 q", "z"]) == (["x 1 q", "z"], False)
    assert docs.merged(["x", "...", "z"], ["x", "warning", "z", "new"]) == (["x", "...", "z", "new"], True)
    assert docs.merged(["x", "...", "z"], ["x", "warning", "q"]) == (["x", "...", "warning", "q"], False)


@pytest.mark.parametrize("machine, report", [("AMD EPYC", "reports/epyc/validate-cpu.json"),
                                             ("Intel Xeon", "reports/validate-cpu.json")])
def test_the_readmes_cpu_table_is_what_its_validation_measured(machine, report):
    """Each row of the README's CPU table (which machine, each mode's lowest..highest ratio,
    rows in band, add/mul ratios within 20 %) says what the committed `validate cpu` run
    measured on that machine."""
    import json

    run = json.loads((ROOT / report).read_text())
    assert run["host_cpu"]["model"].replace("(R)", "").startswith(machine)
    header, line = (next(l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith(start))
                    for start in ("| 2-core VM, profile |", f"| {machine},"))
    shown = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in line.strip("|").split("|")]))
    for mode in ("eager", "fused", "library", "int8", "library-int8"):
        ratios = [r["ratio"] for r in run["rows"] if r["mode"] == mode]
        assert len(ratios) == (16 if mode.startswith("library") else 32)
        assert shown[mode] == f"{min(ratios):.2f}..{max(ratios):.2f}", mode
    rows = run["rows"]
    assert shown["in band"] == f"{sum(0.67 <= r['ratio'] <= 1.5 for r in rows)}/{len(rows)}"
    pairs = run["add_vs_mul"]
    close = sum(abs(p["predicted_ratio"] / p["measured_ratio"] - 1) <= 0.2 for p in pairs)
    assert shown["add/mul ≤ 20 %"] == f"{close}/{len(pairs)}"
