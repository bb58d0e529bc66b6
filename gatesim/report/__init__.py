"""Reports of a sweep's results: one self-contained interactive HTML page (plotly.js inlined,
opens offline) and a markdown summary, both written atomically beside the results."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from gatesim.errors import GatesimError
from gatesim.files import write_text_atomically
from gatesim.report.figures import FIGURES, validated_ratios
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


VALIDATED = "validate-*.json"  # `gatesim validate TARGET --out FOLDER` results the report shows beside predictions


def load_validated(folder: Path) -> dict[str, dict]:
    """{target: result} of the `gatesim validate` results saved in `folder`."""
    out = {}
    for path in sorted(Path(folder).glob(VALIDATED)):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GatesimError(f"{path}: not a `gatesim validate --out` result ({exc})") from None
        if not isinstance(result, dict) or "target" not in result:
            raise GatesimError(f"{path}: not a `gatesim validate --out` result (no 'target' field)")
        out[result["target"]] = {**result, "source": f"{path.name}, {result.get('measured_on', 'unknown date')}"}
    return out


def render_html(table: pd.DataFrame, title: str, note: str = "", validated: dict[str, dict] | None = None) -> str:
    figures = {name: make(table) for name, make in FIGURES.items()}
    figures["validated_ratios"] = validated_ratios(table, validated)
    divs = [f'<div class="figure">{fig.to_html(full_html=False, include_plotlyjs=False, div_id=name)}</div>'
            for name, fig in figures.items() if fig is not None]  # None: the table has no such data
    return PAGE.format(title=html.escape(title), note=html.escape(note), plotlyjs=get_plotlyjs(),
                       figures="\n".join(divs))


def write_report(table: pd.DataFrame, out: Path, name: str, title: str | None = None,
                 validated_from: Path | None = None) -> dict[str, Path]:
    """<out>/<name>.html and <out>/<name>.md; validation results are read from `validated_from`
    (default: `out`)."""
    title = title or name
    validated = load_validated(validated_from or out)
    seen = (f" Measured add/mul ratios from {', '.join(sorted(validated))} validation are shown beside the "
            f"predicted ones." if validated else
            f" No validation results beside it: `gatesim validate TARGET --out {out}` adds measured ratios.")
    note = (f"{len(table):,} points from sweep '{name}'; hover a point for its design and figures, "
            f"click legend entries to hide or show them. The summary is in {name}.md.{seen}")
    return {"html": write_text_atomically(Path(out) / f"{name}.html", render_html(table, title, note, validated)),
            "markdown": write_text_atomically(Path(out) / f"{name}.md", summary(table, name, title, validated))}


def report(results: str | Path, out: str | Path | None = None, title: str | None = None) -> dict[str, Path]:
    """The report of a results file (.parquet or .csv), written beside it unless `out` is given;
    `gatesim validate --out` results beside the results file are shown too."""
    path = Path(results)
    table = read_results(path)
    if path.is_dir():
        path = next(path.glob("*.parquet"))
    return write_report(table, Path(out) if out else path.parent, path.stem, title, validated_from=path.parent)
