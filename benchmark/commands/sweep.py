"""``mmbench sweep``: the (dataset, fusion, seed) grid; resumable, shardable, safe to run concurrently."""

from __future__ import annotations

from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import (
    OutputFormat,
    cli_errors,
    make_executor,
    parse_encoders,
    parse_seeds,
    split_csv,
)

ORDER = 15

EPILOG = """
[bold]Examples[/bold]

  mmbench sweep --fusion all --dataset synthetic,mfeat --seeds 0,1,2,3,4
  mmbench sweep --fusion all --dataset synthetic:redundant,synthetic:synergy --seeds 0-4
  mmbench sweep --fusion all --dataset mfeat --seeds 0-4 --shard 2/4     [dim]# a quarter of the grid[/dim]
  mmbench sweep --fusion concat,late --set data.n_samples=600 --max-epochs 2 --no-checkpoints
  mmbench sweep --fusion concat,late --context none,bigru,transformer --dataset synthetic:context --seeds 0-2

A dataset spec is NAME or NAME:PRESET (PRESET sets data.preset). Records go to OUT/NAME[-PRESET]/.
A re-run skips cells that have a record, so an interrupted sweep resumes where it stopped.
Several sweeps may share OUT (on one machine or several): each cell is claimed with a lock
file beside its record; a lock whose process died (same host) or that has not been touched for
--stale-after hours is taken over. Exit code 1 when a run of the grid failed.

On other engines (docs/distributed.md):

  mmbench sweep --fusion concat,late --seeds 0-2 --executor process --workers 2
  mmbench sweep --fusion all --seeds 0-4 --executor ray --address auto --gpus-per-cell 0.5 -j 16
  mmbench sweep --fusion all --seeds 0-4 --executor slurm -j 32 --gpus-per-cell 1 \\
      --executor-opt partition=gpu --executor-opt time=120
"""


def sweep(
    fusion: opts.Fusions = "all",
    context: opts.Contexts = "none",
    dataset: opts.DatasetSpecs = "synthetic",
    seeds: opts.Seeds = None,
    set_: opts.Overrides = None,
    max_epochs: opts.MaxEpochs = None,
    data: opts.DataPath = None,
    encoder: opts.Encoders = None,
    protocol: opts.ProtocolFile = None,
    params: opts.Params = None,
    device: opts.Device = opts.DEVICE_DEFAULT,
    precision: opts.Precision = opts.PRECISION_DEFAULT,
    compile_: opts.Compile = False,
    out: opts.Out = opts.RUNS_DEFAULT,
    shard: Annotated[
        str | None, typer.Option("--shard", help="I/N: run the I-th of N interleaved parts of the grid.")
    ] = None,
    checkpoints: opts.Checkpoints = True,
    track: opts.Track = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Re-train cells whose record is a failed run.")
    ] = False,
    stale_after: Annotated[
        float, typer.Option("--stale-after", help="Hours without a heartbeat after which a lock is stale.")
    ] = 6.0,
    executor: opts.Executor = opts.EXECUTOR_DEFAULT,
    workers: opts.Workers = 1,
    threads: opts.Threads = None,
    gpus_per_cell: Annotated[
        float, typer.Option("--gpus-per-cell", help="GPUs one cell gets (ray num_gpus, slurm GPUs).")
    ] = 0.0,
    address: opts.Address = None,
    executor_opt: opts.ExecutorOpts = None,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Run every (dataset, fusion, seed) of a grid that has no record yet; one record per cell."""
    with cli_errors():
        from mmbench import api
        from mmbench.registry import get_registry
        from mmbench.runner.sweep import parse_shard
        from mmbench.ui.console import RichReporter, out_console, print_json

        engine = make_executor(
            get_registry(), executor, workers, threads, gpus_per_cell, address, executor_opt, out
        )
        result = api.sweep(
            fusion,
            split_csv(dataset),
            context=context,
            seeds=parse_seeds(seeds),
            data=data,
            protocol=protocol,
            overrides=list(set_ or []),
            encoders=parse_encoders(encoder),
            max_epochs=max_epochs,
            device=device,
            precision=precision,
            compile=compile_,
            out=out,
            save_checkpoints=checkpoints,
            track=list(track or []),
            params=params,
            shard=parse_shard(shard),
            stale_after_hours=stale_after,
            retry_failed=retry_failed,
            reporter=RichReporter(),
            executor=engine,
        )
        counts = {s: result.count(s) for s in ("trained", "existing", "busy", "failed")}
        if fmt == OutputFormat.json:
            print_json(
                {
                    "grid": result.grid_size,
                    "shard": f"{result.shard[0]}/{result.shard[1]}",
                    "out": str(out),
                    "counts": counts,
                    "cells": [
                        {
                            "dataset": c.cell.dataset,
                            "fusion": c.cell.fusion,
                            "context": c.cell.context,
                            "seed": c.cell.seed,
                            "status": c.status,
                            "record": c.record,
                            "test_weighted_f1": c.weighted_f1,
                            "test_metric": c.metric,
                            "test_score": c.score,
                            "note": c.note,
                            "attempts": c.attempts,
                            "worker": c.worker,
                        }
                        for c in result.cells
                    ],
                }
            )
        else:
            from rich.table import Table

            table = Table(
                title=f"sweep: shard {result.shard[0]}/{result.shard[1]} of a {result.grid_size}-cell grid",
                caption=f"records in {out}/ — " + ", ".join(f"{k} {v}" for k, v in counts.items()),
            )
            from mmbench.ui.tables import short_name

            # One score column: the tasks' default test metric (weighted F1, MAE), named in the
            # header when every cell shares it, else in each cell.
            metrics = {c.metric for c in result.cells if c.metric is not None} or {"weighted_f1"}
            shared = next(iter(metrics)) if len(metrics) == 1 else None
            head = f"test {short_name(shared)} (mean)" if shared else "test score (mean)"
            for col in ("dataset", "fusion", "trained", "existing", "busy", "failed", head):
                table.add_column(col, justify="left" if col in ("dataset", "fusion") else "right")
            pairs = sorted({(c.cell.dataset, c.cell.method) for c in result.cells})
            for ds, fu in pairs:
                cells = [c for c in result.cells if (c.cell.dataset, c.cell.method) == (ds, fu)]
                scores = [c.score for c in cells if c.score is not None]
                names = {c.metric for c in cells if c.score is not None}
                unit = "" if shared or len(names) != 1 else f" ({short_name(names.pop())})"
                table.add_row(
                    ds,
                    fu,
                    *(
                        str(sum(c.status == s for c in cells))
                        for s in ("trained", "existing", "busy", "failed")
                    ),
                    f"{sum(scores) / len(scores):.4f}{unit}" if scores else "-",
                )
            out_console.print(table)
        if counts["failed"]:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(sweep)
