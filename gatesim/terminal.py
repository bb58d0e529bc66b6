"""Where tables are printed: the terminal's width, or, when output goes to a file or a pipe,
wide enough that no column is cut (rich would assume 80 columns and abbreviate); and the
human units figures are read in, in tables and reports alike."""
from __future__ import annotations

import os
import sys
from typing import Optional

REDIRECTED_WIDTH = 200


def terminal():
    """A console as wide as the terminal, or as COLUMNS says when it is set (rich reads it)."""
    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return Console()
    return Console(width=REDIRECTED_WIDTH)


SECONDS = ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s"), (60.0, "min"), (3600.0, "h"), (86400.0, "days"))
JOULES_PJ = ((1.0, "pJ"), (1e3, "nJ"), (1e6, "µJ"), (1e9, "mJ"), (1e12, "J"), (1e15, "kJ"))


def _human(value: Optional[float], units: tuple, none: str) -> str:
    """value in the largest unit it reaches, 3 significant digits; `none` when there is no figure."""
    if value is None or value != value or value == 0:
        return none
    size, name = units[0]
    for step, unit in units:
        if abs(value) >= step:
            size, name = step, unit
    return f"{value / size:.3g} {name}"


def human_seconds(value: Optional[float]) -> str:
    """1.5e-7 -> '150 ns', 5e5 -> '5.79 days'; 'n/a' when the model has no time."""
    return _human(value, SECONDS, "n/a")


def human_energy(pj: Optional[float]) -> str:
    """Picojoules in pJ ... J; 'n/a' where the model has no energy figure (HE targets)."""
    return _human(pj, JOULES_PJ, "n/a")
