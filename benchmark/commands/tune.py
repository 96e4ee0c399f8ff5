"""``mmbench tune``: Optuna studies of a fusion's hyper-parameters, selected on the dev split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors, make_executor, parse_encoders

ORDER = 40

EPILOG = """
[bold]Examples[/bold]

  mmbench tune --fusion cross_attention --dataset iemocap --trials 50
  mmbench tune --fusion concat --trials 10 --set data.n_samples=600 --max-epochs 3
  mmbench tune --fusion concat --trials 25 --storage concat.log   [dim]# in several terminals[/dim]
  mmbench tune --fusion concat --trials 25 --storage postgresql://mmbench@db-host/tuning
  mmbench tune --fusion concat --total 40 --storage study.log --executor process --workers 2
  mmbench tune --fusion concat --total 200 --storage postgresql://mmbench@db-host/tuning \\
      --executor slurm --workers 8 --gpus-per-worker 1 --executor-opt partition=gpu
  mmbench tune --fusion concat --space my-space.yaml --pruner hyperband
  mmbench tune --fusion concat --show --plots runs/tuning/plots
  mmbench run --fusion concat --params tuned                [dim]# retrain the best on every seed[/dim]

The objective is the protocol's metric on the [bold]dev[/bold] split (test is never evaluated).
--trials adds that many trials to the study; --total N instead runs until the study has N
finished trials. The study name comes from dataset, fusion and protocol fingerprint, so the
same command resumes an interrupted study. The best parameters are exported to
configs/tuned/<dataset>/<fusion>.yaml (--export). Exit codes: 0 ok, 1 every trial of this run
failed, 2 bad input, 130 interrupted (resume with the same command).
"""


def tune(
    fusion: opts.Fusion = "cross_attention",
    context: opts.Context = "none",
    dataset: opts.Dataset = "synthetic",
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", "-n", help="Trials to add to the study in this run (default 20, or until --timeout)."
        ),
    ] = None,
    total: Annotated[
        int | None,
        typer.Option(
            "--total", help="Instead of --trials: run until the study has this many finished trials."
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop starting new trials after this many seconds.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="SQLAlchemy URL, journal file (.log, several processes) or SQLite file "
            "(default runs/tuning/mmbench-tuning.db).",
        ),
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Study name (default: dataset-fusion-fingerprint).")
    ] = None,
    space: Annotated[
        Path | None, typer.Option("--space", help="YAML file narrowing or replacing the search space.")
    ] = None,
    pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none.")] = "median",
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Training seed of every trial (default: 1000 + the protocol's first seed, "
            "kept apart from the retrain seeds).",
        ),
    ] = None,
    sampler_seed: Annotated[
        int | None, typer.Option("--sampler-seed", help="Seed of the TPE sampler (reproducible proposals).")
    ] = None,
    data: opts.DataPath = None,
    max_epochs: opts.MaxEpochs = None,
    encoder: opts.Encoders = None,
    set_: opts.Overrides = None,
    protocol: opts.ProtocolFile = None,
    device: opts.Device = opts.DEVICE_DEFAULT,
    precision: opts.Precision = opts.PRECISION_DEFAULT,
    compile_: opts.Compile = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Where to write the best parameters (default configs/tuned/D/F.yaml)."),
    ] = None,
    no_export: Annotated[bool, typer.Option("--no-export", help="Do not write the best parameters.")] = False,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Folder for PNG plots (history, importances).")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Only print a study from the storage (no training).")
    ] = False,
    top: Annotated[int, typer.Option("--top", help="How many of the best trials to list.")] = 10,
    executor: opts.Executor = opts.EXECUTOR_DEFAULT,
    workers: opts.Workers = 1,
    threads: opts.Threads = None,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", help="GPUs one worker gets (ray num_gpus, slurm GPUs).")
    ] = 0.0,
    address: opts.Address = None,
    executor_opt: opts.ExecutorOpts = None,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Tune a fusion's hyper-parameters on the dev split with Optuna; export the best ones."""
    with cli_errors():
        import optuna

        from mmbench import api
        from mmbench.errors import UsageError
        from mmbench.registry import get_registry
        from mmbench.tuning.storage import open_storage, storage_label
        from mmbench.tuning.study import (
            default_export_path,
            export_tuned,
            find_study_name,
            load_study,
            save_plots,
            summarize_study,
        )
        from mmbench.ui.console import debug_enabled, err_console

        optuna.logging.set_verbosity(optuna.logging.WARNING if debug_enabled() else optuna.logging.ERROR)
        api.check_precision(precision)
        if top < 1:
            raise UsageError(f"--top must be at least 1, got {top}")
        if trials is not None and total is not None:
            raise UsageError("give --trials (trials to add) or --total (study size), not both")
        if no_export and export is not None:
            raise UsageError("--export and --no-export contradict each other")
        registry = get_registry()
        registry.get("fusion", fusion)
        interrupted, ran = False, None
        if show:
            store = open_storage(storage, must_exist=True)
            name = study_name or find_study_name(store, dataset, fusion)
            study = load_study(store, name)
        else:
            progress = _progress()
            engine = make_executor(
                registry,
                executor,
                workers,
                threads,
                gpus_per_worker,
                address,
                executor_opt,
                Path("runs") / "tuning",
            )
            result = api.tune(
                fusion,
                dataset,
                context=context,
                trials=trials,
                total=total,
                timeout=timeout,
                storage=storage,
                study_name=study_name,
                space=space,
                pruner=pruner,
                seed=seed,
                sampler_seed=sampler_seed,
                data=data,
                protocol=protocol,
                overrides=list(set_ or []),
                encoders=parse_encoders(encoder),
                max_epochs=max_epochs,
                device=device,
                precision=precision,
                compile=compile_,
                registry=registry,
                reporter=progress,
                callbacks=[_trial_logger(progress)],
                executor=engine,
            )
            study, interrupted, ran = result.study, result.interrupted, result.ran

        summary = summarize_study(study, storage_label(storage), top=top)
        exported = None
        if summary["best"] is not None and not no_export and (not show or export is not None):
            exported = export_tuned(summary, export or default_export_path(summary))
        written = save_plots(study, plots, log=err_console.print) if plots is not None else []
        if fmt == OutputFormat.json:
            from mmbench.ui.console import print_json

            print_json(
                {
                    **summary,
                    "trials_this_run": ran,
                    "interrupted": interrupted,
                    "exported": str(exported) if exported else None,
                    "plots": [str(p) for p in written],
                }
            )
        else:
            run_args = [f"--data {data}"] if data else []
            run_args += [f"--max-epochs {max_epochs}"] if max_epochs is not None else []
            run_args += [f"--protocol {protocol}"] if protocol else []
            run_args += [f"--set {item}" for item in set_ or []]
            run_args += [f"--encoder {item}" for item in encoder or []]
            _print_summary(summary, exported, written, " ".join(run_args))
        if interrupted:
            err_console.print(
                f"interrupted: study {summary['study_name']} in {summary['storage']} keeps its "
                f"{summary['n_trials']} finished trials; run the same command again to resume"
                + (f" (with --study-name {summary['study_name']})" if study_name else ""),
                markup=False,
            )
            raise typer.Exit(130)


def _progress() -> Any:
    """Per-trial epoch progress on stderr (a bar per trial when stderr is a terminal)."""
    from mmbench.ui.console import RichReporter

    class TrialProgress(RichReporter):
        def trial_ended(self) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return TrialProgress()


def _trial_logger(progress: Any) -> Any:
    """An Optuna callback that logs one line per finished trial."""
    from optuna.trial import TrialState

    from mmbench.tuning.storage import DEFAULT_ATTR

    def log(study: Any, trial: Any) -> None:
        note = " (default parameters)" if trial.user_attrs.get(DEFAULT_ATTR) else ""
        if trial.state == TrialState.COMPLETE:
            best = study.best_trial
            progress.log(
                f"trial {trial.number}{note}: dev {trial.value:.4f} "
                f"(best {best.value:.4f}, trial {best.number})"
            )
        elif trial.state == TrialState.PRUNED:
            progress.log(
                f"trial {trial.number}{note}: pruned at epoch {trial.user_attrs.get('pruned_at_epoch')}"
            )
        else:
            progress.log(
                f"trial {trial.number}{note}: [red]failed[/red] ({trial.user_attrs.get('fail_reason')})"
            )

    return log


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_summary(
    summary: dict[str, Any], exported: Path | None, plots: list[Path], run_args: str = ""
) -> None:
    from rich.table import Table

    from mmbench.tuning.study import default_export_path
    from mmbench.ui.console import out_console

    metric, counts = summary["metric"], summary["counts"]
    head = (
        f"{summary['n_trials']} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed"
    )
    if counts["running"] or counts["waiting"]:
        head += f" ({counts['running']} running, {counts['waiting']} waiting)"
    searched = sorted(
        {k for row in summary["top"] for k in row["params"]}, key=lambda k: (not k.startswith("train."), k)
    )
    table = Table(
        title=f"study {summary['study_name']} — best trials by dev {metric}",
        caption=head,
    )
    table.add_column("trial", justify="right")
    arrow = "↓" if summary.get("direction") == "minimize" else "↑"
    table.add_column(f"dev {metric} {arrow}", justify="right")
    table.add_column("best epoch", justify="right")
    table.add_column("seconds", justify="right")
    for key in searched:
        table.add_column(key, justify="right")
    for row in summary["top"]:
        label = f"{row['number']}" + (" (default)" if row["default"] else "")
        table.add_row(
            label,
            f"{row['value']:.4f}",
            _fmt(row["best_epoch"]),
            _fmt(row["seconds"]),
            *[_fmt(row["params"].get(k, "")) for k in searched],
        )
    out_console.print(table)

    best, default = summary["best"], summary["default"]
    if best is not None:
        params = Table(title=f"best parameters (trial {best['number']})")
        for col in ("parameter", "best", "default"):
            params.add_column(col, justify="left" if col == "parameter" else "right")
        rows = [(k, v, "fusion_params") for k, v in (best["fusion_params"] or {}).items()]
        rows += [(f"train.{k}", v, "train_params") for k, v in (best["train_params"] or {}).items()]
        for key, value, section in rows:
            short = key.removeprefix("train.")
            before = ((default or {}).get(section) or {}).get(short, "") if default else ""
            if value is None and before in ("", None):
                continue  # a parameter left unset (e.g. modalities: all) is not a tuning result
            changed = before != "" and before != value
            shown = f"[bold]{_fmt(value)}[/bold]" if changed else _fmt(value)
            params.add_row(key, shown, _fmt(before))
        out_console.print(params)
    out_console.print(summary["comparison"]["text"], markup=False)
    for failure in summary["failures"][:5]:
        out_console.print(f"failed trial {failure['number']}: {failure['reason']}", markup=False)
    out_console.print(
        f"storage: {summary['storage']}; protocol {summary['protocol_fingerprint']}", markup=False
    )
    if exported is not None:
        out_console.print(
            f"best parameters written to {exported}; retrain on every protocol seed with: "
            f"mmbench run --fusion {summary['fusion']} --dataset {summary['dataset']} "
            + (f"{run_args} " if run_args else "")
            + "--params "
            + ("tuned" if Path(exported) == default_export_path(summary) else str(exported)),
            markup=False,
        )
    for path in plots:
        out_console.print(f"plot: {path}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(tune)
