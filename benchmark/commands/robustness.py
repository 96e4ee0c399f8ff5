"""``mmbench robustness``: missing/noisy modalities and modality contributions of stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors, split_csv

ORDER = 45

EPILOG = """
[bold]Examples[/bold]

  mmbench run --fusion concat,late --seeds 0,1 --robustness
  mmbench robustness --runs runs/ --dataset synthetic
  mmbench robustness --runs runs/ --fusion cross_attention --plots report/robustness --format json
"""


def robustness(
    runs: opts.Runs = opts.RUNS_DEFAULT,
    dataset: opts.DatasetFilter = None,
    fusion: opts.FusionFilter = None,
    levels: Annotated[str, typer.Option(help="Noise levels (× train std), comma-separated.")] = (
        "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"
    ),
    plots: Annotated[Path | None, typer.Option(help="Folder for PNG plots (curves, contributions).")] = None,
    device: opts.Device = opts.DEVICE_DEFAULT,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Evaluate stored best-dev checkpoints under missing and noisy modalities; write into records."""
    with cli_errors():
        from mmbench.errors import UsageError
        from mmbench.registry import get_registry
        from mmbench.robustness.runs import analyse_runs
        from mmbench.ui.console import RichReporter

        try:
            lv = tuple(float(x) for x in split_csv(levels))
        except ValueError:
            raise UsageError(f"--levels expects comma-separated numbers, got {levels!r}") from None
        if not lv or any(x < 0 for x in lv) or list(lv) != sorted(lv) or lv[0] != 0:
            raise UsageError("--levels must be increasing, non-negative and start at 0")
        if not runs.is_dir():
            raise UsageError(f"--runs {runs}: no such folder")
        done = analyse_runs(
            runs,
            get_registry(),
            dataset=dataset,
            fusion=fusion,
            levels=lv,
            device=device,
            reporter=RichReporter(),
        )
        if not done:
            raise UsageError(
                f"no successful run with a checkpoint found under {runs}: robustness analysis needs each "
                "run's trained model (runs made with --no-checkpoints have none)"
            )
        show_results(done, fmt, plots)


def show_results(done: list[dict], fmt: OutputFormat, plots: Path | None) -> None:
    """Print the analysis (table or JSON) and optionally write the PNGs."""
    from mmbench.ui.console import out_console, print_json

    if plots is not None:
        from mmbench.robustness.plots import plot_contributions, plot_noise_curves

        plot_noise_curves(done, plots / "noise_all.png")
        plot_contributions(done, plots / "contributions.png")
    if fmt == OutputFormat.json:
        print_json(
            [
                {
                    "record": r["_path"],
                    "fusion": r["fusion"],
                    "seed": r["seed"],
                    "robustness": r["robustness"],
                }
                for r in done
            ]
        )
        return
    from rich.table import Table

    mods = list(done[0]["robustness"]["contributions"]["shapley"])
    from mmbench.tasks import higher_is_better

    metric = done[0]["robustness"]["metric"]
    lower = "" if higher_is_better(metric) else "; lower is better: a helpful modality has φ < 0"
    table = Table(title=f"robustness on test ({metric}{lower})")
    for col in (
        "fusion",
        "seed",
        "clean",
        "no input",
        *[f"φ {m}" for m in mods],
        "rel. rob. (all)",
        "eff. rob. (all)",
    ):
        table.add_column(col, justify="left" if col == "fusion" else "right")
    for r in sorted(done, key=lambda r: (r["fusion"], r["seed"])):
        rb = r["robustness"]
        eff = (rb["noise"].get("effective_robustness") or {}).get("all")
        table.add_row(
            r["fusion"],
            str(r["seed"]),
            f"{rb['clean']:.4f}",
            f"{rb['contributions']['no_input']:.4f}",
            *[f"{rb['contributions']['shapley'][m]:+.4f}" for m in mods],
            f"{rb['noise']['relative_robustness']['all']:.4f}",
            "-" if eff is None else f"{eff:+.4f}",
        )
    out_console.print(table)
    drops = drops_table(done)
    if drops is not None:
        out_console.print(drops)


def drops_table(done: list[dict]) -> Any:
    """Per run and removed modality: how much worse each headline metric gets (positive = worse), or
    ``None`` for records analysed before drops were stored."""
    from rich.table import Table

    from mmbench.tasks import metric_label

    with_drops = [r for r in done if "drops" in r["robustness"]]
    if not with_drops:
        return None
    metrics = with_drops[0]["robustness"]["drops"]["metrics"]
    table = Table(
        title="drop per removed modality on test (positive = worse: a score down, an error such as MAE up)"
    )
    for col in ("fusion", "seed", "removed", *[f"Δ {metric_label(m)}" for m in metrics]):
        table.add_column(col, justify="left" if col in ("fusion", "removed") else "right")
    for r in sorted(with_drops, key=lambda r: (r["fusion"], r["seed"])):
        for modality, values in r["robustness"]["drops"]["removed"].items():
            table.add_row(
                r["fusion"],
                str(r["seed"]),
                modality,
                *["-" if values.get(m) is None else f"{values[m]:+.4f}" for m in metrics],
            )
    return table


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(robustness)
