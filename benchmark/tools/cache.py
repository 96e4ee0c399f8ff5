"""What is in mmbench's on-disk cache (``MMBENCH_CACHE`` or ``~/.cache/mmbench``), and removing it.

The cache holds encoder outputs (``features/<key>.npz`` + ``.json``: the encoder's identity) and
parsed spreadsheets (``tables/<key>.npz`` + ``.json``); ``file_hashes.json`` remembers weight-file
hashes. Every entry can be rebuilt, so removing one only costs time: a run that finds it gone (or
half-removed) encodes again. ``prune`` removes least-recently-used entries (by the later of access
and modification time) until the cache fits a size.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError

SECTIONS = ("features", "tables")
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass
class CacheEntry:
    """One cached item: its files (same stem), total bytes, last use (epoch seconds) and what it is."""

    section: str
    key: str
    files: list[Path] = field(default_factory=list)
    size: int = 0
    last_used: float = 0.0
    what: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "key": self.key,
            "bytes": self.size,
            "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.last_used)),
            "what": self.what,
        }


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GB``, ``100MiB`` or a number of bytes -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), flags=re.I)
    if not match:
        raise UsageError(f"--max-size expects a size like 500M, 2G or 1.5GB, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def fmt_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _describe(meta_file: Path) -> str:
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return ""
    identity = meta.get("identity") or {}
    if isinstance(identity, dict) and identity.get("name"):
        shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in (meta.get("shapes") or {}).items())
        return f"encoder {identity['name']}" + (f" ({shapes})" if shapes else "")
    source = identity.get("table") if isinstance(identity, dict) else None
    rows = ((meta.get("shapes") or {}).get("rows") or [None])[0]
    return f"table {source}" + (f" ({rows} rows)" if rows is not None else "") if source else ""


def scan(root: Path) -> list[CacheEntry]:
    """The cache's entries, oldest use first; files outside the known sections count as ``other``."""
    root = Path(root)
    entries: dict[tuple[str, str], CacheEntry] = {}
    if not root.is_dir():
        return []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        section = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in SECTIONS else "other"
        key = path.name.split(".", 1)[0] if section != "other" else str(rel)
        entry = entries.setdefault((section, key), CacheEntry(section, key))
        stat = path.stat()
        entry.files.append(path)
        entry.size += stat.st_size
        entry.last_used = max(entry.last_used, stat.st_atime, stat.st_mtime)
        if path.suffix == ".json" and section != "other":
            entry.what = _describe(path)
    return sorted(entries.values(), key=lambda e: (e.last_used, e.section, e.key))


def remove(entry: CacheEntry) -> int:
    """Delete an entry's files (the payload first, so a reader never trusts a half-removed entry)."""
    freed = 0
    for path in sorted(entry.files, key=lambda p: p.suffix == ".json"):
        try:
            size = path.stat().st_size
            path.unlink()
            freed += size
        except FileNotFoundError:
            continue
    return freed


def clear(root: Path, section: str | None = None) -> tuple[int, int]:
    """Remove every entry (of ``section``); return (entries removed, bytes freed)."""
    if section is not None and section not in (*SECTIONS, "other"):
        raise UsageError(f"--section must be one of {', '.join((*SECTIONS, 'other'))}, got {section!r}")
    chosen = [e for e in scan(root) if section is None or e.section == section]
    freed = sum(remove(e) for e in chosen)
    for sub in SECTIONS:
        folder = Path(root) / sub
        if folder.is_dir() and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
    return len(chosen), freed


def prune(root: Path, max_bytes: int) -> tuple[list[CacheEntry], int]:
    """Remove least-recently-used entries until the cache holds at most ``max_bytes``; return the
    removed entries and the bytes left."""
    entries = scan(root)
    total = sum(e.size for e in entries)
    removed = []
    for entry in entries:  # oldest use first
        if total <= max_bytes:
            break
        total -= remove(entry)
        removed.append(entry)
    return removed, total
