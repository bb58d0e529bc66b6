"""Library entry points that span layers (`gatesim.sweep` is this module's `sweep`).

`sweep` runs the sweep (gatesim.sweep) and then writes the report (gatesim.report) from the
results table, so neither imports the other.
"""
from __future__ import annotations

import time
from pathlib import Path

from gatesim.report import write_report
from gatesim.sweep.config import SweepConfig
from gatesim.sweep.run import Progress, SweepResult, run_sweep


def sweep(config: SweepConfig | dict | str | Path, out: str | Path | None = None, workers: int | None = None,
          scheduler: str | None = None, progress: Progress | None = None, report: bool = True) -> SweepResult:
    """Run a sweep (a YAML path, a mapping as in one, or a SweepConfig). Results go to `out`
    (default reports/) as <name>.parquet and <name>.csv, plus <name>.html and <name>.md when
    `report`; `workers` local processes (default one per core) or a Dask `scheduler` address."""
    cfg, result = run_sweep(config, out, workers, scheduler, progress)
    if report:
        start = time.perf_counter()
        folder = result.files["parquet"].parent
        result.files.update(write_report(result.table, folder, cfg.name, title=cfg.description or cfg.name))
        result.seconds["report"] = time.perf_counter() - start
    return result
