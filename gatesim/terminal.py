"""Where tables are printed: the terminal's width, or, when output goes to a file or a pipe,
wide enough that no column is cut (rich would assume 80 columns and abbreviate)."""
from __future__ import annotations

import sys

REDIRECTED_WIDTH = 200


def terminal():
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=REDIRECTED_WIDTH)
