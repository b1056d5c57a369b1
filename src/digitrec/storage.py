"""Writing files so that a failure is one clear line and never a half-written file.

Every file digitrec writes for keeps (checkpoints, exports, a run's metrics) goes through here:
written to a temp file beside its real name, synced, then renamed over it, so a crash, a kill or a
full disk leaves the old file or the new one. A run folder is checked before a long run starts
rather than after it, and the temp files a killed process leaves behind are cleared. An OSError
becomes an `OutputError` worded by `errors.os_error_message` (permission denied, disk full, ...).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

from .errors import OutputError, os_error_message

_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    # Hidden, and named after the file it becomes: `.last.pt.k2j4x9.tmp` (see remove_stale_temps).
    return f".{path.name}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_folder(path: Path) -> None:
    """mkdir -p, or one line naming the folder that could not be made (a file in the way, ...)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(os_error_message(e, path)) from None


def _write_temp(path: Path, data: bytes) -> str:
    """`data` in a synced temp file beside `path`; its name. Nothing is left behind on failure."""
    _make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_all(files: list[tuple[str | Path, bytes]]) -> None:
    """Write each (path, data) atomically, as one step as far as a file system allows: every temp
    file is written first and only then renamed, in the order given. A full disk or a kill while
    writing leaves all the old files; a kill among the renames, the first ones renamed."""
    temps: list[tuple[str, Path]] = []
    current = None
    try:
        for path, data in files:
            current = Path(path)
            temps.append((_write_temp(current, data), current))
        for tmp, path in temps:
            current = path
            os.replace(tmp, path)
    except OSError as e:
        raise OutputError(os_error_message(e, current)) from None
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)  # renamed ones are gone already


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file, then rename)."""
    atomic_write_all([(path, data)])


def append_line(path: str | Path, line: str) -> None:
    """Append `line` and a newline to the text file at `path`."""
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError as e:
        raise OutputError(os_error_message(e, path)) from None


def writable_folder(path: str | Path) -> Path:
    """Create folder `path` if needed and make sure a file can be written in it; one line
    (OutputError) if not. Called before a long run, so that a bad --out fails at once."""
    path = Path(path)
    _make_folder(path)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".digitrec-probe.", suffix=_TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(os_error_message(e, path)) from None
    return path


def remove_stale_temps(folder: str | Path, names) -> list[Path]:
    """Delete the temp files that a process killed while writing one of `names` in `folder` left
    behind (they are never renamed, so they would pile up); return what was deleted."""
    folder = Path(folder)
    stale = [p for name in names for p in folder.glob(f"{glob.escape(_temp_prefix(Path(name)))}*{_TEMP_SUFFIX}")]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale

