"""Experiment trackers: plugins that receive the lifecycle hooks of the runs of one command.

A tracker is registered like any plugin (``registry.add_tracker(name, "pkg.module:Class", summary)``
in ``mmbench_register_trackers``) and becomes active only for a command run with ``--track NAME``:
``tracking(...)`` creates it, registers it on the plugin manager for the command's duration, and
closes it afterwards. It then sees ``mmbench_run_start``, ``mmbench_epoch_end`` and
``mmbench_run_end`` of every (dataset, fusion, seed) run.

A tracker never fails a run: an exception inside it is logged as a warning naming the tracker and
the tracker sits out the rest of that run. A tracker whose package is missing is refused up front
(exit 2) with the pip extra that installs it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmbench.contracts import Tracker  # the base class of tracker plugins (re-exported here)
from mmbench.errors import PluginError, UsageError

Log = Callable[[str], None]

__all__ = ["Tracker", "check_available", "final_metrics", "flat_params", "run_name", "tracking"]


def run_name(run: dict[str, Any]) -> str:
    """``<dataset>-<fusion>-seed<k>-<protocol fingerprint[:8]>``: the tracker's name of a run."""
    preset = ((run.get("protocol") or {}).get("data") or {}).get("preset")
    dataset = run["dataset"] + (f"_{preset}" if preset else "")
    return f"{dataset}-{run['fusion']}-seed{run['seed']}-{str(run.get('protocol_fingerprint', ''))[:8]}"


def flat_params(run: dict[str, Any]) -> dict[str, str]:
    """The run's identity and resolved protocol as flat ``section.key -> str`` pairs (tracker params)."""
    out = {
        "dataset": str(run["dataset"]),
        "fusion": str(run["fusion"]),
        "seed": str(run["seed"]),
        "protocol_fingerprint": str(run.get("protocol_fingerprint", "")),
    }

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in sorted(value.items()):
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[f"protocol.{prefix}"] = json.dumps(value) if isinstance(value, list | tuple) else str(value)

    walk("", run.get("protocol") or {})
    return out


def final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """Test and dev scalars of a finished record (``test_weighted_f1``, ...), best epoch, efficiency."""
    out: dict[str, float] = {}
    for split in ("dev", "test"):
        for key, value in ((record.get("metrics") or {}).get(split) or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{split}_{key}"] = float(value)
    if record.get("best_epoch") is not None:
        out["best_epoch"] = float(record["best_epoch"])
    for key, value in (record.get("efficiency") or {}).items():
        if isinstance(value, int | float) and value is not None:
            out[f"efficiency_{key}"] = float(value)
    return out


def check_available(name: str, cls: type) -> None:
    """Refuse a tracker whose package is not installed (usage error naming the pip extra)."""
    module = getattr(cls, "requires", None)
    if not module:
        return
    try:
        importlib.import_module(module)
    except ImportError as exc:
        extra = getattr(cls, "extra", None) or name
        raise UsageError(
            f"--track {name}: the {module!r} package is not installed ({exc}); pip install 'mmbench[{extra}]'"
        ) from None


@contextlib.contextmanager
def tracking(
    names: list[str], registry: Any, out_dir: Path, log: Log | None = None
) -> Iterator[list[Tracker]]:
    """Trackers ``names`` active on the plugin manager for the block; closed (errors: warnings) after."""
    from mmbench.registry.manager import get_plugin_manager

    log = log or (lambda message: None)
    classes = []
    for name in names:
        entry = registry.get("tracker", name)  # unknown name: did-you-mean, exit 2
        try:
            cls = entry.load()
        except PluginError as exc:
            raise UsageError(f"--track {name}: {exc}") from None
        check_available(name, cls)
        classes.append((name, cls))
    pm = get_plugin_manager()
    active: list[Tracker] = []
    try:
        for name, cls in classes:
            tracker = cls(out_dir=Path(out_dir), log=log)
            tracker.name = name
            pm.register(tracker, name=f"tracker:{name}:{id(tracker)}")
            active.append(tracker)
        yield active
    finally:
        for tracker in active:
            pm.unregister(tracker)
            tracker.sitting_out = False
            tracker.guarded("close", tracker.close)
