"""Apply the protocol's encoders to every modality, caching frozen encoders' outputs on disk.

The cache key is the encoder's full identity (``EncoderPlugin.identity``: name, weights hash,
pooling, max length, ...) plus the data fingerprint and the modality, so a cache entry can never
be served for another model or other data. Identities are computed without loading a model:
weight files are hashed once and the hash is remembered by (path, size, mtime), see
:func:`file_sha256`. Entries are ``.npz`` files read with ``allow_pickle=False`` and checked
against a stored SHA-256 before use; a bad entry is rebuilt.

Encoders trained inside the fusion model (``EncoderPlugin.in_model``) are not run here: their
raw field is tokenised once into ``MultimodalData.in_model`` (see :mod:`mmbench.training.in_model`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.contracts import LENGTHS_KEY
from mmbench.data import MultimodalData
from mmbench.errors import PluginError, UsageError
from mmbench.records import atomic_write_bytes, atomic_write_text

DEFAULT_ENCODER = "precomputed"
_HASH_INDEX = "file_hashes.json"


def cache_dir() -> Path:
    """``MMBENCH_CACHE`` or ``~/.cache/mmbench``."""
    root = os.environ.get("MMBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "mmbench"


#: Cache folders already checked in this process: path -> usable (each unusable one warned once).
_CHECKED: dict[str, bool] = {}


def usable_cache_dir() -> Path | None:
    """:func:`cache_dir` if it is (or can be made) a writable folder, else ``None``.

    A read-only cache folder, a cache path that is a file or a ``HOME`` that is a file must not
    stop a run: mmbench then works without a cache, after one warning on stderr naming the folder
    and the reason (once per folder and process).
    """
    import tempfile

    error = ""
    try:
        root: Path | None = cache_dir()
    except RuntimeError as exc:  # no home folder at all
        root, error = None, str(exc)
    key = str(root)
    if key in _CHECKED:
        return root if _CHECKED[key] else None
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".mmbench-write-test-", dir=root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            error = exc.strerror or type(exc).__name__
    _CHECKED[key] = not error
    if error:
        from mmbench.ui.console import err_console

        err_console.print(
            f"warning: cache folder {root} is unusable ({error}); running without a cache "
            "(set MMBENCH_CACHE to a writable folder)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return None
    return root


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


def _stat_key(stat: os.stat_result) -> dict[str, int]:
    # ctime is set by the kernel on every change of content or metadata (os.utime included), so
    # an edited file cannot pass for the old one by restoring its size and modification time.
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "ino": stat.st_ino,
    }


def file_sha256(path: Path | str, remember: bool = True) -> str:
    """SHA-256 of a file's bytes.

    With ``remember`` (model weights: large, rarely edited) the hash is remembered by real path,
    size, mtime, ctime and inode, so weights hash once. Data files are hashed in full every
    time (``remember=False``): their hash keys the parsed-table cache and must not be fooled.
    """
    real = Path(path).resolve()
    stat = real.stat()
    root = usable_cache_dir() if remember else None
    index_path = root / _HASH_INDEX if root is not None else None
    index: dict[str, Any] = {}
    if index_path is not None:
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        entry = index.get(str(real)) if isinstance(index, dict) else None
        if isinstance(entry, dict) and {k: entry.get(k) for k in _stat_key(stat)} == _stat_key(stat):
            return str(entry["sha256"])
    digest = hashlib.sha256()
    with real.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if index_path is not None and isinstance(index, dict):
        index[str(real)] = {**_stat_key(stat), "sha256": digest.hexdigest()}
        with contextlib.suppress(OSError):  # a read-only cache only costs re-hashing next time
            atomic_write_text(index_path, json.dumps(index, indent=1, sort_keys=True))
    return digest.hexdigest()


def load_cached(path: Path, meta_path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """Streams and metadata of a cache entry (``.npz`` + ``.json``), or None if missing, corrupt
    or not matching its recorded sha256."""
    try:
        meta = json.loads(meta_path.read_text())
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta["sha256"]:
            return None
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {k: npz[k] for k in meta["streams"]}, meta
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def store(
    path: Path, meta_path: Path, streams: dict[str, np.ndarray], identity: dict, seconds: float
) -> None:
    """Write a cache entry atomically: the arrays (``.npz``) and their sha256, shapes and identity."""
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
                "shapes": {k: list(v.shape) for k, v in streams.items()},
                "identity": identity,
                "encode_seconds": round(seconds, 3),
            },
            default=str,
            indent=1,
        ),
    )


def check_streams(out: dict[str, Any], n: int, name: str, modality: str) -> dict[str, np.ndarray]:
    """Validate an encoder's output: float32 ``[N, D]`` or ``[N, T, D]`` streams (+ lengths)."""
    streams: dict[str, np.ndarray] = {}
    for key, value in out.items():
        arr = np.asarray(value)
        if key == LENGTHS_KEY:
            arr = arr.astype(np.int64, copy=False)
            if arr.shape != (n,):
                raise PluginError(f"encoder {name!r} returned {arr.shape} lengths for {n} samples")
        else:
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if arr.ndim not in (2, 3) or arr.shape[0] != n:
                raise PluginError(
                    f"encoder {name!r} returned stream {modality}/{key} of shape {arr.shape}; "
                    f"expected [{n}, D] or [{n}, T, D]"
                )
        streams[key] = arr
    if not any(k != LENGTHS_KEY for k in streams):
        raise PluginError(f"encoder {name!r} returned no feature stream for modality {modality!r}")
    return streams


def _in_model(encoder: Any, name: str, data: MultimodalData, modality: str, options: dict) -> dict:
    """Tokens (the dataset's own when it gives them, else the encoder's) and the module's shape."""
    given = data.in_model.get(modality, {}).get("tokens")
    tokens = {
        k: np.ascontiguousarray(v, dtype=np.int64)
        for k, v in (given if given is not None else encoder.tokenize(data, modality, options)).items()
    }
    if not tokens or any(t.ndim != 2 or t.shape[0] != data.n for t in tokens.values()):
        raise PluginError(f"encoder {name!r} must tokenize {modality!r} into int arrays [N, T]")
    dim, sequence = encoder.module_output(options)
    return {
        "encoder": name,
        "options": options,
        "dim": int(dim),
        "sequence": bool(sequence),
        "lr": options.get("lr"),
        "tokens": tokens,
    }


def encode_dataset(
    data: MultimodalData, protocol: dict[str, Any], registry: Any, log: Any = None
) -> tuple[MultimodalData, dict[str, Any]]:
    """Return numeric data (every modality encoded) and, per modality, what encoded it.

    The second value (recorded in every run record) holds per modality the encoder ``name``,
    its ``identity``, ``mode`` (``frozen`` or ``finetune``), ``cache`` (``hit``, ``miss`` or
    ``none``), ``seconds`` (this call's time: encoding, or loading from the cache) and
    ``encode_seconds`` (the time encoding takes: this call's, or the one stored with a cache hit).
    ``log`` (optional) receives one line per encoded modality.
    """
    log = log or (lambda message: None)
    for modality in protocol.get("encoders", {}):
        if modality not in data.modality_names:
            log(
                f"warning: encoders.{modality} is set but {data.name} has no modality {modality!r} "
                f"(it has {', '.join(data.modality_names)})"
            )
    modalities: dict[str, dict[str, np.ndarray]] = {}
    lengths = dict(data.lengths)
    in_model: dict[str, dict[str, Any]] = {}
    used: dict[str, Any] = {}
    for modality in data.modality_names:
        name, options = encoder_spec(protocol, modality)
        encoder = registry.create("encoder", name)
        identity = encoder.identity(options)
        trained = bool(encoder.in_model(options))
        entry = {"name": name, "identity": identity, "mode": "finetune" if trained else "frozen"}
        entry.update(cache="none", options=options)
        used[modality] = entry
        t0 = time.perf_counter()
        if modality in data.in_model and not trained:
            raise UsageError(
                f"{data.name} gives modality {modality!r} as token ids "
                f"({data.in_model[modality].get('source', 'the dataset')}); choose an encoder trained "
                f"inside the model, e.g. --encoder {modality}=hf-text-finetune"
            )
        if trained:
            in_model[modality] = _in_model(encoder, name, data, modality, options)
            entry["seconds"] = entry["encode_seconds"] = round(time.perf_counter() - t0, 3)
            log(f"{modality}: {name} is trained inside the model (tokenised in {entry['seconds']:.1f}s)")
            continue
        root = usable_cache_dir()
        if not getattr(encoder, "cacheable", True) or root is None:
            streams = check_streams(encoder.encode(data, modality, options), data.n, name, modality)
        else:
            key = cache_key(identity, data.fingerprint, modality)
            path = root / "features" / f"{key}.npz"
            meta_path = path.with_suffix(".json")
            cached = load_cached(path, meta_path) if path.exists() and meta_path.exists() else None
            if cached is not None:
                streams, meta = cached
                entry["cache"] = "hit"
                seconds = time.perf_counter() - t0
                was = meta.get("encode_seconds")
                entry["encode_seconds"] = was
                log(
                    f"{modality}: {name} features loaded from cache in {seconds:.2f}s "
                    f"(encoding took {was}s; key {key[:12]})"
                )
            else:
                log(f"{modality}: encoding with {name}")
                streams = check_streams(encoder.encode(data, modality, options), data.n, name, modality)
                seconds = time.perf_counter() - t0
                with contextlib.suppress(OSError):  # a full or vanished cache costs encoding again
                    store(path, meta_path, streams, identity, seconds)
                entry["cache"] = "miss"
                log(f"{modality}: {name} encoded {data.n} samples in {seconds:.1f}s (cached as {key[:12]})")
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        entry.setdefault("encode_seconds", entry["seconds"])  # hit: the stored encoding time
        if LENGTHS_KEY in streams:
            lengths[modality] = streams.pop(LENGTHS_KEY)
        modalities[modality] = streams
    encoded = replace(
        data,
        modalities=modalities,
        raw={},
        lengths=lengths,
        in_model=in_model,
        _fingerprint=data.fingerprint,
    )
    return encoded, used
