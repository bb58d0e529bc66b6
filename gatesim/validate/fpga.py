"""The FPGA model beside published designs (gatesim/costs/data/fpga_published.yaml): each
design's totals, latency and, where its source breaks them down, components, predicted
exactly as `gatesim estimate --target fpga` predicts them with the design's parameters."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gatesim.costs.config import COSTS_DIR, Strict, load_file
from gatesim.costs.fpga import COMPONENTS, RESOURCES, FpgaParams
from gatesim.errors import GatesimError

PUBLISHED = COSTS_DIR / "fpga_published.yaml"
TIMES = ("sequence_cycles", "cycles_per_step", "initiation_interval_cycles")
# the band each quantity is held to (tests/test_costs.py): resources HLS counts by formula
# (DSP, block RAM) and cycles tight, logic (LUT, FF) looser: the model has no counterpart for
# HLS's control, pipeline registers and constant-multiplier reductions
BANDS = {"dsp": (0.67, 1.5), "bram18": (0.67, 1.5), **dict.fromkeys(TIMES, (0.67, 1.5)),
         "lut": (0.5, 2.0), "ff": (0.25, 2.0)}


class Design(FpgaParams):
    """The design: the cell, its sizes and widths, and its FPGA parameters as `estimate` takes them."""

    cell: str
    input_size: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    bits: int = Field(ge=2, le=32)  # weights, and activations unless act_bits says otherwise
    act_bits: int | None = Field(None, ge=2, le=32)

    def params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"cell", "input_size", "hidden_size", "bits", "act_bits"}, exclude_none=True)


class Amounts(Strict):
    lut: int = Field(ge=0)
    ff: int = Field(ge=0)
    dsp: int = Field(ge=0)
    bram18: int = Field(ge=0)


class Published(Amounts):
    sequence_cycles: int | None = Field(None, gt=0)
    cycles_per_step: int | None = Field(None, gt=0)
    initiation_interval_cycles: int | None = Field(None, gt=0)


class Entry(Strict):
    name: str
    label: str
    citation: str
    stage: str
    overlay: str | None = None
    not_held: dict[str, str] = {}
    design: Design
    published: Published
    components: dict[Literal[COMPONENTS], Amounts] = {}  # type: ignore[valid-type]


class Overlay(Strict):
    fitted_on: str
    description: str


class Entries(Strict):
    schema_version: int
    overlays: dict[str, Overlay] = {}
    designs: list[Entry]


def published(path: Path = PUBLISHED) -> Entries:
    found = load_file(Entries, path)
    names = {e.name for e in found.designs}
    for name, overlay in found.overlays.items():
        if overlay.fitted_on not in names:
            raise GatesimError(f"{path}: overlays.{name}.fitted_on: no design {overlay.fitted_on!r}")
    for e in found.designs:
        if e.overlay is not None and e.overlay not in found.overlays:
            raise GatesimError(f"{path}: design {e.name}: overlay {e.overlay!r} is not among overlays "
                               f"({', '.join(found.overlays) or 'none'})")
    return found


def designs(path: Path = PUBLISHED) -> list[Entry]:
    return published(path).designs


def predict(design: Design) -> dict[str, Any]:
    """What `gatesim estimate --target fpga --json` reports for the design (accumulators at 16
    bits or the model precision: hls4ml's default accum_t is the model precision, FINN-L's
    gate sums are 16 bits)."""
    from gatesim.cells import CellConfig
    from gatesim.pipeline import estimate_cell

    bits = design.bits
    config = CellConfig(weight_bits=bits, act_bits=design.act_bits or bits,
                        acc_bits=16 if design.architecture == "finn" else bits)
    return estimate_cell(design.cell, design.input_size, design.hidden_size, "fpga", 1, config, **design.params())


def compare(entry: Entry, shell: dict[str, float] | None = None, fitted: bool = False) -> list[dict[str, Any]]:
    """Rows for one design; `shell`: what its overlay adds beyond the layer (fitted)."""
    ours = predict(entry.design)
    rows = []
    for quantity, value in entry.published.model_dump(exclude_none=True).items():
        low, high = BANDS[quantity]
        got = ours["resources"][quantity] + (shell or {}).get(quantity, 0)
        ratio = got / value if value else None
        held = ("fitted: the overlay is published minus this layer" if fitted
                else entry.not_held.get(quantity, "band"))
        rows.append({"design": entry.name, "component": "total", "quantity": quantity, "published": value,
                     "gatesim": got, "ratio": ratio, "band": [low, high], "held": held,
                     "in_band": (ratio is not None and low <= ratio <= high) if held == "band" else None})
    for component, amounts in entry.components.items():
        for quantity, value in amounts.model_dump().items():
            got = ours["components"][component][quantity]
            rows.append({"design": entry.name, "component": component, "quantity": quantity, "published": value,
                         "gatesim": got, "ratio": got / value if value else None, "band": None,
                         "held": "components are shown, not held", "in_band": None})
    return rows


def shells(found: Entries) -> dict[str, dict[str, float]]:
    """Per overlay: published minus gatesim's layer, on the design it is fitted on (at least 0)."""
    by_name = {e.name: e for e in found.designs}
    out = {}
    for name, overlay in found.overlays.items():
        fit = by_name[overlay.fitted_on]
        ours = predict(fit.design)["resources"]
        out[name] = {q: max(0, v - ours[q]) for q, v in fit.published.model_dump(exclude_none=True).items()
                     if q in RESOURCES}
    return out


def validate(profile=None, cells=None, hidden=None, progress=lambda: None) -> dict[str, Any]:
    """One row per design, component and quantity; totals and latencies held to BANDS except
    where a design says why not (not_held) or its overlay was fitted on it."""
    found = published()
    fitted = shells(found)
    rows = []
    for entry in found.designs:
        overlay = found.overlays.get(entry.overlay) if entry.overlay else None
        rows.extend(compare(entry, fitted.get(entry.overlay), overlay is not None and overlay.fitted_on == entry.name))
        progress()
    held = [r for r in rows if r["in_band"] is not None]
    return {"target": "fpga", "source": str(PUBLISHED.name),
            "designs": [{"name": e.name, "label": e.label, "stage": e.stage, "overlay": e.overlay,
                         "citation": " ".join(e.citation.split()), **e.design.model_dump()} for e in found.designs],
            "overlays": {name: {**o.model_dump(), "description": " ".join(o.description.split()),
                                "fitted": fitted[name]} for name, o in found.overlays.items()},
            "bands": {k: list(v) for k, v in BANDS.items()}, "rows": rows,
            "all_in_band": all(r["in_band"] for r in held)}


LABELS = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram18": "BRAM18", "cycles_per_step": "step",
          "sequence_cycles": "sequence", "initiation_interval_cycles": "interval"}


def show(result: dict[str, Any]) -> None:
    from rich.table import Table

    from gatesim.terminal import terminal

    console = terminal()
    totals = [r for r in result["rows"] if r["component"] == "total"]
    groups: dict[str | None, list[dict]] = {}
    for design in result["designs"]:
        groups.setdefault(design["overlay"], []).append(design)
    for overlay, members in groups.items():
        names = {d["name"] for d in members}
        quantities = [q for q in LABELS if any(r["quantity"] == q and r["design"] in names for r in totals)]
        title = ("gatesim / published: single layers (cycles per step and sequence, interval)" if overlay is None
                 else f"gatesim / published: layer and overlay {overlay} (what the overlay adds fitted "
                      f"on {result['overlays'][overlay]['fitted_on']})")
        table = Table(title=title)
        table.add_column("design", no_wrap=True)
        for q in quantities:
            table.add_column(LABELS[q], justify="right", no_wrap=True)
        for d in members:
            got = {r["quantity"]: r for r in totals if r["design"] == d["name"]}
            table.add_row(d["label"], *(_ratio(got[q]) if q in got else "" for q in quantities))
        console.print(table)
    console.print("held to bands: " + ", ".join(f"{LABELS[q]} {lo:g}-{hi:g}" for q, (lo, hi) in result["bands"].items())
                  + "; (in parentheses): not held, fitted or a reason in --json")
    for design in result["designs"]:
        rows = [r for r in result["rows"] if r["design"] == design["name"] and r["component"] != "total"]
        if not rows:
            continue
        table = Table(title=f"{design['label']} by component: {design['cell']} I={design['input_size']} "
                            f"H={design['hidden_size']} {design['bits']} bits on {design['part']}, {design['stage']}")
        for col in ("component", "quantity", "published", "gatesim", "ratio"):
            table.add_column(col, justify="left" if col in ("component", "quantity") else "right", no_wrap=True)
        for r in rows:
            table.add_row(r["component"], LABELS[r["quantity"]], f"{r['published']:,}", f"{r['gatesim']:,}", _ratio(r))
        console.print(table)
    console.print("every held total in its band: " + ("yes" if result["all_in_band"] else "[red]NO[/red]"))


def _ratio(row: dict[str, Any]) -> str:
    text = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
    if row["component"] == "total" and row["held"] != "band":
        return f"({text})"
    return f"[red]{text}[/red]" if row["in_band"] is False else text
