"""Reports of a sweep's results: one self-contained interactive HTML page (plotly.js inlined,
opens offline) and a markdown summary, both written atomically beside the results."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from gatesim.files import write_text_atomically
from gatesim.report.figures import FIGURES
from gatesim.report.summary import summary
from gatesim.results import read_results

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222}}
.figure{{margin:2em 0}} p.note{{color:#555}}</style>
<script type="text/javascript">{plotlyjs}</script></head>
<body><h1>{title}</h1><p class="note">{note}</p>
{figures}
</body></html>
"""


def render_html(table: pd.DataFrame, title: str, note: str = "") -> str:
    figures = {name: make(table) for name, make in FIGURES.items()}
    divs = [f'<div class="figure">{fig.to_html(full_html=False, include_plotlyjs=False, div_id=name)}</div>'
            for name, fig in figures.items() if fig is not None]  # None: the table has no such data
    return PAGE.format(title=html.escape(title), note=html.escape(note), plotlyjs=get_plotlyjs(),
                       figures="\n".join(divs))


def write_report(table: pd.DataFrame, out: Path, name: str, title: str | None = None) -> dict[str, Path]:
    """<out>/<name>.html and <out>/<name>.md."""
    title = title or name
    note = (f"{len(table):,} points from sweep '{name}'; hover a point for its design and figures, "
            f"click legend entries to hide or show them. The summary is in {name}.md.")
    return {"html": write_text_atomically(Path(out) / f"{name}.html", render_html(table, title, note)),
            "markdown": write_text_atomically(Path(out) / f"{name}.md", summary(table, name, title))}


def report(results: str | Path, out: str | Path | None = None, title: str | None = None) -> dict[str, Path]:
    """The report of a results file (.parquet or .csv), written beside it unless `out` is given."""
    path = Path(results)
    table = read_results(path)
    if path.is_dir():
        path = next(path.glob("*.parquet"))
    return write_report(table, Path(out) if out else path.parent, path.stem, title)
