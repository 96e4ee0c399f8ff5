"""Output paths checked before any work: a folder or file mmbench can create and write.

``--out`` that is a file, a dangling symbolic link, a path under a file or on a read-only mount
used to fail only when the first record was written, after minutes of training. These checks run
first and raise :class:`~mmbench.errors.UsageError` (exit code 2) naming the option and the path.
Nothing is created: writability is probed with a hidden temporary file in the nearest existing
folder, removed at once (a permission check alone says nothing for root or read-only mounts).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmbench.errors import UsageError


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (links followed)."""
    current = path
    while not current.exists() and not current.is_symlink():
        if current.parent == current:
            break
        current = current.parent
    return current


def _probe(folder: Path, option: str, shown: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".mmbench-write-test-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{option} {shown}: cannot write into {folder} ({reason})") from None
    os.close(fd)
    os.unlink(name)


def _check_under(path: Path, start: Path, option: str) -> None:
    """The nearest existing folder at or above ``start`` must be a writable folder."""
    base = _nearest_existing(start)
    if base.is_symlink() and not base.exists():
        raise UsageError(f"{option} {path}: {base} is a symbolic link to a path that does not exist")
    if not base.is_dir():
        raise UsageError(f"{option} {path}: lies under {base}, which is a file, not a folder")
    _probe(base, option, path)


def check_writable_dir(path: Path | str, option: str = "--out") -> Path:
    """``path`` if it is (or can be created as) a writable folder; else a UsageError naming it."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise UsageError(f"{option} {path}: a symbolic link to {os.readlink(path)}, which does not exist")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    _check_under(path, path, option)
    return path


def check_writable_file(path: Path | str, option: str = "--output") -> Path:
    """``path`` if a file can be written there (its folder created if needed); else a UsageError."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if path.is_symlink() and not path.exists():
        raise UsageError(f"{option} {path}: a symbolic link to {os.readlink(path)}, which does not exist")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path}: exists and is not a regular file")
    _check_under(path, path.parent, option)
    return path
