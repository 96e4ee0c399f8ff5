"""Run records: one JSON file per (dataset, fusion, protocol fingerprint, params, seed).

Files are written atomically (temporary file in the same folder, fsync, rename), so a run
killed at any moment leaves either the complete old state or the complete new one: a reader
never sees half a record. Test predictions are stored beside each record.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_SUFFIX = ".json"
PREDICTIONS_SUFFIX = ".predictions.json"
CHECKPOINT_SUFFIX = ".safetensors"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file + rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def record_stem(dataset: str, fusion: str, protocol_fp: str, tag: str, seed: int) -> str:
    """File stem that identifies a run; equal runs map to equal names (sweeps skip them)."""
    return f"{dataset}__{fusion}__{protocol_fp}__{tag}__seed{seed}"


def record_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}{RECORD_SUFFIX}"


def predictions_path(record_file: Path) -> Path:
    return record_file.with_name(record_file.name[: -len(RECORD_SUFFIX)] + PREDICTIONS_SUFFIX)


def checkpoint_path(record_file: Path) -> Path:
    return record_file.with_name(record_file.name[: -len(RECORD_SUFFIX)] + CHECKPOINT_SUFFIX)


def write_record(out_dir: Path, stem: str, record: dict[str, Any], predictions: dict[str, Any]) -> Path:
    """Write predictions first, then the record: a record on disk implies its predictions
    (and its checkpoint, which the runner writes before calling this). Sets
    ``record["predictions_file"]``."""
    path = record_path(out_dir, stem)
    atomic_write_json(predictions_path(path), predictions)
    record["predictions_file"] = predictions_path(path).name
    atomic_write_json(path, record)
    return path


def is_record_file(path: Path) -> bool:
    return (
        path.name.endswith(RECORD_SUFFIX)
        and not path.name.endswith(PREDICTIONS_SUFFIX)
        and not path.name.startswith(".")
    )


def load_record(path: Path) -> dict[str, Any] | None:
    """One record with ``_path`` set, or None if the file is missing, truncated or not a record."""
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or "schema_version" not in rec or "metrics" not in rec:
        return None
    rec["_path"] = str(path)
    return rec


def load_records(runs_dir: Path) -> list[dict[str, Any]]:
    """All readable records under ``runs_dir`` (recursively), each with ``_path`` set.

    Files that are not valid records (wrong schema, truncated JSON) are skipped: atomic writes
    mean these are not mmbench's own, and a leaderboard must not read them.
    """
    records = (load_record(p) for p in sorted(Path(runs_dir).rglob(f"*{RECORD_SUFFIX}")) if is_record_file(p))
    return [r for r in records if r is not None]
