"""The report's interactive Plotly figures, each a pure function of the results table (and,
for the validated ratios, of the `gatesim validate` results saved beside it).

One meaning per visual channel in every figure: colour is the cell, marker shape is what the
figure's title says (hidden size, or cost-model setting), line dash is the figure (latency
or energy). Each panel has its own legend; axes read in SI units."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gatesim.ops import BEYOND_KINDS, KINDS, MEMORY
from gatesim.report.compare import (
    bits_label,
    params_of,
    pareto_mask,
    ratios,
    second,
    settings,
    targets,
    validated_pairs,
    variant_label,
)
from gatesim.terminal import human_energy, human_seconds

# (multiply-gated, add-gated) colour of each pair of cells, in the order the pairs appear
PAIR_COLORS = [("#1f77b4", "#17becf"), ("#d62728", "#ff7f0e"), ("#2ca02c", "#bcbd22"), ("#9467bd", "#e377c2")]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "triangle-down", "pentagon", "hexagon",
           "hourglass"]
GLYPHS = {"circle": "●", "square": "■", "diamond": "◆", "triangle-up": "▲", "cross": "✚", "star": "★",
          "triangle-down": "▼", "pentagon": "⬟", "hexagon": "⬢", "hourglass": "⧗"}
KIND_PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
                "#ff97ff", "#fecb52", "#8c564b", "#7f7f7f"]
KIND_COLORS = {k: KIND_PALETTE[i % len(KIND_PALETTE)] for i, k in enumerate(KINDS)}
PART_COLORS = {"overhead": "#444444", "memory_stall": "#a6a6a6"}
PART_NAMES = {"overhead": "call/run overhead", "memory_stall": "waiting for weights (memory)"}
PALETTE = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
FADED = 0.22  # opacity of a point another point of its front dominates
RATIO_SPAN = 0.1  # a ratio axis always spans at least 1 +- this: a 1 % difference stays small


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


def _grid(n: int, cols: int = 2) -> tuple[int, int]:
    cols = max(1, min(n, cols))
    return math.ceil(n / cols), cols


def objective(target: str) -> tuple[str, str, float, str]:
    """(column, axis label, scale, SI unit) of what a target's points trade latency against;
    energy is drawn in joules."""
    column, label = second(target)
    if column == "energy_pj":
        return column, "energy per sequence", 1e-12, "J"
    return column, label, 1.0, ""


def panel_legends(fig: go.Figure, panels: int) -> list[str]:
    """One legend per panel (panels stacked in one column), right of the panel: each panel's
    legend name."""
    names = ["legend" if i == 0 else f"legend{i + 1}" for i in range(panels)]
    for i, name in enumerate(names):
        y = fig.layout[f"yaxis{'' if i == 0 else i + 1}"].domain
        fig.update_layout({name: dict(x=1.01, y=y[1], xanchor="left", yanchor="top", xref="paper", yref="paper",
                                      font=dict(size=11), tracegroupgap=2)})
    fig.update_layout(margin=dict(r=280))
    return names


def time_ticks(values: pd.Series) -> dict:
    """Log-axis ticks for seconds in human units (ns ... days): decades, and 2 and 5 between
    them when the data spans under three decades."""
    values = values[values > 0]
    if values.empty:
        return {}
    lo, hi = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    span = math.log10(values.max() / values.min())
    steps = (1, 1.5, 2, 3, 5, 7) if span < 1 else (1, 2, 5) if span < 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(lo, hi + 1) for m in steps]
    ticks = [t for t in ticks if values.min() / 1.5 <= t <= values.max() * 1.5] or [10.0 ** lo]
    return dict(tickvals=ticks, ticktext=[human_seconds(t) for t in ticks])


def value_ticks(values: pd.Series) -> dict:
    """Ticks at the values themselves when an axis holds a few (ring sizes): no in-between labels."""
    distinct = sorted(values.dropna().unique())
    return dict(tickvals=distinct, ticktext=[f"{v:,.0f}" for v in distinct]) if 0 < len(distinct) <= 6 else {}


def hover_text(frame: pd.DataFrame) -> list[str]:
    """Every point's identity and figures, in human units, for the hover box."""
    params = params_of(frame)
    out = []
    for _, r in frame.iterrows():
        extra = ", ".join(f"{p}={r[p]}" for p in params if pd.notna(r.get(p)))
        flag = "<br><b>accumulator may overflow</b>" if r.get("acc_overflow_possible") is True else ""
        column, label, _, _ = objective(r["target"])
        trade = "" if column == "energy_pj" or pd.isna(r.get(column)) else f", {label} {r[column]:,.0f}"
        out.append(f"<b>{variant_label(r)}</b> {bits_label(r)} I={r['input_size']} H={r['hidden_size']} "
                   f"T={r['steps']} B={r['batch']}<br>latency {human_seconds(r['latency_s'])} "
                   f"({human_seconds(r['step_latency_s'])} per step), energy {human_energy(r['energy_pj'])}"
                   f"{trade}{('<br>' + extra) if extra else ''}{flag}")
    return out


def size_symbols(table: pd.DataFrame) -> dict[int, str]:
    sizes = sorted(table["hidden_size"].dropna().unique())
    return {int(h): SYMBOLS[i % len(SYMBOLS)] for i, h in enumerate(sizes)}


def fronts(sub: pd.DataFrame, y_col: str) -> pd.Series:
    """Whether each point is on the Pareto front of its cell and hidden size (latency vs y)."""
    on = pd.Series(False, index=sub.index)
    for _, group in sub.groupby(["label", "hidden_size"], sort=False):
        on[group.index] = pareto_mask(group["latency_s"], group[y_col])
    return on


def pareto(table: pd.DataFrame) -> go.Figure:
    """Per target: every feasible point, latency against the target's second objective, and
    the Pareto front of each cell at each hidden size drawn as a line (dominated points
    faded): at one size, which bit widths and settings are worth having."""
    ts = targets(table)
    rows, cols = _grid(len(ts), 1)
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: latency vs {objective(t)[1]}" for t in ts],
                        vertical_spacing=0.3 / rows)
    legends = panel_legends(fig, len(ts))
    colors, symbols = Colors(), size_symbols(table)
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        y_col, y_label, scale, unit = objective(target)
        if y_col not in table:  # no feasible point of this target: none has the figure
            table = table.assign(**{y_col: float("nan")})
        sub = table[(table["target"] == target) & table["feasible"].astype(bool) & table[y_col].notna()]
        sub = sub.assign(label=sub.apply(variant_label, axis=1)) if len(sub) else sub.assign(label=[])
        on = fronts(sub, y_col) if len(sub) else pd.Series(dtype=bool)
        for label, group in sub.groupby("label", sort=False):
            color = colors(label, group.iloc[0])
            group = group.loc[on[group.index].sort_values(ascending=False, kind="stable").index]  # legend: a front point
            overflow = group["acc_overflow_possible"].fillna(False).astype(bool)
            fig.add_trace(go.Scatter(
                x=group["latency_s"], y=group[y_col] * scale, mode="markers", name=label, legendgroup=label,
                legend=legends[i], text=hover_text(group), hovertemplate="%{text}<extra></extra>",
                meta={"role": "points", "target": target},
                marker=dict(color=color, size=8, opacity=[1.0 if o else FADED for o in on[group.index]],
                            symbol=[symbols[int(h)] + ("-open" if o else "")
                                    for h, o in zip(group["hidden_size"], overflow)])),
                row=r + 1, col=c + 1)
            for hidden, members in group.groupby("hidden_size", sort=True):
                front = members[on[members.index]].sort_values("latency_s")
                fig.add_trace(go.Scatter(
                    x=front["latency_s"], y=front[y_col] * scale, mode="lines", legendgroup=label,
                    legend=legends[i], showlegend=False, line=dict(color=color, width=2), hoverinfo="skip",
                    meta={"role": "front", "target": target, "cell": label, "hidden_size": int(hidden)}),
                    row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="latency per sequence", **time_ticks(sub["latency_s"]),
                         row=r + 1, col=c + 1)
        fig.update_yaxes(type="log", title_text=y_label, tickformat="~s", ticksuffix=unit,
                         **value_ticks(sub[y_col]), row=r + 1, col=c + 1)
    key = "  ".join(f"{GLYPHS[s]} {h}" for h, s in symbols.items())
    fig.update_layout(title=f"Pareto fronts per cell and hidden size (lower left is better). Marker: hidden size "
                            f"{key}; faded: dominated at its size; hollow: accumulator may overflow",
                      height=380 * rows + 100, title_font_size=14)
    return fig


def _ratio_range(values: pd.Series) -> list[float]:
    """A y range holding every ratio and at least 1 +- RATIO_SPAN, so that small differences look small."""
    values = values.dropna()
    lo = min([1 - RATIO_SPAN, *values])
    hi = max([1 + RATIO_SPAN, *values])
    pad = 0.05 * (hi - lo)
    return [lo - pad, hi + pad]


def ratio_vs_hidden(table: pd.DataFrame) -> go.Figure:
    """Add-gated / multiply-gated latency (and energy, where modelled) vs hidden size, per
    target; one line per add-gated variant and cost-model setting, median over bit widths and
    the other axes (the bit-width heatmaps show what the widths change)."""
    both = ratios(table)
    ts = targets(table)
    rows, cols = _grid(len(ts), 1)
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: add-gated / multiply-gated" for t in ts],
                        vertical_spacing=0.3 / rows)
    legends = panel_legends(fig, len(ts))
    colors = Colors()
    for i, target in enumerate(ts):
        r, c = divmod(i, cols)
        sub = both[both["target"] == target]
        marks = {s: SYMBOLS[j % len(SYMBOLS)] for j, s in enumerate(dict.fromkeys(sub["setting"]))}
        shown = []
        for (variant, setting), group in sub.groupby(["variant", "setting"], sort=False):
            med = group.groupby("hidden_size")[["latency_ratio", "energy_ratio"]].median().reset_index()
            label, color = variant + (f" ({setting})" if setting else ""), colors(variant, group.iloc[0])
            for figure, dash in (("latency", "solid"), ("energy", "dot")):
                values = med[f"{figure}_ratio"]
                if values.notna().any():
                    shown.append(values)
                    fig.add_trace(go.Scatter(
                        x=med["hidden_size"], y=values, mode="lines+markers", name=f"{label}: {figure}",
                        legend=legends[i], line=dict(color=color, dash=dash), marker=dict(symbol=marks[setting], size=8),
                        meta={"role": "ratio", "target": target, "figure": figure},
                        hovertemplate=f"{target}, {label}<br>H=%{{x}}: {figure} ratio %{{y:.3f}}<extra></extra>"),
                        row=r + 1, col=c + 1)
        fig.add_hline(y=1.0, line=dict(color="grey", width=1, dash="dash"), row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="hidden size", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="ratio (below 1: add-gated cheaper)",
                         range=_ratio_range(pd.concat(shown)) if shown else None, row=r + 1, col=c + 1)
    fig.update_layout(title="Add-gated / multiply-gated ratio vs hidden size (solid: latency, dotted: energy; "
                            "marker: cost-model setting)", height=380 * rows + 100, title_font_size=14)
    return fig


def _representative(table: pd.DataFrame) -> dict:
    """The sizes the breakdown shows: the most common input size, steps and batch among
    feasible points."""
    ok = table[table["feasible"].astype(bool)]
    return {c: ok[c].mode(dropna=False).iloc[0] for c in ("input_size", "steps", "batch")} if len(ok) else {}


def breakdown_rows(table: pd.DataFrame, target: str, design: dict) -> pd.DataFrame:
    """The target's points at `design`'s sizes, at the largest hidden size where the most cells
    fit it and at its most common bit widths: one per setting and cell."""
    sub = table[(table["target"] == target) & table["feasible"].astype(bool)]
    for c, v in design.items():
        sub = sub[sub[c] == v]
    if sub.empty:
        return sub
    sub = sub.assign(label=sub.apply(variant_label, axis=1))
    fits = sub.groupby("hidden_size")["label"].nunique()
    sub = sub[sub["hidden_size"] == fits[fits == fits.max()].index.max()]
    bits = sub.apply(bits_label, axis=1)
    sub = sub[bits == bits.mode().iloc[0]]
    return sub.assign(setting=settings(sub)).drop_duplicates(["setting", "label"])


def breakdown_parts(row: pd.Series) -> dict[str, float]:
    """A point's step latency by part: op kinds, then what the step holds beyond them; the
    parts sum to step_latency_s."""
    parts = {k: row.get(f"step_latency_s_{k}", 0.0) for k in KINDS}
    parts.update({p: row.get(f"step_latency_s_{p}", 0.0) for p in BEYOND_KINDS})
    parts = {k: float(v) for k, v in parts.items() if pd.notna(v)}
    if not any(f"step_latency_s_{p}" in row for p in BEYOND_KINDS):  # tables from before the parts were kept
        rest = row["step_latency_s"] - sum(parts.values())
        parts["overhead"] = rest if rest > 1e-9 * row["step_latency_s"] else 0.0  # not rounding noise
    return {k: v for k, v in parts.items() if v > 0}


def op_breakdown(table: pd.DataFrame) -> go.Figure:
    """Ops per step by kind for each cell, and each target's step latency split into op kinds,
    memory and call overhead, per cost-model setting: each stack sums to the table's step latency."""
    design = _representative(table)
    ts = targets(table)
    parts = {t: breakdown_rows(table, t, design) if design else pd.DataFrame() for t in ts}
    largest = max((int(p["hidden_size"].iloc[0]) for p in parts.values() if len(p)), default=None)
    titles = [f"ops per step by kind (H={largest})"]
    for t in ts:
        sub = parts[t]
        titles.append(f"{t} (H={sub['hidden_size'].iloc[0]}, {bits_label(sub.iloc[0])}): step latency by part"
                      if len(sub) else f"{t}: no feasible point at I={design.get('input_size')}, "
                                       f"T={design.get('steps')}, B={design.get('batch')} (see the summary)")
    fig = make_subplots(1 + len(ts), 1, vertical_spacing=0.07, subplot_titles=titles)
    if not design:
        return fig.update_layout(title="No feasible points to break down")
    legends = panel_legends(fig, 1 + len(ts))
    cells = table[table["feasible"].astype(bool) & (table["hidden_size"] == largest)]
    for c, v in design.items():
        cells = cells[cells[c] == v]
    cells = cells.assign(label=cells.apply(variant_label, axis=1)).drop_duplicates("label")
    counted = [k for k in KINDS if f"ops_{k}" in cells and cells[f"ops_{k}"].sum() > 0 and k not in MEMORY]
    for k in counted:
        fig.add_trace(go.Bar(x=cells["label"], y=cells[f"ops_{k}"], name=k, legend=legends[0],
                             marker_color=KIND_COLORS[k], hovertemplate=f"%{{x}}: %{{y:,}} {k}<extra></extra>"),
                      row=1, col=1)
    fig.update_yaxes(title_text="ops per step", tickformat="~s", row=1, col=1)
    for i, target in enumerate(ts):
        sub = parts[target]
        if sub.empty:
            continue
        split = [breakdown_parts(r) for _, r in sub.iterrows()]
        names = [k for k in [*KINDS, *BEYOND_KINDS] if any(k in s for s in split)]
        x = [list(sub["setting"].replace("", target)), list(sub["label"])]
        for k in names:
            values = [s.get(k, 0.0) for s in split]
            fig.add_trace(go.Bar(
                x=x, y=values, name=PART_NAMES.get(k, k), legend=legends[i + 1],
                marker_color=PART_COLORS.get(k, KIND_COLORS.get(k)),
                meta={"role": "part", "target": target, "part": k},
                text=[f"{PART_NAMES.get(k, k)}: {human_seconds(v)} of {human_seconds(t)} ({100 * v / t:.0f} %)"
                      if v else "" for v, t in zip(values, sub["step_latency_s"])],
                textposition="none", hovertemplate="%{x}<br>%{text}<extra></extra>"), row=i + 2, col=1)
        fig.add_trace(go.Scatter(
            x=x, y=list(sub["step_latency_s"]), mode="text", text=[human_seconds(v) for v in sub["step_latency_s"]],
            textposition="top center", showlegend=False, legend=legends[i + 1], hoverinfo="skip",
            meta={"role": "total", "target": target}), row=i + 2, col=1)
        fig.update_yaxes(title_text="seconds per step", tickformat="~s", ticksuffix="s",
                         range=[0, 1.15 * sub["step_latency_s"].max()], row=i + 2, col=1)
    fig.update_layout(barmode="stack", height=330 * (1 + len(ts)), title_font_size=14,
                      title=f"Where the work goes at I={design['input_size']}, T={design['steps']}, "
                            f"B={design['batch']}: each target at the largest hidden size its cells fit and its "
                            f"most common bit widths; above each bar its step latency, as in the tables")
    return fig


def _ratio_text(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"


def bit_heatmaps(table: pd.DataFrame) -> go.Figure:
    """Per target and cost-model setting: median add/mul latency ratio over weight bits x
    activation bits; a grid that reads the same everywhere is named, not drawn."""
    both = ratios(table)
    both = both[both["weight_bits"].notna() & both["act_bits"].notna()]
    grids, flat = {}, []
    for (target, setting), group in both.groupby(["target", "setting"], sort=False):
        grid = group.groupby(["act_bits", "weight_bits"])["latency_ratio"].median().unstack("weight_bits")
        name = target + (f" ({setting})" if setting else "")
        values = grid.stack().dropna()
        if len(values) > 1 and values.round(2).nunique() > 1:
            grids[name] = grid
        else:
            flat.append(f"{name} {values.median():.2f}")
    unquantized = [t for t in targets(table) if t not in set(both["target"])]
    note = " ".join(filter(None, [
        ("Same ratio at every width (not drawn): " + "; ".join(flat) + ".") if flat else "",
        (f"No add/mul pairs with bit widths on {', '.join(unquantized)} (a target computing on reals, "
         f"or no feasible twins).") if unquantized else ""]))
    if not grids:
        title = "Bit-width heatmaps: no quantized add/mul pairs in this sweep" if not flat else \
            "Bit-width heatmaps: the widths do not change the add/mul ratio on any target"
        fig = go.Figure().update_layout(title=title, height=220)
        if note:
            fig.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0, y=0.5, xanchor="left")
        return fig.update_xaxes(visible=False).update_yaxes(visible=False)
    rows, cols = _grid(len(grids))
    fig = make_subplots(rows, cols, subplot_titles=[f"{n}: latency add/mul" for n in grids],
                        horizontal_spacing=0.12, vertical_spacing=0.15)
    for i, (name, grid) in enumerate(grids.items()):
        r, c = divmod(i, cols)
        fig.add_trace(go.Heatmap(z=grid.values, x=[f"w{int(v)}" for v in grid.columns],
                                 y=[f"a{int(v)}" for v in grid.index], coloraxis="coloraxis",
                                 text=[[_ratio_text(v) for v in row] for row in grid.values],
                                 texttemplate="%{text}", meta={"role": "heatmap", "panel": name},
                                 hovertemplate=f"{name}<br>%{{y}} %{{x}}: ratio %{{z:.3f}}<extra></extra>"),
                      row=r + 1, col=c + 1)
    fig.update_layout(title="Add-gated / multiply-gated latency by bit widths (median over other axes)",
                      coloraxis=dict(colorscale="RdBu_r", cmid=1.0, colorbar_title="ratio"),
                      height=300 * rows + (60 if note else 0), title_font_size=14,
                      margin=dict(b=90 if note else 40))
    if note:
        fig.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0, y=-0.12 / rows,
                           xanchor="left", yanchor="top", font=dict(size=11))
    return fig


def validated_ratios(table: pd.DataFrame, validated: dict[str, dict] | None = None) -> go.Figure | None:
    """Per target validated by `gatesim validate` (results saved beside the sweep's): the
    add/mul latency ratio the cost model predicts and the one measured, side by side, per
    setting and hidden size. None when no validation results are at hand."""
    pairs = validated_pairs(validated or {}, table)
    if pairs.empty:
        return None
    ts = list(dict.fromkeys(pairs["target"]))
    fig = make_subplots(len(ts), 1, vertical_spacing=0.5 / len(ts), subplot_titles=[
        f"{t}: add/mul latency, predicted beside measured ({pairs[pairs['target'] == t]['source'].iloc[0]})"
        for t in ts])
    legends = panel_legends(fig, len(ts))
    for i, target in enumerate(ts):
        sub = pairs[pairs["target"] == target]
        # short group names ("add_gru/gru<br>B=1 eager"): long ones run into the next panel
        short = sub["setting"].str.replace(r"\bbatch=", "B=", regex=True).str.replace(r"\bmode=", "",
                                                                                     regex=True)
        x = [list(sub["pair"] + "<br>" + short.str.replace(", ", " ")), [f"H={h}" for h in sub["hidden_size"]]]
        for which, color in (("predicted", "#7f7f7f"), ("measured", "#1f77b4")):
            fig.add_trace(go.Bar(x=x, y=sub[which], name=which, legend=legends[i], marker_color=color,
                                 meta={"role": which, "target": target},
                                 hovertemplate=f"%{{x}}: {which} ratio %{{y:.3f}}<extra></extra>"), row=i + 1, col=1)
        fig.add_hline(y=1.0, line=dict(color="grey", width=1, dash="dash"), row=i + 1, col=1)
        top = max(1.1, float(pd.concat([sub["predicted"], sub["measured"]]).max()))
        fig.update_yaxes(title_text="add/mul", range=[0, 1.05 * top], row=i + 1, col=1)  # bars start at 0
        fig.update_xaxes(tickangle=0, row=i + 1, col=1)
    fig.update_layout(barmode="group", height=430 * len(ts), title_font_size=14,
                      title="Predicted add-gated / multiply-gated latency ratio beside the measured one "
                            "(`gatesim validate`, predictions computed as estimate and the sweep compute them)")
    return fig


def accuracy_pareto(table: pd.DataFrame) -> go.Figure | None:
    """Per target: each design's test metric (mean over seeds, bar = std) against its latency,
    with each cell's Pareto front; the dashed line is what learning nothing scores."""
    if "accuracy" not in table.columns:
        return None
    metric = table["accuracy_metric"].dropna().iloc[0]
    sign = 1.0 if metric == "mse" else -1.0  # the front minimizes latency and (signed) error
    ts = targets(table)
    rows, cols = _grid(len(ts), 1)
    fig = make_subplots(rows, cols, subplot_titles=[f"{t}: test {metric} vs latency" for t in ts],
                        vertical_spacing=0.3 / rows)
    legends = panel_legends(fig, len(ts))
    colors = Colors()
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
                                     legendgroup=label, legend=legends[i], text=text,
                                     hovertemplate="%{text}<extra></extra>", marker=dict(color=color, size=8),
                                     error_y=dict(type="data", array=group["accuracy_std"], visible=True)),
                          row=r + 1, col=c + 1)
            front = group[pareto_mask(group["latency_s"], sign * group["accuracy"])].sort_values("latency_s")
            fig.add_trace(go.Scatter(x=front["latency_s"], y=front["accuracy"], mode="lines", legendgroup=label,
                                     legend=legends[i], showlegend=False, line=dict(color=color, width=2),
                                     hoverinfo="skip"), row=r + 1, col=c + 1)
        if len(sub):
            fig.add_hline(y=float(sub["accuracy_baseline"].mean()), line=dict(color="grey", dash="dash"),
                          row=r + 1, col=c + 1)
        fig.update_xaxes(type="log", title_text="latency per sequence", **time_ticks(sub["latency_s"]),
                         row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"test {metric}", row=r + 1, col=c + 1)
    better = "lower" if metric == "mse" else "higher"
    fig.update_layout(title=f"Accuracy vs cost per target ({better} {metric} is better; dashed: learning nothing)",
                      height=380 * rows + 100, title_font_size=14)
    return fig


FIGURES = {"pareto": pareto, "ratio_vs_hidden": ratio_vs_hidden, "op_breakdown": op_breakdown,
           "bit_heatmaps": bit_heatmaps, "accuracy_pareto": accuracy_pareto}
