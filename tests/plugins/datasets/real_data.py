"""Where the real research files live for the tests that use them (skipped cleanly when absent).

``../shared/data`` relative to the repository root (the layout of the project's machines), or the
folder named by ``MMBENCH_SHARED_DATA`` (for a worktree elsewhere). Never copied into the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def shared_data(name: str) -> Path | None:
    """The folder ``<shared data>/<name>`` if it exists, else None."""
    roots = [REPO.parent / "shared" / "data"]
    if os.environ.get("MMBENCH_SHARED_DATA"):
        roots.insert(0, Path(os.environ["MMBENCH_SHARED_DATA"]))
    for root in roots:
        if (root / name).is_dir():
            return root / name
    return None
