"""The structure docs/architecture.md describes holds: layers import only downwards, no cell
is named outside gatesim/cells/, and the two interpreters of a traced graph share one key
space."""
import ast
from pathlib import Path

import pytest

from gatesim.cells import CELLS
from gatesim.simulate.rules import SIM_RULES
from gatesim.trace.keys import KEYS
from gatesim.trace.rules import RULES

PACKAGE = Path(__file__).resolve().parents[1] / "gatesim"
ROOT = PACKAGE.parent

# Lowest first: a module may import from its own layer and the ones below it, never above.
LAYERS = [
    {"errors", "files", "ops", "terminal"},
    {"fixedpoint", "cells"},
    {"trace"},
    {"simulate"},
    {"costs", "he"},
    {"calibrate", "train", "results"},
    {"pipeline"},
    {"validate", "sweep"},
    {"report"},
    {"api", "tables", "cli", "__init__", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """gatesim.trace.rules -> trace; gatesim.pipeline -> pipeline; gatesim -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path, ast.parse(path.read_text())


def imports(tree: ast.AST, module: str) -> set[str]:
    """Every gatesim module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gatesim")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("gatesim"):
                found.add(target)
    return found


def test_every_unit_has_a_layer():
    units = {unit_of(name) for name, _, _ in modules()}
    assert units <= LAYER.keys(), f"give these a layer in this test and in docs/architecture.md: {units - LAYER.keys()}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    wrong = []
    for name, _, tree in modules():
        for target in imports(tree, name):
            if LAYER[unit_of(target)] > LAYER[unit_of(name)]:
                wrong.append(f"{name} imports {target}")
    assert not wrong


def test_no_import_cycles_between_units():
    import networkx as nx

    graph = nx.DiGraph()
    for name, _, tree in modules():
        for target in imports(tree, name):
            if unit_of(target) != unit_of(name):
                graph.add_edge(unit_of(name), unit_of(target))
    assert list(nx.simple_cycles(graph)) == []


def test_the_sweep_and_the_report_do_not_know_each_other():
    for name, _, tree in modules():
        targets = {unit_of(t) for t in imports(tree, name)}
        if unit_of(name) == "sweep":
            assert "report" not in targets, name
        if unit_of(name) == "report":
            assert "sweep" not in targets, name


def test_no_module_outside_cells_names_a_cell():
    """Cell facts (states, twin, variant axes, gating) are asked of gatesim.cells."""
    named = []
    for name, path, tree in modules():
        if unit_of(name) == "cells":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CELLS:
                named.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
            # spelling tests such as cell.startswith("add") or "lstm" in cell
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "removeprefix"):
                if any(isinstance(a, ast.Constant) and str(a.value).startswith("add") for a in node.args):
                    named.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
            if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
                    and isinstance(node.left.value, str) and any(isinstance(o, ast.In) for o in node.ops)
                    and len(node.left.value) >= 3 and any(node.left.value in cell for cell in CELLS)):
                named.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not named


def test_counting_and_simulation_rules_cover_the_same_keys():
    assert set(RULES) == set(SIM_RULES) == set(KEYS)
    every_key = [key for keys in KEYS.values() for key in keys]
    assert len(every_key) == len(set(map(repr, every_key))), "a key under two names"


@pytest.mark.parametrize("name", ["README.md", "docs/architecture.md"])
def test_docs_cite_no_file_that_is_not_in_the_repository(name):
    import re
    import subprocess

    tracked = set(subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.split())
    text = (ROOT / name).read_text()
    # source, configs and committed summaries (reports' .html/.parquet/.csv are generated)
    cited = set(re.findall(r"`((?:gatesim|configs|docs|tests|benchmarks)/[\w./-]+\.\w+|reports/[\w.-]+\.md)`", text))
    missing = [c for c in cited if c not in tracked and "*" not in c and "<" not in c]
    assert not missing
