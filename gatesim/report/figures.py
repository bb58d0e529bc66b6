"""The report's interactive Plotly figures, each a pure function of the results table."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gatesim.ops import KINDS, MEMORY
from gatesim.report.compare import (
    bits_label,
    params_of,
    pareto_mask,
    ratios,
    second,
    targets,
    variant_label,
)

# (multiply-gated, add-gated) colour of each pair of cells, in the order the pairs appear
PAIR_COLORS = [("#1f77b4", "#17becf"), ("#d62728", "#ff7f0e"), ("#2ca02c", "#bcbd22"), ("#9467bd", "#e377c2")]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star"]
KIND_PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
                "#ff97ff", "#fecb52", "#8c564b", "#7f7f7f"]
KIND_COLORS = {k: KIND_PALETTE[i % len(KIND_PALETTE)] for i, k in enumerate(KINDS)}
PALETTE = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


class Colors:
    """A cell's own colour (its pair's hue, lighter when add-gated); variants and users'
    modules take the next free palette colour."""

    def __init__(self) -> None:
        self.pairs: list[str] = []
        self.others: dict[str, str] = {}

    def __call__(self, label: str, row: pd.Series) -> str:
        if label == row["cell"] and row.get("gating") in ("mul", "add"):
            if row["pair"] not in self.pairs:
                self.pairs.append(row["pair"])
            mul, add = PAIR_COLORS[self.pairs.index(row["pair"]) % len(PAIR_COLORS)]
            return add if row["gating"] == "add" else mul
        return self.others.setdefault(label, PALETTE[len(self.others) % len(PALETTE)])


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 2)
    return math.ceil(n / cols), cols


def hover_text(frame: pd.DataFrame) -> list[str]:
    """Every point's identity and figures, for the hover box."""
    params = params_of(frame)
    out = []
    for _, r in frame.iterrows():
        extra = ", ".join(f"{p}={r[p]}" for p in params if pd.notna(r.get(p)))
        flag = "<br><b>accumulator may overflow</b>" if r.get("acc_overflow_possible") is True else ""
        out.append(f"<b>{variant_label(r)}</b> {bits_label(r)} I={r['input_size']} H={r['hidden_size']} "
                   f"T={r['steps']} B={r['batch']}<br>latency {r['latency_s']:.4g} s, "
                   f"energy {r['energy_pj']:.4g} pJ{('<br>' + extra) if extra else ''}{flag}")
    return out


def pareto(table: pd.DataFrame) -> go.Figure:
    """Per target: every feasible point (latency vs the target's second objective) and each
    cell's Pareto front; an x marks points whose accumulators may overflow."""
    ts = targets(table)
    rows, cols = _grid(len(ts))
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: latency vs {second(t)[1]}"
                                                    for t in ts])
    colors = Colors()
    shown: set[str] = set()
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        y_col = second(target)[0]
        sub = table[(table["target"] == target) & table["feasible"].astype(bool)]
        sub = sub.assign(label=sub.apply(variant_label, axis=1)) if len(sub) else sub.assign(label=[])
        for label, group in sub.groupby("label", sort=False):
            color = colors(label, group.iloc[0])
            overflow = group["acc_overflow_possible"].fillna(False).astype(bool)
            fig.add_trace(go.Scatter(
                x=group["latency_s"], y=group[y_col], mode="markers", name=label, legendgroup=label,
                showlegend=label not in shown, opacity=0.55, text=hover_text(group),
                hovertemplate="%{text}<extra></extra>",
                marker=dict(color=color, size=7, symbol=["x" if o else "circle" for o in overflow])),
                row=r + 1, col=c + 1)
            shown.add(label)
            front = group[pareto_mask(group["latency_s"], group[y_col])].sort_values("latency_s")
            fig.add_trace(go.Scatter(x=front["latency_s"], y=front[y_col], mode="lines", legendgroup=label,
                                     showlegend=False, line=dict(color=color, width=2, shape="hv"),
                                     hoverinfo="skip"), row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="latency (s)", row=r + 1, col=c + 1)
        fig.update_yaxes(type="log", title_text=second(target)[1], row=r + 1, col=c + 1)
    fig.update_layout(title="Pareto fronts per target (lower left is better; x = accumulator may overflow)",
                      height=420 * rows, legend_title_text="cell")
    return fig


def ratio_vs_hidden(table: pd.DataFrame) -> go.Figure:
    """Add-gated / multiply-gated latency (and energy, where modelled) vs hidden size, per
    target; one line per add-gated variant and cost-model setting, median over bit widths and
    the other axes (the bit-width heatmaps show what the widths change)."""
    both = ratios(table)
    ts = targets(table)
    rows, cols = _grid(len(ts))
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: add-gated / multiply-gated" for t in ts])
    colors = Colors()
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        sub = both[both["target"] == target]
        for j, ((variant, setting), group) in enumerate(sub.groupby(["variant", "setting"], sort=False)):
            med = group.groupby("hidden_size")[["latency_ratio", "energy_ratio"]].median().reset_index()
            label, color = f"{target}: {variant}" + (f" ({setting})" if setting else ""), colors(variant, group.iloc[0])
            marker = dict(symbol=SYMBOLS[j % len(SYMBOLS)], size=7)
            for figure, dash in (("latency", "solid"), ("energy", "dot")):
                values = med[f"{figure}_ratio"]
                if values.notna().any():
                    fig.add_trace(go.Scatter(
                        x=med["hidden_size"], y=values, mode="lines+markers", name=f"{label} {figure}",
                        line=dict(color=color, dash=dash), marker=marker,
                        hovertemplate=f"{label}<br>H=%{{x}}: {figure} ratio %{{y:.3f}}<extra></extra>"),
                        row=r + 1, col=c + 1)
        fig.add_hline(y=1.0, line=dict(color="grey", width=1, dash="dash"), row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="hidden size", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="ratio (below 1: add-gated cheaper)", row=r + 1, col=c + 1)
    fig.update_layout(title="Add-gated / multiply-gated ratio vs hidden size (solid: latency, dotted: energy)",
                      height=420 * rows)
    return fig


def _representative(table: pd.DataFrame) -> pd.DataFrame:
    """Rows at one design: the most common sizes and bits among quantized feasible points."""
    ok = table[table["feasible"].astype(bool) & (table["target"] != "ckks")]
    ok = ok if len(ok) else table[table["feasible"].astype(bool)]
    if ok.empty:
        return ok
    pick = {c: ok[c].mode(dropna=False).iloc[0] for c in ("input_size", "steps", "batch")}
    pick["hidden_size"] = ok["hidden_size"].max()
    for c, v in pick.items():
        ok = ok[ok[c] == v]
    bits = ok.apply(bits_label, axis=1)
    return ok[bits == bits.mode().iloc[0]]


def op_breakdown(table: pd.DataFrame) -> go.Figure:
    """Ops per step by kind for each cell, and each target's step latency by op kind."""
    rep = _representative(table)
    ts = targets(rep) if len(rep) else []
    fig = make_subplots(1 + len(ts), 1, vertical_spacing=0.08,
                        subplot_titles=["ops per step by kind"] + [f"{t}: step latency by op kind (s)" for t in ts])
    if rep.empty:
        return fig.update_layout(title="No feasible points to break down")
    design = rep.iloc[0]
    cells = rep.drop_duplicates("cell")
    kinds = [k for k in KINDS if f"ops_{k}" in cells and cells[f"ops_{k}"].sum() > 0 and k not in MEMORY]
    for k in kinds:
        fig.add_trace(go.Bar(x=cells["cell"], y=cells[f"ops_{k}"], name=k, legendgroup=k, marker_color=KIND_COLORS[k],
                             hovertemplate=f"%{{x}}: %{{y:,}} {k}<extra></extra>"), row=1, col=1)
    for i, target in enumerate(ts):
        sub = rep[rep["target"] == target].drop_duplicates("cell")
        for k in KINDS:
            col = f"step_latency_s_{k}"
            if col in sub and sub[col].sum() > 0:
                fig.add_trace(go.Bar(x=sub["cell"], y=sub[col], name=k, legendgroup=k, showlegend=k not in kinds,
                                     marker_color=KIND_COLORS[k],
                                     hovertemplate=f"%{{x}}: %{{y:.3g}} s in {k}<extra></extra>"),
                              row=i + 2, col=1)
                kinds.append(k)
    fig.update_layout(barmode="stack", height=320 * (1 + len(ts)), legend_title_text="op kind",
                      title=f"Where the work goes at I={design['input_size']}, H={design['hidden_size']}, "
                            f"{bits_label(design)}")
    return fig


def bit_heatmaps(table: pd.DataFrame) -> go.Figure:
    """Per target: median add/mul latency ratio over weight bits x activation bits."""
    both = ratios(table)
    both = both[both["weight_bits"].notna() & both["act_bits"].notna()]
    ts = [t for t in targets(table) if t in set(both["target"])]
    if not ts:
        return go.Figure().update_layout(title="Bit-width heatmaps: no quantized add/mul pairs in this sweep")
    rows, cols = _grid(len(ts))
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: latency add/mul" for t in ts])
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        grid = (both[both["target"] == target].groupby(["act_bits", "weight_bits"])["latency_ratio"]
                .median().unstack("weight_bits"))
        fig.add_trace(go.Heatmap(z=grid.values, x=[f"w{int(v)}" for v in grid.columns],
                                 y=[f"a{int(v)}" for v in grid.index], coloraxis="coloraxis",
                                 text=[[f"{v:.2f}" if pd.notna(v) else "" for v in row] for row in grid.values],
                                 texttemplate="%{text}",
                                 hovertemplate="%{y} %{x}: ratio %{z:.3f}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_layout(title="Add-gated / multiply-gated latency by bit widths (median over other axes)",
                      coloraxis=dict(colorscale="RdBu_r", cmid=1.0, colorbar_title="ratio"), height=360 * rows)
    return fig


def accuracy_pareto(table: pd.DataFrame) -> go.Figure | None:
    """Per target: each design's test metric (mean over seeds, bar = std) against its latency,
    with each cell's Pareto front; the dashed line is what learning nothing scores."""
    if "accuracy" not in table.columns:
        return None
    metric = table["accuracy_metric"].dropna().iloc[0]
    sign = 1.0 if metric == "mse" else -1.0  # the front minimizes latency and (signed) error
    ts = targets(table)
    rows, cols = _grid(len(ts))
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: test {metric} vs latency" for t in ts])
    colors = Colors()
    shown: set[str] = set()
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        sub = table[(table["target"] == target) & table["feasible"].astype(bool) & table["accuracy"].notna()]
        sub = sub.assign(label=sub.apply(variant_label, axis=1)) if len(sub) else sub.assign(label=[])
        for label, group in sub.groupby("label", sort=False):
            color = colors(label, group.iloc[0])
            text = [f"{h}<br>test {metric} {a:.4g} ± {s:.2g} over {n} seed(s); Brevitas and simulator "
                    f"{'agree' if g is True else 'DISAGREE' if g is False else '-'}"
                    for h, a, s, n, g in zip(hover_text(group), group["accuracy"], group["accuracy_std"],
                                             group["accuracy_seeds"], group["accuracy_agree"])]
            fig.add_trace(go.Scatter(x=group["latency_s"], y=group["accuracy"], mode="markers", name=label,
                                     legendgroup=label, showlegend=label not in shown, text=text,
                                     hovertemplate="%{text}<extra></extra>", marker=dict(color=color, size=8),
                                     error_y=dict(type="data", array=group["accuracy_std"], visible=True)),
                          row=r + 1, col=c + 1)
            shown.add(label)
            front = group[pareto_mask(group["latency_s"], sign * group["accuracy"])].sort_values("latency_s")
            fig.add_trace(go.Scatter(x=front["latency_s"], y=front["accuracy"], mode="lines", legendgroup=label,
                                     showlegend=False, line=dict(color=color, width=2, shape="hv"),
                                     hoverinfo="skip"), row=r + 1, col=c + 1)
        if len(sub):
            fig.add_hline(y=float(sub["accuracy_baseline"].mean()), line=dict(color="grey", dash="dash"),
                          row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="latency (s)", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"test {metric}", row=r + 1, col=c + 1)
    better = "lower" if metric == "mse" else "higher"
    fig.update_layout(title=f"Accuracy vs cost per target ({better} {metric} is better; dashed: learning nothing)",
                      height=420 * rows, legend_title_text="cell")
    return fig


FIGURES = {"pareto": pareto, "ratio_vs_hidden": ratio_vs_hidden, "op_breakdown": op_breakdown,
           "bit_heatmaps": bit_heatmaps, "accuracy_pareto": accuracy_pareto}
