"""Files appear whole or not at all: written where no name points at them, then renamed
over their target."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) on a temporary path beside `path`, then move it into place; on any
    failure (or Ctrl-C) the temporary file is removed and `path` is untouched. Where the
    filesystem allows (Linux, O_TMPFILE), the file is written nameless and given a name only
    once whole, so even SIGKILL, which skips every cleanup, leaves nothing behind; elsewhere
    a killed writer's `.part` file is removed by the next write of the same path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    part = f".{path.name}.{os.getpid()}.part"
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        nameless = _nameless_file(path.parent)
        try:
            if nameless is None:
                write(path.parent / part)
            else:
                write(Path(f"/proc/self/fd/{nameless}"))
                # linkat with AT_SYMLINK_FOLLOW (a dir fd makes os.link use it): names the open file
                os.link(f"/proc/self/fd/{nameless}", part, dst_dir_fd=folder)
            os.replace(part, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(part, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
        finally:
            if nameless is not None:
                os.close(nameless)
    finally:
        os.close(folder)
    return path


def _nameless_file(folder: Path) -> int | None:
    """A writable file in `folder` that no name points at yet (O_TMPFILE), or None where the
    system or filesystem has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(folder, flag | os.O_WRONLY, 0o666)
    except OSError:
        return None


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
