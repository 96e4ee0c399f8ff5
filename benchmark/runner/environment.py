"""What a record must say about where it ran: versions, device, git commit, command line."""

from __future__ import annotations

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
