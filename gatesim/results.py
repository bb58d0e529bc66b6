"""The results table: one row per design point x target, written as Parquet and CSV (each file
appears whole or not at all) and read back with errors that say what is wrong. The sweep
writes it and the report reads it; neither knows the other."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatesim.cells.config import BITS, VARIANT_AXES
from gatesim.costs.targets import swept_params
from gatesim.errors import GatesimError
from gatesim.files import write_atomically

if TYPE_CHECKING:
    import pandas as pd

# What a design point is: the columns that identify it (with its target and parameters).
DESIGN = ("cell", "input_size", "hidden_size", "steps", "batch", *BITS, *VARIANT_AXES)
REQUIRED = ("key", "cell", "pair", "gating", "target", "hidden_size", "energy_pj", "latency_s", "feasible")


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a table: what a point is (design, target, parameters), then its figures."""
    import pandas as pd  # here, not at import: every command imports this module, few need pandas

    frame = pd.DataFrame.from_records(rows)
    first = ["key", *DESIGN, "pair", "gating", "target", *swept_params(), "feasible", "error", "energy_pj",
             "latency_s", "step_energy_pj", "step_latency_s"]
    first = [c for c in first if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    for column in ("error", *VARIANT_AXES, *swept_params()):  # text parameters: one dtype whatever is missing
        if column in frame and frame[column].dtype == object and frame[column].dropna().map(type).eq(str).all():
            frame[column] = frame[column].astype("string")
    return frame


def write_results(frame: pd.DataFrame, out: Path, name: str) -> dict[str, Path]:
    """<out>/<name>.parquet and <out>/<name>.csv."""
    parquet = write_atomically(out / f"{name}.parquet", lambda p: frame.to_parquet(p, index=False))
    csv = write_atomically(out / f"{name}.csv", lambda p: frame.to_csv(p, index=False))
    return {"parquet": parquet, "csv": csv}


def read_results(path: str | Path) -> pd.DataFrame:
    """A results table written by `gatesim sweep` (.parquet or .csv)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.parquet"))
        if len(found) != 1:
            raise GatesimError(f"{path}: a folder with {len(found)} .parquet files; name the results file")
        path = found[0]
    if not path.is_file():
        raise GatesimError(f"{path}: no such results file (gatesim sweep writes <out>/<name>.parquet)")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise GatesimError(f"{path}: expected a .parquet or .csv results file")
    except GatesimError:
        raise
    except Exception as exc:  # pyarrow and the CSV parser raise many types for a damaged file
        raise GatesimError(f"{path}: cannot read it as {path.suffix[1:]} ({type(exc).__name__}: {exc}); "
                           f"re-run the sweep to rewrite it") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise GatesimError(f"{path}: not a gatesim results table: no column {', '.join(missing)}")
    check_table(frame, path)
    return frame


def check_table(frame: pd.DataFrame, path: Path) -> None:
    """What `gatesim sweep` writes and nothing else: rows, known targets, sizes >= 1, figures
    that are numbers, and a figure on every feasible row."""
    import pandas as pd

    from gatesim.costs.targets import TARGETS

    where = f"{path}: not a table gatesim sweep writes"
    if frame.empty:
        raise GatesimError(f"{where}: it has no rows")
    unknown = sorted(set(frame["target"].astype(str)) - set(TARGETS))
    if unknown:
        raise GatesimError(f"{where}: target {unknown[0]!r}; targets are {', '.join(TARGETS)}")
    for column in ("energy_pj", "latency_s", "hidden_size", *(c for c in ("input_size", "steps", "batch")
                                                              if c in frame)):
        if pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].dropna()  # a column of infeasible points only is all null: no figures, fine
        if len(values) and not pd.api.types.is_numeric_dtype(pd.Series(values.tolist())):
            raise GatesimError(f"{where}: column {column} holds text (e.g. {values.iloc[0]!r}), not numbers")
    for column in ("hidden_size", *(c for c in ("input_size", "steps", "batch") if c in frame)):
        bad = frame[column][~(frame[column] >= 1)]
        if len(bad):
            raise GatesimError(f"{where}: {column} {bad.iloc[0]!r} in row {bad.index[0]}; sizes are whole numbers >= 1")
    feasible = frame["feasible"].astype(bool)
    blank = frame.index[feasible & frame["latency_s"].isna()]
    if len(blank):
        raise GatesimError(f"{where}: row {blank[0]} is feasible but has no latency_s")
