"""Per-utterance extraction results (shards): stored as soon as computed, reused while the input
file is unchanged, so an interrupted extraction resumes and a repeated one does no work."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.records import atomic_write_bytes


def encoder_key(identity: dict[str, Any]) -> str:
    """Folder name of an encoder's shards: its name plus a hash of its full identity."""
    blob = json.dumps(identity, sort_keys=True, default=str)
    return f"{identity['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def safe_name(ident: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ident)
    if safe != ident or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(ident.encode()).hexdigest()[:8]}"
    return safe


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ShardStore:
    """Per-utterance results of one encoder: ``<root>/<key>/<id>.npz`` with the input's fingerprint."""

    def __init__(self, root: Path, key: str) -> None:
        self.folder = Path(root) / key

    def path(self, ident: str) -> Path:
        return self.folder / f"{safe_name(ident)}.npz"

    def load(self, ident: str, media: Path) -> tuple[np.ndarray, str, dict[str, Any] | None] | None:
        """The stored value, input hash and media info, if a shard exists for this very input file."""
        part = self.path(ident)
        if not part.is_file():
            return None
        try:
            with np.load(part, allow_pickle=False) as z:
                value, sha = z["value"], str(z["input_sha256"])
                size, mtime = int(z["input_size"]), int(z["input_mtime_ns"])
                info = json.loads(str(z["media_info"])) if "media_info" in z.files else None
        except Exception:  # a damaged shard is simply recomputed
            return None
        stat = media.stat()
        if (size, mtime) != (stat.st_size, stat.st_mtime_ns) and sha256_file(media) != sha:
            return None
        return value, sha, info

    def save(
        self, ident: str, media: Path, value: np.ndarray, sha: str, info: dict[str, Any] | None = None
    ) -> None:
        stat = media.stat()
        buf = io.BytesIO()
        np.savez(
            buf,
            value=np.asarray(value, dtype=np.float32),
            input_sha256=np.array(sha),
            input_size=np.array(stat.st_size),
            input_mtime_ns=np.array(stat.st_mtime_ns),
            media_info=np.array(json.dumps(info)),
        )
        atomic_write_bytes(self.path(ident), buf.getvalue())
