"""Views of a results table the report is built from: the add-gated / multiply-gated ratios
of twin points, Pareto fronts, and what each target's second objective is."""
from __future__ import annotations

import math

import pandas as pd

from gatesim.cells.config import VARIANT_AXES
from gatesim.costs.targets import TARGETS, swept_params
from gatesim.results import DESIGN

VARIANT = list(VARIANT_AXES)
ENERGY = ("energy_pj", "energy (pJ)")


def second(target: str) -> tuple[str, str]:
    """What a target trades latency against: (results column, label), from its record."""
    return TARGETS[target].second_objective if target in TARGETS else ENERGY


def targets(table: pd.DataFrame) -> list[str]:
    """The table's targets, registered ones in registration order, then any others."""
    present = list(dict.fromkeys(table["target"]))
    return [t for t in TARGETS if t in present] + [t for t in present if t not in TARGETS]


def params_of(table: pd.DataFrame) -> list[str]:
    return [c for c in swept_params() if c in table.columns]


def variant_label(row: pd.Series) -> str:
    """The cell's name, with its add-gated options when they are not the defaults."""
    parts = []
    if pd.notna(row.get("inhibit")) and row["inhibit"] != "signed":
        parts.append(f"inhibit={row['inhibit']}")
    if pd.notna(row.get("candidate_act")) and row["candidate_act"] != "hardtanh":
        parts.append(str(row["candidate_act"]))
    if pd.notna(row.get("theta")) and float(row["theta"]) != 1.0:
        parts.append(f"theta={row['theta']:g}")
    return row["cell"] + (f" [{', '.join(parts)}]" if parts else "")


def bits_label(row: pd.Series) -> str:
    if pd.isna(row.get("weight_bits")) and pd.isna(row.get("act_bits")):
        return "float"
    w = "f" if pd.isna(row["weight_bits"]) else int(row["weight_bits"])
    a = "f" if pd.isna(row["act_bits"]) else int(row["act_bits"])
    return f"w{w}a{a}"


def _plain(v) -> str:
    """2.0 -> "2" (integer parameters become floats in columns that hold NaN); unset -> "none"."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "none"
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def settings(table: pd.DataFrame) -> pd.Series:
    """Each row's cost-model parameters that vary within its target, as "name=value, ..."."""
    out = pd.Series("", index=table.index, dtype=object)
    for target, group in table.groupby("target"):
        varying = [p for p in params_of(group) if group[p].nunique(dropna=False) > 1]
        out[group.index] = group[varying].apply(
            lambda r: ", ".join(f"{k}={_plain(v)}" for k, v in r.items()), axis=1) if varying else ""
    return out


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """One row per feasible add-gated point with a feasible multiply-gated twin (same pair,
    sizes, bits, target and parameters): latency_ratio and energy_ratio = add / mul."""
    ok = table[table["feasible"].astype(bool)]
    match = ["pair", "target"] + [c for c in DESIGN if c not in ("cell", *VARIANT)] + params_of(table)
    # (an empty frame's row-wise join is a frame, not a column: no feasible point at all)
    keys = ok[match].astype("string").fillna("-").agg("|".join, axis=1) if len(ok) else pd.Series(dtype=str)
    # (assigning a whole Series to an empty frame would give it the Series' rows)
    add, mul = (ok[ok["gating"] == g].assign(_k=keys[ok["gating"] == g]) for g in ("add", "mul"))
    figures = ["latency_s", "energy_pj"]
    both = add.merge(mul[["_k", *figures]], on="_k", suffixes=("", "_mul")) if len(add) and len(mul) else add.iloc[:0]
    if both.empty:
        return both.assign(variant=pd.Series(dtype=str), setting=pd.Series(dtype=str), latency_ratio=pd.Series(dtype=float),
                           energy_ratio=pd.Series(dtype=float), bits=pd.Series(dtype=str))
    both["variant"] = both.apply(variant_label, axis=1)
    both["setting"] = settings(both)
    both["bits"] = both.apply(bits_label, axis=1)
    both["latency_ratio"] = both["latency_s"] / both["latency_s_mul"]
    both["energy_ratio"] = (both["energy_pj"] / both["energy_pj_mul"]).where(both["energy_pj_mul"] > 0)
    return both.drop(columns="_k")


def pareto_mask(x: pd.Series, y: pd.Series) -> pd.Series:
    """True where no other point is at least as good in both and better in one (lower is better)."""
    order = sorted(range(len(x)), key=lambda i: (x.iloc[i], y.iloc[i]))
    keep, best_y = [False] * len(x), float("inf")
    for i in order:
        if y.iloc[i] < best_y:
            keep[i], best_y = True, y.iloc[i]
    return pd.Series(keep, index=x.index)


def validated_pairs(validated: dict[str, dict], table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The add/mul latency ratios of `gatesim validate` results ({target: its JSON}), one row
    per pair, hidden size and setting: target, pair, setting, hidden_size, predicted, measured,
    source. A setting is every other field of the result's row (mode, batch, bits, ...). With a
    results table, only the validated batch sizes the table has (when it has any of them)."""
    rows = []
    batches = set(table["batch"].dropna().astype(int)) if table is not None and "batch" in table else set()
    for target, result in validated.items():
        found = result.get("add_vs_mul", [])
        if any(p.get("batch") in batches for p in found):
            found = [p for p in found if p.get("batch", next(iter(batches))) in batches]
        for p in found:
            predicted = p.get("predicted_ratio", p.get("predicted_time_ratio"))
            measured = p.get("measured_ratio", p.get("measured_time_ratio"))
            if predicted is None or measured is None:
                continue
            setting = ", ".join(f"{k}={_plain(v)}" for k, v in p.items()
                                if k not in ("pair", "hidden_size") and not k.endswith("ratio") and v is not None)
            rows.append({"target": target, "pair": p["pair"], "setting": setting, "hidden_size": p["hidden_size"],
                         "predicted": predicted, "measured": measured,
                         "source": result.get("source", f"validate-{target}.json")})
    frame = pd.DataFrame(rows, columns=["target", "pair", "setting", "hidden_size", "predicted", "measured", "source"])
    order = {t: i for i, t in enumerate(TARGETS)}
    frame = frame.assign(_order=frame["target"].map(lambda t: order.get(t, len(order))))
    frame = frame.sort_values(["_order", "pair", "setting", "hidden_size"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)
