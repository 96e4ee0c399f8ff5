"""mmbench's Python API: what the ``mmbench`` commands do, as typed functions.

``mmbench.run``, ``mmbench.sweep``, ``mmbench.tune``, ``mmbench.leaderboard`` and
``mmbench.load_records`` are these functions (re-exported lazily: ``import mmbench`` imports no
torch). The CLI is a thin layer over them: it parses strings into these arguments, calls the
function and prints the result. The arguments mean what the options of the same name mean
(``docs/api.md``); a bad value raises ``mmbench.errors.UsageError`` (``DataError`` for bad input
files), which the CLI turns into exit code 2.

Example::

    import mmbench

    result = mmbench.run("concat,late", seeds=[0, 1], max_epochs=2, out="runs")
    board = mmbench.leaderboard("runs")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import UsageError

if TYPE_CHECKING:
    from mmbench.leaderboard.build import Leaderboard
    from mmbench.runner.run import Prepared, Reporter, RunRequest
    from mmbench.runner.sweep import SweepResult
    from mmbench.tuning.study import TuneResult

__all__ = [
    "PRECISIONS",
    "RunResult",
    "check_precision",
    "leaderboard",
    "load_records",
    "run",
    "sweep",
    "tune",
]

#: ``precision``: ``auto`` (bf16/fp16 autocast on CUDA, fp32 on CPU), fp32, bf16 or fp16.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class RunResult:
    """What ``run`` did: the prepared data and protocol, one record per (fusion, seed), a summary."""

    prepared: Prepared
    #: The run records as written (dicts; see ``mmbench.records.RunRecord`` for the keys).
    records: list[dict[str, Any]]
    #: Per fusion: n seeds, failed seeds, mean and std of the test and dev metrics.
    summary: list[dict[str, Any]]

    @property
    def protocol_fingerprint(self) -> str:
        return self.prepared.protocol_fingerprint

    @property
    def dataset_fingerprint(self) -> str:
        return self.prepared.data.fingerprint

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Records of runs that failed (diverged, or a plugin raised)."""
        return [r for r in self.records if r.get("status") != "ok"]


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from mmbench.registry import get_registry

    return get_registry()


def _names(value: str | Sequence[str], registry: Any, what: str = "--fusion") -> list[str]:
    """``"concat,late"``, ``["concat", "late"]`` or ``"all"`` -> registered fusion names."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    names = [n for n in names if n]
    if names == ["all"]:
        return registry.names("fusion")
    if not names:
        raise UsageError(f"{what} is empty")
    for name in names:
        registry.get("fusion", name)
    return unique(what, names)


def unique(option: str, values: list[Any]) -> list[Any]:
    """``values`` without repeats (first occurrence kept); one warning on stderr names the repeats,
    so ``--seeds 0,0`` or ``--fusion concat,concat`` runs once and ``n`` counts distinct runs."""
    out = list(dict.fromkeys(values))
    if len(out) < len(values):
        from mmbench.ui.console import err_console

        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        err_console.print(
            f"warning: {option} names {', '.join(repeated)} more than once; each runs once", highlight=False
        )
    return out


def _contexts(value: str | Sequence[str], registry: Any) -> list[str]:
    """``"none,bigru"``, ``["bigru"]`` or ``"all"`` -> registered context model names (``--context``)."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    names = [n for n in names if n]
    if names == ["all"]:
        return registry.names("context")
    if not names:
        raise UsageError("--context is empty")
    for name in names:
        registry.get("context", name)
    return names


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISIONS``, else a UsageError naming ``--precision``."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    return precision


def _request(
    dataset: str,
    fusions: list[str],
    *,
    seeds: Sequence[int] | None,
    data: str | Path | None,
    protocol: str | Path | None,
    overrides: Sequence[str],
    encoders: Mapping[str, str] | None,
    max_epochs: int | None,
    device: str,
    precision: str,
    compile: bool,
    out: str | Path = "runs",
    params: str | None = None,
    save_checkpoints: bool = True,
    trackers: Sequence[str] = (),
    contexts: Sequence[str] = ("none",),
) -> RunRequest:
    from mmbench.runner.run import RunRequest

    return RunRequest(
        dataset=dataset,
        fusions=fusions,
        seeds=None if seeds is None else [int(s) for s in seeds],
        data_path=None if data is None else Path(data),
        protocol_file=None if protocol is None else Path(protocol),
        overrides=list(overrides),
        encoders=dict(encoders or {}),
        max_epochs=max_epochs,
        device=device,
        out_dir=Path(out),
        precision=check_precision(precision),
        compile=compile,
        save_checkpoints=save_checkpoints,
        params=params,
        trackers=list(trackers),
        contexts=list(contexts),
    )


def run(
    fusion: str | Sequence[str] = "cross_attention",
    dataset: str = "synthetic",
    *,
    seeds: Sequence[int] | None = None,
    data: str | Path | None = None,
    protocol: str | Path | None = None,
    overrides: Sequence[str] = (),
    encoders: Mapping[str, str] | None = None,
    max_epochs: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    compile: bool = False,
    out: str | Path = "runs",
    params: str | None = None,
    save_checkpoints: bool = True,
    robustness: bool = False,
    track: Sequence[str] = (),
    context: str | Sequence[str] = "none",
    registry: Any = None,
    reporter: Reporter | None = None,
) -> RunResult:
    """Train and evaluate ``fusion`` (names, comma-separated names or ``"all"``) on ``dataset``
    for every seed; write one record per (fusion, seed) under ``out`` (as ``mmbench run``).

    ``seeds`` defaults to the protocol's; ``overrides`` are ``--set`` strings (``"train.lr=5e-4"``);
    ``encoders`` maps modality to encoder name; ``params`` is ``"tuned"`` or a YAML file;
    ``track`` names experiment trackers (``"tensorboard"``, ``"mlflow"``, ``"wandb"``) fed during
    training; ``save_checkpoints=False`` writes no weights (then ``robustness`` is refused).
    ``context`` names dialogue context models crossed with the fusions (docs/context.md).

    Raises:
        UsageError: unknown names, bad options or protocol values (DataError: bad data files).
        RunFailed: every run failed (the records of the failed runs are written).
    """
    from mmbench.runner.run import run_benchmark, summarize

    registry = _registry(registry)
    fusions = _names(fusion, registry)
    registry.get("dataset", dataset)
    if robustness and not save_checkpoints:
        raise UsageError(
            "--robustness needs the trained models: drop --no-checkpoints (robustness reloads each "
            "run's checkpoint)"
        )
    request = _request(
        dataset,
        fusions,
        seeds=seeds,
        data=data,
        protocol=protocol,
        overrides=overrides,
        encoders=encoders,
        max_epochs=max_epochs,
        device=device,
        precision=precision,
        compile=compile,
        out=out,
        params=params,
        save_checkpoints=save_checkpoints,
        trackers=[t.strip() for item in track for t in str(item).split(",") if t.strip()],
        contexts=_contexts(context, registry),
    )
    prep, records = run_benchmark(request, registry, reporter)
    if robustness:
        from mmbench.robustness.runs import analyse_records

        analyse_records(
            [r for r in records if r.get("status") == "ok"],
            registry,
            device=request.device if request.device != "auto" else "cpu",
            reporter=reporter,
            pool=records,
        )
    return RunResult(prepared=prep, records=records, summary=summarize(records))


def sweep(
    fusion: str | Sequence[str] = "all",
    dataset: str | Sequence[str] = "synthetic",
    *,
    seeds: Sequence[int] | None = None,
    data: str | Path | None = None,
    protocol: str | Path | None = None,
    overrides: Sequence[str] = (),
    encoders: Mapping[str, str] | None = None,
    max_epochs: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    compile: bool = False,
    out: str | Path = "runs",
    params: str | None = None,
    save_checkpoints: bool = True,
    track: Sequence[str] = (),
    shard: str | tuple[int, int] = (1, 1),
    stale_after_hours: float = 6.0,
    retry_failed: bool = False,
    context: str | Sequence[str] = "none",
    registry: Any = None,
    reporter: Any = None,
    executor: Any = None,
) -> SweepResult:
    """Run every (dataset spec, fusion, seed) cell that has no record yet under ``out`` (as
    ``mmbench sweep``): resumable, shardable (``shard="2/4"`` or ``(2, 4)``), safe to run from
    several processes on one ``out``. Dataset specs are ``NAME`` or ``NAME:PRESET``.
    ``executor`` (``mmbench.runner.executor.build_executor(...)``) runs the cells on a process
    pool, Ray or SLURM (docs/distributed.md); by default they run in this process.

    Raises:
        UsageError: unknown names, a bad shard, a non-positive ``stale_after_hours``.
    """
    from mmbench.runner.sweep import SweepRequest, parse_shard, run_sweep

    if stale_after_hours <= 0:
        raise UsageError(f"--stale-after must be positive, got {stale_after_hours}")
    registry = _registry(registry)
    specs = [d.strip() for d in dataset.split(",")] if isinstance(dataset, str) else list(dataset)
    request = SweepRequest(
        datasets=[s for s in specs if s],
        fusions=_names(fusion, registry),
        contexts=_contexts(context, registry),
        seeds=None if seeds is None else [int(s) for s in seeds],
        data_path=None if data is None else Path(data),
        protocol_file=None if protocol is None else Path(protocol),
        overrides=list(overrides),
        encoders=dict(encoders or {}),
        max_epochs=max_epochs,
        device=device,
        precision=check_precision(precision),
        compile=compile,
        out_dir=Path(out),
        save_checkpoints=save_checkpoints,
        trackers=[t.strip() for item in track for t in str(item).split(",") if t.strip()],
        params=params,
        shard=parse_shard(shard) if isinstance(shard, str) else tuple(shard),
        stale_after_hours=stale_after_hours,
        retry_failed=retry_failed,
    )
    return run_sweep(request, registry, reporter, executor=executor)


def load_records(runs: str | Path, strict: bool = False) -> list[dict[str, Any]]:
    """Every run record under ``runs`` (recursively), each checked against
    ``mmbench.records.RunRecord`` and with ``"_path"`` set; other JSON files are skipped. A record
    with a missing key, a value of the wrong type or a score that is not a finite fraction (or a
    ``*.json`` that is not a regular file) is skipped with one warning on stderr naming it.

    Raises:
        UsageError: ``runs`` is not a folder.
        DataError: with ``strict``, the first bad record (names the file).
    """
    from mmbench.records import load_records as load

    if not Path(runs).is_dir():
        raise UsageError(f"--runs {runs}: no such folder")
    return load(Path(runs), strict=strict)


def leaderboard(
    runs: str | Path = "runs",
    *,
    records: list[dict[str, Any]] | None = None,
    dataset: str | Sequence[str] | None = None,
    fingerprint: str | None = None,
    include_budget_cut: bool = False,
    alpha: float = 0.05,
    resamples: int = 1000,
    strict: bool = False,
    mix_numerics: bool = False,
) -> Leaderboard:
    """Group the records under ``runs`` (or the given ``records``) by protocol and dataset
    fingerprint and rank the fusions of each group: mean ± std over seeds, ties with the best by
    a two-sided hierarchical bootstrap over seeds and clusters with Holm's correction at level
    ``alpha`` (as ``mmbench leaderboard``). ``mix_numerics`` groups runs that differ only in their
    numerics (precision, compile, device, torch version) in one table. Render the result with
    ``mmbench.leaderboard.render`` (markdown, CSV, JSON).

    A damaged or invalid record under ``runs`` is skipped with one warning naming it, or with
    ``strict`` raises its ``DataError``.

    Raises:
        UsageError: no records, an unknown dataset spec, ``alpha`` outside (0, 1), fewer than
            100 resamples.
    """
    from mmbench.leaderboard.build import build_leaderboard

    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must lie in (0, 1), got {alpha}")
    if resamples < 100:
        raise UsageError(f"--resamples must be at least 100, got {resamples}")
    specs = [d.strip() for d in dataset.split(",")] if isinstance(dataset, str) else list(dataset or [])
    return build_leaderboard(
        load_records(runs, strict=strict) if records is None else records,
        Path(runs),
        datasets=[s for s in specs if s],
        fingerprint=fingerprint,
        include_budget_cut=include_budget_cut,
        alpha=alpha,
        n_resamples=resamples,
        mix_numerics=mix_numerics,
    )


def tune(
    fusion: str = "cross_attention",
    dataset: str = "synthetic",
    *,
    trials: int | None = None,
    total: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    space: str | Path | None = None,
    pruner: str = "median",
    seed: int | None = None,
    sampler_seed: int | None = None,
    data: str | Path | None = None,
    protocol: str | Path | None = None,
    overrides: Sequence[str] = (),
    encoders: Mapping[str, str] | None = None,
    max_epochs: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    compile: bool = False,
    context: str = "none",
    registry: Any = None,
    reporter: Any = None,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
    executor: Any = None,
) -> TuneResult:
    """Tune ``fusion``'s hyper-parameters on the dev split with Optuna (as ``mmbench tune``):
    add ``trials`` trials (default 20, or until ``timeout`` seconds), or run until the study has
    ``total`` finished trials. The study is resumed from ``storage`` when it exists.
    ``executor`` (``mmbench.runner.executor.build_executor(...)``) runs ``executor.workers``
    workers of the study on a process pool, Ray or SLURM (``storage``: a journal file or a
    database URL; ``callbacks`` then run in no worker); see docs/distributed.md.

    Raises:
        UsageError: unknown names, ``trials`` together with ``total``, bad options.
    """
    from mmbench.tuning.study import TuneRequest, TuneResult
    from mmbench.tuning.study import tune as run_tune

    if trials is not None and total is not None:
        raise UsageError("give --trials (trials to add) or --total (study size), not both")
    registry = _registry(registry)
    registry.get("fusion", fusion)
    registry.get("dataset", dataset)
    request = TuneRequest(
        run=_request(
            dataset,
            [fusion],
            seeds=None,
            data=data,
            protocol=protocol,
            overrides=overrides,
            encoders=encoders,
            max_epochs=max_epochs,
            device=device,
            precision=precision,
            compile=compile,
            contexts=_contexts(context, registry),
        ),
        fusion=fusion,
        trials=20 if trials is None and total is None and timeout is None else trials,
        total=total,
        timeout=timeout,
        storage=storage,
        study_name=study_name,
        space_file=None if space is None else Path(space),
        pruner=pruner,
        seed=seed,
        sampler_seed=sampler_seed,
    )
    if executor is not None and not executor.in_process:
        from mmbench.runner.run import SilentReporter
        from mmbench.tuning.storage import storage_label
        from mmbench.tuning.workers import tune_on

        study, reports = tune_on(request, registry, executor, reporter or SilentReporter())
        failed = [f for r in reports for f in (r.failed or [])]
        return TuneResult(
            study,
            storage_label(storage),
            any(r.created for r in reports),
            any(r.interrupted for r in reports),
            sum(r.ran for r in reports),
            None,
            failed,
        )
    if executor is not None and executor.threads_given:
        import torch

        torch.set_num_threads(executor.threads)
    return run_tune(request, registry, reporter, callbacks=list(callbacks))
