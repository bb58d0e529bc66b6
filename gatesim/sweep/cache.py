"""Content-addressed store of finished sweep rows (SQLite): a row's key hashes its point and
everything its figures depend on (gatesim's code, the cost files, calibration profiles), so a
re-run recomputes nothing and a changed model recomputes everything it touches. Each batch is
one transaction: an interrupted sweep keeps every finished batch and no partial one.

Sweeps sharing one cache share the work: a sweep claims the points it is about to compute
(`claim`), another skips points a live sweep has claimed and waits for their rows, and takes
them over when that sweep has died (its process is gone) without saving them."""
from __future__ import annotations

import hashlib
import json
import os
import socket
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


def _gone(host: str, pid: int) -> bool:
    """Whether the claiming process has ended (a claim from another host is trusted)."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class ResultCache:
    """key -> row (JSON) in one SQLite file; safe to share between sweeps."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=30000")  # another sweep's transaction: wait, do not fail
            self.db.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, host TEXT NOT NULL, "
                            "pid INTEGER NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise GatesimError(f"{self.path}: not a gatesim cache ({exc}); delete it to start afresh") from exc

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM rows")}

    def put(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        with self.db:  # one transaction: all of the batch or none of it, and its claims gone
            self.db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)",
                                [(k, json.dumps(r)) for k, r in rows])
            self.db.executemany("DELETE FROM claims WHERE key = ?", [(k,) for k, _ in rows])

    def claim(self, keys: list[str]) -> list[str]:
        """Of `keys` without a row, those this process may compute: unclaimed, or claimed by a
        process of this host that is gone. They are claimed for it in one transaction."""
        me = (socket.gethostname(), os.getpid())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")  # no other sweep claims between the read and the write
            have = self.keys()
            claimed = {k: (h, p) for k, h, p in self.db.execute("SELECT key, host, pid FROM claims")}
            mine = [k for k in keys if k not in have and (k not in claimed or claimed[k] == me
                                                          or _gone(*claimed[k]))]
            self.db.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", [(k, *me) for k in mine])
        return mine

    def release(self) -> None:
        """Drop this process's claims (it stops: another sweep may take them)."""
        with self.db:
            self.db.execute("DELETE FROM claims WHERE host = ? AND pid = ?", (socket.gethostname(), os.getpid()))

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
