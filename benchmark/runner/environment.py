"""What a record must say about where it ran: versions, device, git commit, command line."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import mmbench


def git_commit() -> str | None:
    """The mmbench checkout's commit when installed from a git working tree, else None."""
    root = Path(mmbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() or None
    if commit and dirty.stdout.strip():
        commit += "-dirty"
    return commit


def environment(device: str, plugins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": __import__("numpy").__version__,
        "mmbench": mmbench.__version__,
        "device": device,
        "device_name": (
            torch.cuda.get_device_name(0)
            if device.startswith("cuda")
            else platform.processor() or platform.machine()
        ),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "command": " ".join(["mmbench", *sys.argv[1:]]) if sys.argv else None,
    }
    if plugins is not None:
        info["plugins"] = plugins
    return info


def data_identity(path: Path | None) -> dict[str, Any]:
    """``data_path`` (absolute, so the record reproduces from any folder) and ``data_sha256``
    (of the file, or of a folder's files: ``name sha256`` lines in name order)."""
    if path is None:
        return {"data_path": None, "data_sha256": None}
    import hashlib

    from mmbench.runner.encoding_cache import file_sha256

    real = Path(path).resolve()
    if real.is_file():
        digest = file_sha256(real)
    elif real.is_dir():
        lines = [
            f"{f.relative_to(real).as_posix()} {file_sha256(f)}\n"
            for f in sorted(real.rglob("*"))
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(real).parts)
        ]
        digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    else:
        digest = None
    return {"data_path": str(real), "data_sha256": digest}


def record_meta(meta: dict[str, Any], limit: int = 4096) -> dict[str, Any]:
    """The dataset's small, JSON-plain facts (format, class set, dropped rows, warnings) for the record.

    Arrays and anything large stay out: the record must stay small and readable.
    """
    out = {}
    for key, value in meta.items():
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            continue
        if len(text) <= limit:
            out[key] = value
    return out


def numerics(device: str, precision: str, compile: bool) -> dict[str, Any]:
    """The settings and library versions that change a run's numbers (the protocol's ``numerics``).

    ``precision`` as the run trains (``fp32``, ``bf16``, ``fp16``; ``auto`` resolved for ``device``),
    ``compile`` (``--compile``), whether torch's deterministic algorithms are on, the device type,
    and the versions of torch and, on CUDA, of the CUDA runtime and cuDNN. Python, numpy and
    mmbench versions stay in the record's ``environment`` (they do not change a trained model's
    arithmetic; the dataset fingerprint covers the data).
    """
    import torch

    from mmbench.training.trainer import precision_name

    dev = torch.device(device)
    block: dict[str, Any] = {
        "precision": precision_name(dev, precision),
        "compile": bool(compile),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "device": dev.type,
        "torch": torch.__version__,
    }
    if dev.type == "cuda":
        block["cuda"] = torch.version.cuda
        block["cudnn"] = torch.backends.cudnn.version()
        block["cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
    return block
