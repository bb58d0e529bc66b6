"""Content-addressed store of finished sweep rows (SQLite): a row's key hashes its point and
everything its figures depend on (gatesim's code, the cost files, calibration profiles), so a
re-run recomputes nothing and a changed model recomputes everything it touches. Each batch is
one transaction: an interrupted sweep keeps every finished batch and no partial one."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any, Iterable

from gatesim.costs.config import COSTS_DIR
from gatesim.errors import GatesimError

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@cache
def code_fingerprint() -> str:
    """gatesim's source and cost files: what every row's figures are computed by."""
    return _digest([*PACKAGE_DIR.rglob("*.py"), *COSTS_DIR.glob("*.yaml")])


@cache
def file_digest(path: Path) -> str:
    return _digest([path])


def point_key(point: dict[str, Any], fingerprint: str) -> str:
    """sha256 of the point (profiles by content, not by path) and the code fingerprint."""
    params = dict(point["params"])
    if params.get("profile"):
        params["profile"] = file_digest(Path(params["profile"]).resolve())
    canonical = json.dumps({**point, "params": params, "code": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResultCache:
    """key -> row (JSON) in one SQLite file; safe to share between sweeps."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise GatesimError(f"{self.path}: not a gatesim cache ({exc}); delete it to start afresh") from exc

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM rows")}

    def put(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        with self.db:  # one transaction: all of the batch or none of it
            self.db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)",
                                [(k, json.dumps(r)) for k, r in rows])

    def get(self, keys: list[str]) -> list[dict[str, Any]]:
        """Rows in the order of `keys` (all must be present)."""
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for k, r in self.db.execute(f"SELECT key, row FROM rows WHERE key IN ({marks})", chunk):
                found[k] = json.loads(r)
        missing = [k for k in keys if k not in found]
        if missing:
            raise GatesimError(f"{self.path}: {len(missing)} rows missing from the cache")
        return [found[k] for k in keys]

    def close(self) -> None:
        self.db.close()
