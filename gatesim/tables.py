"""The readable tables `gatesim` prints when --json is not given (rich)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from gatesim.ops import BEYOND_KINDS
from gatesim.terminal import human_energy, human_seconds, terminal
from rich.table import Table


def print_simulation(r: dict) -> None:
    console = terminal()
    console.print(f"[bold]{r['cell']}[/bold]  I={r['input_size']} H={r['hidden_size']} B={r['batch']} "
                  f"T={r['steps']}  weights {r['weight_bits']} bits, activations {r['act_bits']} bits, "
                  f"seed {r['seed']}")
    if r["reference"] is not None:
        if r["bit_exact"] is None:
            console.print(f"vs Brevitas: no exact reference ({r['reference']})")
        else:
            verdict = "[green]bit-exact[/green]" if r["bit_exact"] else "[red]NOT bit-exact[/red]"
            console.print(f"vs {r['reference']}: {verdict} ({r['mismatches']:,} of "
                          f"{r['elements_compared']:,} output elements differ)")
        if not r["float32_exact"]:
            f32 = r["brevitas_float32"]
            console.print(f"Brevitas' own float32 arithmetic is not exact here ({len(r['float32_limits'])} "
                          f"reasons, see --json float32_limits): {f32['mismatches']:,} elements off by up "
                          f"to {f32['max_error_lsb']:g} LSB")
    o = r["overflow"]
    if o["acc_bits"] is None and o["state_bits"] is None:
        console.print("overflow: none possible (every register holds the width its values provably need)")
    else:
        print_overflow_possible(console, r.get("overflow_possible") or [])
        if o["count"]:
            console.print(f"[bold red]OVERFLOWED[/bold red]: these outputs were computed with {o['count']:,} "
                          f"overflows ({registers(o)})")
        for mode, m in o["by_mode"].items():
            err = m["output_error"]
            console.print(f"{mode:>8}: {m['count']:,} values did not fit, in {len(m['nodes'])} node(s); "
                          f"outputs differ from the wide simulation in {err['mismatched_elements']:,} "
                          f"elements, by up to {err['max_abs']:g} ({err['max_lsb']:,} LSB)")
    if r.get("rounding"):
        err = r["rounding"]["output_error"]
        console.print(f"rounded: {len(r['rounding']['tables'])} table input(s) lose "
                      f"{', '.join(f'{n} {b}' for n, b in r['rounding']['tables'].items())} bits; outputs differ from "
                      f"the unrounded cell in {err['mismatched_elements']:,} elements, by up to {err['max_abs']:g} "
                      f"({err['max_lsb']:,} LSB)")
    overflows = {(n["node"], n["kind"]): n["count"] for n in o["nodes"]}
    table = Table(title="observed ranges per node, wide simulation (integers on each node's grid)")
    for col in ("node", "kind", "min", "max", "bits", "proven bits", f"overflows ({o['mode']})"):
        table.add_column(col, justify="left" if col in ("node", "kind") else "right")
    for row in r["nodes"]:
        table.add_row(row["node"], row["kind"], f"{row['min']:,}", f"{row['max']:,}", str(row["bits"]),
                      str(row["type_bits"] or "-"), f"{overflows.get((row['node'], row['kind']), 0):,}")
    console.print(table)
    widest = Table(title="widest intermediate per op kind")
    for col in ("kind", "observed bits", "proven bits"):
        widest.add_column(col, justify="left" if col == "kind" else "right")
    for kind, bits in r["widest_bits"].items():
        widest.add_row(kind, str(bits), str(r["widest_type_bits"].get(kind, "-")))
    console.print(widest)
    console.print(f"speed: {r['cell_steps_per_s']:,.0f} cell-steps/s ({r['cell_steps']:,} cell-steps)")


def print_hls4ml_simulation(r: dict) -> None:
    console = terminal()
    console.print(f"[bold]{r['cell']}[/bold] (torch nn.{r['cell'].upper()}) as hls4ml builds it  I={r['input_size']} "
                  f"H={r['hidden_size']} B={r['batch']} T={r['steps']}  {r['precision']}, tables {r['types']['table']}, "
                  f"seed {r['seed']}")
    wrapped = sum(r["overflows"].values())
    console.print("every value fit its register" if not wrapped else
                  f"[bold yellow]{wrapped:,} values did not fit[/bold yellow] their register and wrapped "
                  f"(or saturated): {', '.join(f'{k} {v:,}' for k, v in r['overflows'].items())}")
    table = Table(title="range per node (whole numbers on its register's grid)")
    for col in ("node", "min", "max"):
        table.add_column(col, justify="left" if col == "node" else "right")
    for node, (lo, hi) in r["ranges"].items():
        table.add_row(node, f"{lo:,}", f"{hi:,}")
    console.print(table)


def registers(o: dict) -> str:
    parts = [f"{name} {o[key]} bits" for name, key in (("accumulators", "acc_bits"), ("state", "state_bits"))
             if o[key] is not None]
    return ", ".join(parts) + f", {o['mode']}"


def shipped_name(profile: str) -> str:
    """A shipped profile by its name (what --profile takes), any other by its path."""
    from gatesim.costs.config import PROFILES_DIR

    path = Path(profile)
    return path.stem if path.parent.resolve() == PROFILES_DIR.resolve() else profile


def _word(value) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def print_estimate(r: dict) -> None:
    console = terminal()
    from gatesim.costs import get

    head = f"{r['cell']} on {r['target']}  I={r['input_size']} H={r['hidden_size']} B={r['batch']} T={r['steps']}"
    params = get(r["target"]).sweep_params
    shown = [f"{k.replace('_', ' ')} {shipped_name(r[k]) if k == 'profile' else _word(r[k])}"
             for k in params if r.get(k) is not None]
    if "profile" in params and r.get("profile") is None and not r.get("profile_note"):
        shown.append("no profile (the cost file's own figures)")
    head += "  " + ", ".join(shown) if shown else ""
    console.print(f"[bold]{head}[/bold]")
    if r.get("execution"):
        console.print(f"execution modelled: {r['execution']}")
    if r.get("profile_note"):
        console.print(r["profile_note"])
    console.print(f"energy {human_energy(r['energy_pj'])}   latency {human_seconds(r['latency_s'])}")
    print_overflow_possible(console, r.get("overflow_possible") or [])
    if r.get("infeasible"):
        console.print(f"[bold red]not buildable[/bold red]: {r['infeasible']} (figures are what it would take)")
    if r.get("static_energy_pj") is not None:
        console.print(f"energy: static {human_energy(r['static_energy_pj'])}, "
                      f"dynamic {human_energy(r['dynamic_energy_pj'])}")
    ratio = r["add_vs_mul"]
    per_step = r.get("per_step") or {}
    beyond = {part: per_step.get(f"{part}_s") for part in BEYOND_KINDS if per_step.get(f"{part}_s")}
    table = Table(title="one step, by part" if beyond else "one step, by op kind")
    for col in ("kind", "energy", "latency"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, v in r["by_kind"].items():
        table.add_row(kind, human_energy(v["energy_pj"]), human_seconds(v["latency_s"]))
    for part, seconds in beyond.items():
        table.add_row(part.replace("_", " "), "", human_seconds(seconds))
    if beyond:
        table.add_row("[bold]step[/bold]", human_energy(per_step.get("energy_pj")),
                      f"[bold]{human_seconds(per_step.get('latency_s'))}[/bold]")
    console.print(table)
    res = Table(title="resources" + (f" ({ratio['pair']} ratio beside)" if ratio else ""))
    res.add_column("resource")
    res.add_column("value", justify="right")
    if ratio:
        res.add_column("add/mul", justify="right")
    for key, value in r["resources"].items():
        if isinstance(value, dict):
            continue
        shown = f"{value:,.0f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
        extra = [] if not ratio else [fmt_ratio(ratio["resources"].get(key))]
        res.add_row(key, shown, *extra)
    console.print(res)
    if ratio:
        times = {k: "n/a" if ratio[k] is None else f"x{fmt_ratio(ratio[k])}" for k in ("energy_pj", "latency_s")}
        console.print(f"{ratio['pair']}: energy {times['energy_pj']}, latency {times['latency_s']}")
    elif r.get("add_vs_mul_unavailable"):
        console.print(f"no add/mul ratio: the twin {r['add_vs_mul_unavailable']}")


def fmt_ratio(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_side_by_side(results: list[dict]) -> None:
    first = results[0]
    table = Table(title=f"ops per sequence  I={first['input_size']} H={first['hidden_size']} "
                        f"B={first['batch']} T={first['steps']}")
    table.add_column("kind")
    for r in results:
        table.add_column(r["cell"], justify="right")
    for kind in first["per_sequence"]:
        if any(r["per_sequence"][kind] for r in results):
            table.add_row(kind, *(f"{r['per_sequence'][kind]:,}" for r in results))
    for name in first["depth"]:
        table.add_row(f"{name.replace('_', ' ')} depth/step", *(str(r["depth"][name]) for r in results))
    widest_mul = [max((row["bits"] for row in r["per_step_by_bits"] if row["kind"] == "mul"), default=0)
                  for r in results]
    table.add_row("widest mul operand bits", *(str(b or "-") for b in widest_mul))
    terminal().print(table)


def print_counts(r: dict) -> None:
    console = terminal()
    title = (f"{r['cell']}  I={r['input_size']} H={r['hidden_size']} "
             f"B={r['batch']} T={r['steps']}")
    table = Table(title=title)
    for col in ("kind", "per step", "per sequence"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind, n in r["per_step"].items():
        if n:
            table.add_row(kind, f"{n:,}", f"{r['per_sequence'][kind]:,}")
    console.print(table)
    bits = Table(title="per step by operand width")
    for col in ("kind", "operand bits", "count"):
        bits.add_column(col, justify="right" if col == "count" else "left")
    for row in r["per_step_by_bits"]:
        widths = "x".join(str(b) for b in row["operand_bits"]) + (" (float)" if row["float"] else "")
        bits.add_row(row["kind"], widths, f"{row['count']:,}")
    console.print(bits)
    d = r["depth"]
    console.print(f"depth per step: critical path {d['critical_path']}, "
                  f"multiplicative {d['multiplicative']}, nonlinear {d['nonlinear']}")
    print_overflow_possible(console, r.get("overflow_possible") or [])


def print_overflow_possible(console, rows: list[dict]) -> None:
    """One warning line when some register is narrower than its values provably need."""
    if rows:
        worst = max(rows, key=lambda row: row["proven_bits"] - row["register_bits"])
        console.print(f"[bold yellow]overflow possible[/bold yellow] in {len(rows)} register(s) narrower than their "
                      f"values provably need (e.g. {worst['fx_node']} {worst['kind']}: {worst['register_bits']} bits "
                      f"held, {worst['proven_bits']} needed); some inputs can overflow there (--json: overflow_possible)")


def print_sweep(result, summary: dict) -> None:
    """What a sweep did, its headline add/mul latency ratios and the files it wrote."""
    from gatesim.report.summary import ratio_table

    console = terminal()
    console.print(f"{result.points:,} points: {result.computed:,} computed, {result.cached:,} from the cache, "
                  f"{summary['feasible']:,} feasible")
    grid = ratio_table(result.table, "latency")
    if not grid.empty:
        table = Table(title="add-gated / multiply-gated latency (median; below 1: add-gated cheaper)")
        for column in grid.columns:
            table.add_column(str(column), justify="right" if column.startswith("H=") else "left")
        for row in grid.itertuples(index=False):
            table.add_row(*map(str, row))
        console.print(table)
    for kind, path in result.files.items():
        console.print(f"  {kind:9s} {path}")


def print_training(r: dict) -> None:
    console = terminal()
    bits = "float" if r["weight_bits"] is None and r["act_bits"] is None else \
        f"weights {r['weight_bits']} bits, activations {r['act_bits']} bits"
    console.print(f"[bold]{r['cell']}[/bold] on {r['task']}  T={r['seq_len']} H={r['hidden_size']}  {bits}  "
                  f"seed {r['seed']}, {r['epochs']} epochs" + ("  (cached run)" if r.get("cached") else
                                                               f"  ({r['train_seconds']:.0f} s)"))
    table = Table(title=f"test {r['metric']} ({r['test_size']:,} sequences)")
    for column in ("epoch", "train loss", f"test {r['metric']}"):
        table.add_column(column, justify="right")
    for h in r["history"]:
        table.add_row(str(h["epoch"]), f"{h['train_loss']:.4f}", f"{h['test_' + r['metric']]:.4f}")
    console.print(table)
    console.print(f"Brevitas forward:     {r['metric']} = {r['value_brevitas']:.6g}")
    if r["value_simulator"] is None:
        console.print("integer simulator:    - (a float cell has no integer datapath)")
    else:
        verdict = "[green]agree exactly[/green]" if r["agree"] else \
            f"[red]DISAGREE in {r['mismatched_outputs']:,} outputs[/red]"
        console.print(f"integer simulator:    {r['metric']} = {r['value_simulator']:.6g}  ({verdict})")
    console.print(f"learning nothing:     {r['metric']} = {r['baseline']:.6g} (predict the training mean / "
                  f"the commonest class)")
    console.print(f"checkpoint: {r['checkpoint']}")
