"""Files appear whole or not at all: written beside their target, then renamed over it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) on a temporary path beside `path`, then move it into place; on any
    failure (or Ctrl-C) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def remove_stale_parts(path: Path) -> None:
    """Temporary files of `path` left by a writer that was killed (SIGKILL skips cleanup):
    those whose process no longer runs."""
    for part in path.parent.glob(f".{path.name}.*.part"):
        pid = part.name[len(path.name) + 2:-len(".part")]
        if pid.isdigit() and not running(int(pid)):
            part.unlink(missing_ok=True)


def running(pid: int) -> bool:
    """pid runs (a zombie, dead but not yet reaped by its own parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running, not ours to judge
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:  # no /proc (not Linux): os.kill's answer stands
        return True
