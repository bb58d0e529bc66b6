"""The markdown summary: headline add/mul ratios per target, the cheapest designs, what a
target cannot take, and overflow flags."""
from __future__ import annotations

import numpy as np
import pandas as pd

from gatesim.report.compare import (
    bits_label,
    ratios,
    second,
    settings,
    targets,
    validated_pairs,
    variant_label,
)
from gatesim.results import DESIGN
from gatesim.terminal import human_energy, human_seconds

MAX_COLUMNS = 8  # hidden sizes shown side by side


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _spread(values: list, n: int) -> list:
    """At most n values, evenly spaced, keeping the first and last."""
    if len(values) <= n:
        return values
    return [values[round(i * (len(values) - 1) / (n - 1))] for i in range(n)]


def ratio_table(table: pd.DataFrame, figure: str) -> pd.DataFrame:
    """Median add/mul ratio of `figure` ("latency" or "energy") by target, variant and bits
    (rows) and hidden size (columns)."""
    both = ratios(table)
    column = f"{figure}_ratio"
    both = both[both[column].notna()]
    if both.empty:
        return pd.DataFrame()
    sizes = _spread(sorted(both["hidden_size"].unique()), MAX_COLUMNS)
    both = both[both["hidden_size"].isin(sizes)]
    grid = both.pivot_table(index=["target", "setting", "variant", "bits"], columns="hidden_size", values=column,
                            aggfunc="median", sort=False)
    order = {t: i for i, t in enumerate(targets(table))}
    grid = grid.sort_index(key=lambda idx: idx.map(order) if idx.name == "target" else idx)
    grid = grid.map(lambda v: f"{v:.2f}" if pd.notna(v) else "")
    grid.columns = [f"H={h}" for h in grid.columns]
    # bit widths whose rows read the same are one row
    grid = grid.reset_index()
    values = list(grid.columns[4:])
    every = grid.groupby("target")["bits"].agg(lambda b: ", ".join(dict.fromkeys(b)))
    merged = (grid.groupby(["target", "setting", "variant", *values], sort=False)["bits"]
              .agg(lambda b: ", ".join(b)).reset_index())
    merged["bits"] = merged["bits"].where(merged["bits"] != merged["target"].map(every), "all")
    return merged[["target", "setting", "variant", "bits", *values]]


def risk_of(point: pd.Series) -> str:
    """What a reader must know before picking this point: '' when nothing."""
    def flag(key: str) -> bool:
        value = point.get(key)
        return isinstance(value, (bool, np.bool_)) and bool(value)

    risks = []
    if flag("acc_overflow_possible"):
        risks.append(f"accumulator may overflow ({point.get('acc_bits'):.0f} bits held, "
                     f"{point.get('acc_bits_needed'):.0f} needed)")
    if flag("insecure"):
        risks.append("below 128-bit security (--insecure)")
    return "; ".join(risks)


def trade_off(label: str, column: str, value) -> str:
    """The second objective in human units: energy in pJ ... J, counts and sizes whole."""
    if value is None or pd.isna(value):
        return ""
    return f"energy {human_energy(value)}" if column == "energy_pj" else f"{label} {value:,.0f}"


def cheapest(table: pd.DataFrame) -> pd.DataFrame:
    """The lowest-latency feasible point of each cell on each target, at the largest hidden size."""
    ok = table[table["feasible"].astype(bool)]
    rows = []
    for target in targets(ok):
        sub = ok[ok["target"] == target]
        sub = sub[sub["hidden_size"] == sub["hidden_size"].max()]
        objective, label = second(target)
        sub = sub.assign(v=sub.apply(variant_label, axis=1), setting=settings(sub))
        for _, group in sub.groupby("v", sort=False):
            # among equally fast points, a safe one first
            risks = group.apply(risk_of, axis=1)
            best = group.assign(_risky=risks != "").sort_values(["latency_s", "_risky"], kind="stable").iloc[0]
            rows.append({"target": target, "cell": best["v"], "bits": bits_label(best), "setting": best["setting"],
                         "H": best["hidden_size"], "T": best["steps"], "latency": human_seconds(best["latency_s"]),
                         "trade-off": trade_off(label, objective, best.get(objective)),
                         "risk": risk_of(best)})
    return pd.DataFrame(rows)


def infeasible(failed: pd.DataFrame) -> pd.DataFrame:
    """Failed points by target, cell and bits: how many, from which hidden size, and why (the
    reason at the smallest failing size)."""
    failed = failed.assign(v=failed.apply(variant_label, axis=1), bits=failed.apply(bits_label, axis=1))
    rows = []
    for (target, cell, bits), group in failed.groupby(["target", "v", "bits"], sort=False):
        first = group.loc[group["hidden_size"].idxmin()]
        rows.append({"target": target, "cell": cell, "bits": bits, "points": len(group),
                     "hidden sizes": f"{group['hidden_size'].min()}..{group['hidden_size'].max()}",
                     "reason (smallest size)": first["error"]})
    return pd.DataFrame(rows)


def accuracy_section(table: pd.DataFrame) -> list[str]:
    """Each trained design once: its test metric over seeds, from the bit-accurate simulator."""
    rounding = "accuracy_rounding_bits" if "accuracy_rounding_bits" in table else None
    designs = table.drop_duplicates([c for c in DESIGN if c in table] + ([rounding] if rounding else [])).copy()
    designs = designs[designs["accuracy"].notna()]
    metric, task = designs["accuracy_metric"].iloc[0], designs["accuracy_task"].iloc[0]
    agree = designs["accuracy_agree"]
    tfhe_rounding = (designs[rounding] if rounding else pd.Series(None, index=designs.index, dtype=object))
    out = pd.DataFrame({
        "cell": designs.apply(variant_label, axis=1), "bits": designs.apply(bits_label, axis=1),
        "H": designs["hidden_size"], "T": designs["steps"],

        f"test {metric}": [f"{a:.4g} ± {s:.2g}" for a, s in zip(designs["accuracy"], designs["accuracy_std"])],
        "seeds": designs["accuracy_seeds"], "per seed": designs["accuracy_per_seed"],
        "simulator = Brevitas": ["yes" if g is True else "NO" if g is False else "- (float)" for g in agree],
        "learning nothing": [f"{b:.4g}" for b in designs["accuracy_baseline"]]})
    if tfhe_rounding.notna().any():
        out.insert(4, "TFHE tables rounded to", ["-" if pd.isna(b) else f"{int(b)} bits" for b in tfhe_rounding])
    return [f"## Accuracy on the {task} task", "",
            f"Test {metric} of each design after quantization-aware training (mean ± std over seeds), as "
            "the bit-accurate integer simulator computes it; 'simulator = Brevitas' says whether Brevitas' "
            "forward pass gave identical outputs on every seed. Float designs (what CKKS rows cost) have "
            "no integer datapath and report Brevitas' value." + (
                " A design with its TFHE tables rounded to k bits ran the test set through the simulator with "
                "every table input rounded to its k most significant bits (widths over the task's training "
                "sequences)." if tfhe_rounding.notna().any() else ""), "", markdown_table(out), ""]


def rounding_section(table: pd.DataFrame) -> list[str]:
    """What rounding table inputs changes in each rounded design's outputs (tfhe points)."""
    if "tfhe_rounding_max_lsb" not in table.columns:
        return []
    rounded = table[table["tfhe_rounding_max_lsb"].notna()]
    if rounded.empty:
        return []
    keys = ["rounding_bits", "cell", "inhibit", "weight_bits", "act_bits", "gate_bits"]
    keys = [k for k in keys if k in rounded.columns]
    rows = []
    for _, group in rounded.groupby(keys, dropna=False, sort=True):
        first = group.iloc[0]
        rows.append({"rounding_bits": int(first["rounding_bits"]), "cell": variant_label(first),
                     "bits": bits_label(first),
                     "H": f"{group['hidden_size'].min()}..{group['hidden_size'].max()}",
                     "outputs changed": f"{100 * group['tfhe_rounding_mismatch_fraction'].max():.1f} %",
                     "largest change (LSB)": int(group["tfhe_rounding_max_lsb"].max())})
    return ["## What rounding costs in accuracy (TFHE)", "",
            "Each rounded design's outputs against the same design unrounded, both run bit-exactly by the integer "
            "simulator over the input set the bounds come from: the share of output elements that differ "
            "and the largest difference, in steps of the output's grid (worst over the hidden sizes).", "",
            markdown_table(pd.DataFrame(rows)), ""]


def validated_section(table: pd.DataFrame, validated: dict[str, dict]) -> list[str]:
    """The measured add/mul ratios of `gatesim validate` results beside their predictions."""
    pairs = validated_pairs(validated, table)
    if pairs.empty:
        return []
    out = pd.DataFrame({"target": pairs["target"], "pair": pairs["pair"], "setting": pairs["setting"],
                        "H": pairs["hidden_size"], "predicted": pairs["predicted"].map("{:.2f}".format),
                        "measured": pairs["measured"].map("{:.2f}".format),
                        "off by": (pairs["predicted"] / pairs["measured"] - 1).map("{:+.0%}".format)})
    sources = "; ".join(dict.fromkeys(pairs["source"]))
    return ["## Add/mul ratios predicted and measured (`gatesim validate`)", "",
            f"Each validation run's add-gated / multiply-gated latency ratio as the cost model predicts it (computed "
            f"exactly as `estimate` and this sweep compute theirs) beside the one measured on real execution "
            f"({sources}). The validated designs are the validation's own (sizes, widths), not this sweep's points.",
            "", markdown_table(out), ""] + fastest_section(validated, table)


def fastest_section(validated: dict[str, dict], table: pd.DataFrame) -> list[str]:
    """Where a validation compared each side's fastest execution (cpu): which one wins, and by
    how much, as predicted and as measured."""
    lines = []
    batches = set(table["batch"].dropna().astype(int)) if "batch" in table else set()
    for target, result in validated.items():
        rows = [r for r in result.get("fastest", []) if not batches or r.get("batch") in batches] or \
            result.get("fastest", [])
        if not rows:
            continue
        out = pd.DataFrame({"pair": [r["pair"] for r in rows], "H": [r["hidden_size"] for r in rows],
                            "B": [r.get("batch", "") for r in rows],
                            "predicted": [f"{r['predicted_ratio']:.2f} ({r['predicted_modes']})" for r in rows],
                            "measured": [f"{r['measured_ratio']:.2f} ({r['measured_modes']})" for r in rows]})
        lines += [f"### {target}: fastest add-gated execution / fastest multiply-gated execution", "",
                  "Each side at the execution that runs it fastest (add-gated/multiply-gated executions in "
                  "brackets), picked by the model and, separately, by the measurements: the saving a user who "
                  "picks the best execution for each cell gets.", "", markdown_table(out), ""]
    return lines


def summary(table: pd.DataFrame, name: str, title: str, validated: dict[str, dict] | None = None) -> str:
    feasible = table["feasible"].astype(bool)
    designs = table.drop_duplicates([c for c in DESIGN if c in table])
    lines = [f"# {title}", "",
             f"Sweep `{name}`: {len(table):,} points ({len(designs):,} designs x targets "
             f"{', '.join(targets(table))}), {int(feasible.sum()):,} feasible. Open `{name}.html` for the "
             f"interactive plots; `{name}.parquet` / `{name}.csv` hold every figure.", ""]
    for figure, what in (("latency", "Latency"), ("energy", "Energy")):
        grid = ratio_table(table, figure)
        if grid.empty:
            continue
        lines += [f"## {what}: add-gated / multiply-gated", "",
                  "Median over the other axes of the ratio between twin points (same sizes, bits, target "
                  "and parameters); below 1 the add-gated cell is cheaper.", "", markdown_table(grid), ""]
    lines += validated_section(table, validated or {})
    if "accuracy" in table.columns:
        lines += accuracy_section(table)
    lines += rounding_section(table)
    best = cheapest(table)
    if not best.empty:
        lines += ["## Fastest point of each cell per target (largest hidden size)", "", markdown_table(best), ""]
    failed = table[~feasible]
    if len(failed):
        lines += ["## Points a target cannot take", "", markdown_table(infeasible(failed)), ""]
    overflow = table.get("acc_overflow_possible", pd.Series(False, index=table.index)).fillna(False).astype(bool)
    lines += ["## Overflow", "",
              f"{int(overflow.sum()):,} points have accumulators narrower than the width their sums are "
              f"proven to need (marked x in the Pareto plots)." if overflow.any() else
              "No point has an accumulator narrower than its sums are proven to need.", ""]
    return "\n".join(lines)
