"""Apply the protocol's encoders to every modality, caching frozen encoders' outputs on disk.

The cache key is the encoder's full identity (``EncoderPlugin.identity``: name, weights hash,
pooling, max length, ...) plus the data fingerprint and the modality, so a cache entry can never
be served for another model or other data. Entries are ``.npz`` files read with
``allow_pickle=False`` and checked against a stored SHA-256 before use; a bad entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from mmbench.data import MultimodalData
from mmbench.records import atomic_write_bytes, atomic_write_text

DEFAULT_ENCODER = "precomputed"


def cache_dir() -> Path:
    """``MMBENCH_CACHE`` or ``~/.cache/mmbench``."""
    root = os.environ.get("MMBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "mmbench"


def encoder_spec(protocol: dict[str, Any], modality: str) -> tuple[str, dict[str, Any]]:
    """The encoder chosen for a modality: ``name`` or ``{name: ..., <options>}``."""
    value = protocol.get("encoders", {}).get(modality, DEFAULT_ENCODER)
    if isinstance(value, dict):
        options = dict(value)
        name = options.pop("name", DEFAULT_ENCODER)
        return str(name), options
    return str(value), {}


def cache_key(identity: dict[str, Any], data_fingerprint: str, modality: str) -> str:
    blob = json.dumps(
        {"identity": identity, "data": data_fingerprint, "modality": modality},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _load_cached(path: Path, meta_path: Path) -> dict[str, np.ndarray] | None:
    try:
        meta = json.loads(meta_path.read_text())
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta["sha256"]:
            return None
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in meta["streams"]}
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def _store(path: Path, meta_path: Path, streams: dict[str, np.ndarray], identity: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **streams)
    payload = buf.getvalue()
    atomic_write_bytes(path, payload)
    atomic_write_text(
        meta_path,
        json.dumps(
            {
                "sha256": hashlib.sha256(payload).hexdigest(),
                "streams": list(streams),
                "identity": identity,
            },
            default=str,
            indent=1,
        ),
    )


def encode_dataset(
    data: MultimodalData, protocol: dict[str, Any], registry: Any, log: Any = None
) -> tuple[MultimodalData, dict[str, Any]]:
    """Return numeric data (every modality encoded) and, per modality, the encoder identity.

    ``log`` (optional) is called with a short message whenever an encoder runs or the cache hits.
    """
    modalities: dict[str, dict[str, np.ndarray]] = {}
    used: dict[str, Any] = {}
    for modality in data.modality_names:
        name, options = encoder_spec(protocol, modality)
        encoder = registry.create("encoder", name)
        identity = encoder.identity(options)
        used[modality] = {"name": name, "identity": identity, "cache": "none"}
        if not getattr(encoder, "cacheable", True) or getattr(encoder, "trainable", False):
            modalities[modality] = encoder.encode(data, modality, options)
            continue
        key = cache_key(identity, data.fingerprint, modality)
        path = cache_dir() / "features" / f"{key}.npz"
        meta_path = path.with_suffix(".json")
        cached = _load_cached(path, meta_path) if path.exists() and meta_path.exists() else None
        if cached is not None:
            used[modality]["cache"] = "hit"
            modalities[modality] = cached
            if log:
                log(f"{modality}: {name} features loaded from cache ({path.name})")
            continue
        if log:
            log(f"{modality}: encoding with {name}")
        streams = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in encoder.encode(data, modality, options).items()
        }
        _store(path, meta_path, streams, identity)
        used[modality]["cache"] = "miss"
        modalities[modality] = streams
    encoded = replace(data, modalities=modalities, raw={}, _fingerprint=data.fingerprint)
    return encoded, used
