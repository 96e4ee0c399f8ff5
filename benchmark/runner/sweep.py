"""Sweeps: the (dataset, fusion, seed) grid, split across shards and safe to run concurrently.

* **Resumable.** A record on disk is the checkpoint of its cell: a re-run skips it. Records are
  written atomically, so a sweep killed at any moment leaves complete records or none.
* **Shards.** ``--shard i/n`` runs every n-th cell of the grid in its canonical order (sorted by
  dataset spec, fusion, seed), so machines running the same command with ``1/n`` … ``n/n``
  split the grid without talking to each other.
* **Locks.** A worker claims a cell with ``<record stem>.lock`` beside the record, created with
  ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+). The lock holds host, pid and process start
  time and is touched after every epoch. A lock is stale when its process is gone (same host)
  or it has not been touched for ``stale_after_hours``; a stale lock is renamed away (atomic:
  one worker wins) and re-created, and the partial files of the dead worker are removed. Even
  if two workers ever trained one cell, the record is one file, replaced atomically.

Dataset specs are ``NAME`` or ``NAME:PRESET``; ``PRESET`` is the ``data.preset`` option (for
example ``synthetic:synergy``), and records of each spec go to ``<out>/<NAME>-<PRESET>/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError

LOCK_SUFFIX = ".lock"
DEFAULT_STALE_HOURS = 6.0


# ---------------------------------------------------------------- dataset specs and the grid
def parse_dataset_spec(spec: str) -> tuple[str, str | None]:
    """``"synthetic:synergy"`` -> ``("synthetic", "synergy")``; ``"mfeat"`` -> ``("mfeat", None)``."""
    name, sep, preset = spec.strip().partition(":")
    name, preset = name.strip(), preset.strip()
    if not name or (sep and not preset) or ":" in preset:
        raise UsageError(f"dataset spec must be NAME or NAME:PRESET (e.g. synthetic:synergy), got {spec!r}")
    return name, (preset or None)


def spec_slug(spec: str) -> str:
    """Folder / file name of a dataset spec: ``synthetic:synergy`` -> ``synthetic-synergy``."""
    name, preset = parse_dataset_spec(spec)
    return f"{name}-{preset}" if preset else name


def spec_overrides(spec: str, overrides: list[str]) -> list[str]:
    """The ``--set`` list of a spec: its preset first; a conflicting ``--set data.preset`` is refused."""
    _, preset = parse_dataset_spec(spec)
    if preset is None:
        return list(overrides)
    clash = [o for o in overrides if o.split("=", 1)[0].strip() == "data.preset"]
    if clash:
        raise UsageError(f"dataset spec {spec!r} already sets the preset; drop --set {clash[0]}")
    return [f"data.preset={preset}", *overrides]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)`` (1-based); ``None`` -> ``(1, 1)``."""
    if text is None:
        return 1, 1
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise UsageError(f"--shard expects I/N (e.g. 2/4), got {text!r}")
    i, n = int(index), int(count)
    if n < 1 or not 1 <= i <= n:
        raise UsageError(f"--shard {text}: I must lie between 1 and N")
    return i, n


@dataclass(frozen=True, order=True)
class Cell:
    """One (dataset spec, fusion, seed, context model) of the grid."""

    dataset: str
    fusion: str
    seed: int
    context: str = "none"

    @property
    def method(self) -> str:
        """``fusion`` or ``fusion + context``."""
        return self.fusion if self.context == "none" else f"{self.fusion} + {self.context}"

    def label(self) -> str:
        return f"{self.dataset} {self.method} seed {self.seed}"


def build_grid(
    seeds_by_dataset: dict[str, list[int]], fusions: list[str], contexts: list[str] | None = None
) -> list[Cell]:
    """Every cell (fusions x context models x seeds per dataset), in canonical order (independent of
    the order options were typed in; without context models the order of older grids)."""
    cells = {
        Cell(d, f, s, c)
        for d, seeds in seeds_by_dataset.items()
        for f in fusions
        for s in seeds
        for c in contexts or ["none"]
    }
    return sorted(cells)


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Cells of shard ``index`` of ``count`` (1-based): every ``count``-th cell, round robin."""
    return [c for i, c in enumerate(cells) if i % count == index - 1]


# ---------------------------------------------------------------- cell locks
def lock_path(record_file: Path) -> Path:
    """``<stem>.lock`` beside ``<stem>.json``."""
    return record_file.with_name(record_file.name[: -len(".json")] + LOCK_SUFFIX)


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    if _process_state(pid) in ("Z", "X"):  # killed but not yet reaped by its parent
        return False
    current = _process_start(pid)
    return not (start is not None and current is not None and current != start)


class CellLock:
    """An exclusive claim on one cell: ``O_CREAT | O_EXCL`` lock file, heartbeat, stale takeover."""

    def __init__(
        self, path: Path, stale_after_hours: float = DEFAULT_STALE_HOURS, force: bool = False
    ) -> None:
        self.path = Path(path)
        self.stale_after_s = stale_after_hours * 3600.0
        #: Take over any lock: the engine reported the previous attempt's worker dead.
        self.force = force
        self.held = False
        self.took_over: dict[str, Any] | None = None
        self._mine: dict[str, Any] | None = None

    def _owner(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process_start": _process_start(os.getpid()),
            "since": time.time(),
        }

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        self._mine = self._owner()
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._mine, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def read(self) -> tuple[dict[str, Any] | None, float | None]:
        """The current lock's owner (None if unreadable) and its age in seconds (None if gone)."""
        try:
            age = time.time() - self.path.stat().st_mtime
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None
        except OSError:
            return None, 0.0
        try:
            owner = json.loads(text)
        except json.JSONDecodeError:
            return None, age
        return (owner if isinstance(owner, dict) else None), age

    def is_stale(self, owner: dict[str, Any] | None, age: float) -> bool:
        """Dead owner on this host, or no heartbeat for ``stale_after_hours`` (any lock when forced)."""
        if self.force or age > self.stale_after_s:
            return True
        if owner is None:  # being written this instant (a few microseconds), or garbage
            return age > 60.0
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            return not pid_alive(owner["pid"], owner.get("process_start"))
        return False

    def acquire(self) -> bool:
        """Claim the cell; False when a live worker holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return True
            owner, age = self.read()
            if age is None:  # released between our attempts: try again
                continue
            if not self.is_stale(owner, age):
                return False
            if self._take_over(owner):
                continue
            return False
        return False

    def _take_over(self, seen: dict[str, Any] | None) -> bool:
        """Move a stale lock aside atomically; only the worker whose rename succeeds removes it."""
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:12]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # someone else moved it; compete for the fresh lock
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            moved = None
        if seen is not None and moved != seen:
            # Between our read and our rename another worker replaced the stale lock with a live
            # one: put it back (link fails if yet another lock appeared; then that one rules).
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
            with contextlib.suppress(OSError):
                os.unlink(aside)
            return False
        with contextlib.suppress(OSError):
            os.unlink(aside)
        self.took_over = seen or {}
        _remove_partial_files(self.path)
        return True

    def heartbeat(self) -> None:
        """Touch the lock so that other workers see this cell is still being trained."""
        if self.held:
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Remove the lock if it is still ours (never another worker's that took it over)."""
        if self.held:
            owner, _ = self.read()
            if owner == self._mine:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            self.held = False

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_partial_files(lock: Path) -> None:
    """Temporary files a killed worker left while writing this cell's record/predictions/weights."""
    stem = lock.name[: -len(LOCK_SUFFIX)]
    for tmp in lock.parent.glob(f".{stem}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


# ---------------------------------------------------------------- running a sweep
@dataclass
class SweepRequest:
    """What ``mmbench sweep`` was asked for."""

    datasets: list[str] = field(default_factory=lambda: ["synthetic"])
    fusions: list[str] = field(default_factory=lambda: ["cross_attention"])
    seeds: list[int] | None = None
    data_path: Path | None = None
    protocol_file: Path | None = None
    overrides: list[str] = field(default_factory=list)
    encoders: dict[str, str] = field(default_factory=dict)
    max_epochs: int | None = None
    device: str = "auto"
    #: ``--precision`` and ``--compile``: numerics of every cell (recorded and fingerprinted).
    precision: str = "auto"
    compile: bool = False
    out_dir: Path = Path("runs")
    save_checkpoints: bool = True
    params: str | None = None
    shard: tuple[int, int] = (1, 1)
    stale_after_hours: float = DEFAULT_STALE_HOURS
    retry_failed: bool = False
    #: ``--track``: experiment trackers active while this worker trains its cells.
    trackers: list[str] = field(default_factory=list)
    #: ``--context``: dialogue context models crossed with the fusions.
    contexts: list[str] = field(default_factory=lambda: ["none"])


class Heartbeat:
    """Forwards runner progress to the CLI reporter and touches the cell's lock every epoch
    (``lock``: anything with ``heartbeat()``, e.g. the locks of a cell's seeds trained together)."""

    def __init__(self, inner: Any, lock: Any) -> None:
        self.inner, self.lock = inner, lock

    def log(self, message: str) -> None:
        self.inner.log(message)

    def run_started(self, label: str, max_epochs: int) -> None:
        self.lock.heartbeat()
        self.inner.run_started(label, max_epochs)

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        self.lock.heartbeat()
        self.inner.epoch_ended(epoch, logs)

    def run_ended(self, label: str, record: dict[str, Any]) -> None:
        self.inner.run_ended(label, record)


def run_request_for(request: SweepRequest, spec: str) -> Any:
    """The ``RunRequest`` of one dataset spec (all fusions, so parameters resolve as in ``run``)."""
    from mmbench.runner.run import RunRequest

    name, _ = parse_dataset_spec(spec)
    return RunRequest(
        dataset=name,
        fusions=list(request.fusions),
        seeds=request.seeds,
        data_path=request.data_path,
        protocol_file=request.protocol_file,
        overrides=spec_overrides(spec, request.overrides),
        encoders=dict(request.encoders),
        max_epochs=request.max_epochs,
        device=request.device,
        precision=request.precision,
        compile=request.compile,
        out_dir=Path(request.out_dir) / spec_slug(spec),
        skip_existing=False,  # the sweep checks for records itself, under the cell's lock
        save_checkpoints=request.save_checkpoints,
        params=request.params,
        contexts=list(request.contexts),
    )


def protocol_seeds(request: SweepRequest, spec: str, registry: Any) -> list[int]:
    """``--seeds``, or else the seed list of the spec's resolved protocol (no data is loaded)."""
    if request.seeds is not None:
        return list(request.seeds)
    from mmbench.protocol import load_protocol

    run_request = run_request_for(request, spec)
    plugin = registry.create("dataset", run_request.dataset)
    overrides = [f"encoders.{m}={e}" for m, e in run_request.encoders.items()] + run_request.overrides
    protocol = load_protocol(
        run_request.dataset, getattr(plugin, "protocol_path", None), request.protocol_file, overrides
    )
    return list(protocol["seeds"])


@dataclass
class CellResult:
    cell: Cell
    status: str  # trained | existing | failed | busy
    record: str | None = None
    #: test weighted F1 (classification tasks; ``None`` otherwise)
    weighted_f1: float | None = None
    note: str = ""
    #: the task's default test metric (``weighted_f1``, ``mae``) and its value
    metric: str | None = None
    score: float | None = None
    #: How many times the cell was started (more than 1 when a worker died and it was rerun).
    attempts: int = 1
    #: ``host:pid`` of the worker that ran it (distributed sweeps).
    worker: str = ""


@dataclass
class SweepResult:
    grid_size: int
    shard: tuple[int, int]
    cells: list[CellResult]

    def count(self, status: str) -> int:
        return sum(1 for c in self.cells if c.status == status)


def plan_sweep(request: SweepRequest, registry: Any, reporter: Any) -> tuple[list[Cell], list[Cell]]:
    """Check the request (names, duplicate specs) and return the grid and this shard's cells."""
    from mmbench.runner.output_paths import check_writable_dir

    check_writable_dir(request.out_dir, "--out")
    if not request.datasets:
        raise UsageError("--dataset is empty")
    if not request.fusions:
        raise UsageError("--fusion is empty")
    slugs: dict[str, str] = {}
    for spec in request.datasets:
        name, _ = parse_dataset_spec(spec)
        registry.get("dataset", name)
        slug = spec_slug(spec)
        if slug in slugs.values():
            raise UsageError(f"dataset spec {spec!r} is given twice")
        slugs[spec] = slug
    for name in request.fusions:
        registry.get("fusion", name)
    grid = build_grid(
        {spec: protocol_seeds(request, spec, registry) for spec in request.datasets},
        request.fusions,
        request.contexts,
    )
    mine = shard_cells(grid, *request.shard)
    reporter.log(
        f"sweep: {len(grid)} cells in the grid, {len(mine)} in shard {request.shard[0]}/{request.shard[1]}"
    )
    return grid, mine


def prepare_spec(request: SweepRequest, spec: str, cells: list[Cell], registry: Any, reporter: Any) -> Any:
    """Load and encode one dataset spec; refuse unknown ``fusion.*`` keys and unusable fusions."""
    from mmbench.runner.run import prepare, resolve_fusion

    prep = prepare(run_request_for(request, spec), registry, reporter)
    plugins = {f: registry.create("fusion", f) for f in request.fusions}
    unknown = [k for k in prep.protocol["fusion"] if not any(k in p.default_params for p in plugins.values())]
    if unknown:
        raise UsageError(f"--set fusion.{unknown[0]}: no requested fusion has a parameter {unknown[0]!r}")
    # Refuse a (dataset, fusion) pair the fusion cannot handle before training any cell of it.
    input_spec = prep.data.input_spec()
    for fusion in sorted({c.fusion for c in cells}):
        plugin, params, _, _ = resolve_fusion(prep, fusion)
        plugin.validate(input_spec, params)
    from mmbench.runner.context import check_context_overrides

    check_context_overrides(prep)
    return prep


def run_sweep(
    request: SweepRequest, registry: Any, reporter: Any = None, executor: Any = None
) -> SweepResult:
    """Run this shard's cells of the grid, skipping finished ones and ones other workers hold.

    ``executor`` (a :class:`mmbench.runner.executor.Executor`) runs the cells elsewhere (a
    process pool, Ray, SLURM); without one, or with an in-process one, they run here one by one.
    """
    from mmbench.runner.run import SilentReporter
    from mmbench.runner.tracking import tracking

    reporter = reporter or SilentReporter()
    if executor is not None and not executor.in_process:
        from mmbench.runner.distribute import run_distributed

        return run_distributed(request, registry, executor, reporter)  # trackers run in each worker
    with tracking(request.trackers, registry, Path(request.out_dir), reporter.log):
        return _run_cells(request, registry, reporter, executor)


def _run_cells(request: SweepRequest, registry: Any, reporter: Any, executor: Any) -> SweepResult:
    import torch

    from mmbench.records import load_record
    from mmbench.runner.run import resolve_device, run_record_path
    from mmbench.runner.seed_batching import sweep_cells_together
    from mmbench.training.tensors import split_tensors

    if executor is not None and executor.threads_given:
        torch.set_num_threads(executor.threads)
    device = resolve_device(request.device)
    grid, mine = plan_sweep(request, registry, reporter)
    results: list[CellResult] = []
    from mmbench.ui.console import announce_runs, finish_runs

    announce_runs(reporter, len(mine))
    for spec in sorted({c.dataset for c in mine}):
        cells = [c for c in mine if c.dataset == spec]
        prep = prepare_spec(request, spec, cells, registry, reporter)
        holder: dict[str, Any] = {}

        def tensors(prep: Any = prep, holder: dict[str, Any] = holder) -> dict[str, Any]:
            if "t" not in holder:
                dev_t = torch.device(device)
                holder["t"] = {s: split_tensors(prep.data, s, dev_t) for s in ("train", "dev", "test")}
            return holder["t"]

        if prep.execution.get("seed_batching", "auto") is not False:
            # The unfinished seeds of each (fusion, context) train together, under their cells' locks.
            results += sweep_cells_together(prep, cells, request, device, tensors, reporter)
            continue
        for n, cell in enumerate(cells, 1):
            path = run_record_path(prep, cell.fusion, cell.seed, cell.context)
            done = finished_record(load_record(path), request.retry_failed, prep.data.fingerprint)
            if done is not None:
                results.append(cell_result(cell, "existing", done))
                continue
            results.append(
                run_cell_locked(prep, cell, path, request, device, tensors, reporter, f"[{n}/{len(cells)}] ")
            )
    finish_runs(reporter)
    return SweepResult(len(grid), request.shard, results)


def run_cell_locked(
    prep: Any,
    cell: Cell,
    path: Path,
    request: SweepRequest,
    device: str,
    tensors: Any,
    reporter: Any,
    prefix: str = "",
    force: bool = False,
) -> CellResult:
    """Claim one cell with its lock and train it unless it is held or already finished.

    ``tensors()`` returns the prepared split tensors (built on first use); ``force`` takes over
    any lock (the engine reported the previous attempt's worker dead). Status ``busy`` when a
    live worker holds the cell, ``existing`` when a record appeared meanwhile.
    """
    from mmbench.records import load_record
    from mmbench.runner.run import run_one

    lock = CellLock(lock_path(path), request.stale_after_hours, force=force)
    if not lock.acquire():
        reporter.log(f"{cell.label()}: held by another worker ({lock.path.name}), left to it")
        return CellResult(cell, "busy", note="locked by another worker")
    with lock:
        if lock.took_over is not None:
            reporter.log(f"{cell.label()}: took over a stale lock ({lock.took_over})")
        # Another worker may have finished the cell between our check and our lock.
        done = finished_record(load_record(path), request.retry_failed, prep.data.fingerprint)
        if done is not None:
            return cell_result(cell, "existing", done)
        reporter.log(f"{prefix}{cell.label()}")
        beat = Heartbeat(reporter, lock)
        # Cells one by one: with train.seed_batching=false, or one cell per task (distributed sweeps).
        reason = "train.seed_batching=false" if prep.execution.get("seed_batching") is False else None
        execution = {"seed_batching": "sequential", "seed_batching_fallback": reason or "one cell per task"}
        record = run_one(prep, cell.fusion, cell.seed, device, beat, tensors(), cell.context, execution)
        return cell_result(cell, "trained" if record.get("status") == "ok" else "failed", record)


def finished_record(
    record: dict[str, Any] | None, retry_failed: bool, data_fingerprint: str | None = None
) -> dict[str, Any] | None:
    """An existing record that ends the cell (a failed one too, unless failures are retried).

    Raises:
        UsageError: the record was made on other data than ``data_fingerprint`` (see
            :func:`mmbench.records.check_same_data`).
    """
    from mmbench.records import check_same_data

    check_same_data(record, data_fingerprint)
    if record is None or (retry_failed and record.get("status") != "ok"):
        return None
    return record


def cell_result(cell: Cell, status: str, record: dict[str, Any]) -> CellResult:
    from mmbench.tasks import task_from_record

    ok = record.get("status") == "ok"
    metric = task_from_record(record).default_metric
    if status == "existing" and not ok:
        status = "failed"
    return CellResult(
        cell,
        status,
        record=record.get("_path"),
        weighted_f1=record["metrics"]["test"].get("weighted_f1") if ok else None,
        note="" if ok else str((record.get("failure") or {}).get("reason", "failed")),
        metric=metric,
        score=record["metrics"]["test"].get(metric) if ok else None,
    )
