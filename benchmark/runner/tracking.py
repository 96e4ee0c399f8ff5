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

from mmbench.errors import PluginError, UsageError
from mmbench.registry import hookimpl

Log = Callable[[str], None]


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


class Tracker:
    """Base class of tracker plugins. Override ``start``, ``epoch``, ``end`` and ``close``.

    ``requires`` names the import (e.g. ``"tensorboard"``) and ``extra`` the pip extra
    (``mmbench[tensorboard]``) checked before anything runs. ``out_dir`` is the command's output
    folder (``--out``); ``log`` prints a line on stderr."""

    name = "tracker"
    requires: str | None = None
    extra: str | None = None

    def __init__(self, out_dir: Path, log: Log | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.log: Log = log or (lambda message: None)
        self.sitting_out = False

    # -------------------------------------------------------------- to override
    def start(self, run: dict[str, Any]) -> None:
        """A run starts (``run``: dataset, fusion, seed, protocol, protocol_fingerprint)."""

    def epoch(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        """An epoch ended: ``logs`` has train_loss, dev_loss, dev_<metric>, lr."""

    def end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        """The run's record is written (``record["status"]`` is ``ok`` or ``failed``)."""

    def close(self) -> None:
        """The command is done (flush files, stop background processes)."""

    # -------------------------------------------------------------- hooks (guarded)
    def guarded(self, where: str, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn``; an exception becomes a warning and the tracker sits out the rest of the run."""
        if self.sitting_out:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.sitting_out = True
            self.log(
                f"warning: tracker {self.name!r} failed at {where} ({type(exc).__name__}: {exc}); "
                "the run goes on without it"
            )

    @hookimpl
    def mmbench_run_start(self, run: dict[str, Any]) -> None:
        self.sitting_out = False
        self.guarded("run start", self.start, run)

    @hookimpl
    def mmbench_epoch_end(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        self.guarded(f"epoch {epoch}", self.epoch, run, epoch, logs)

    @hookimpl
    def mmbench_run_end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        self.guarded("run end", self.end, run, record)


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
