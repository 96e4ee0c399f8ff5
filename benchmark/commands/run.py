"""``mmbench run``: train and evaluate fusions on a dataset."""

from __future__ import annotations

from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import (
    OutputFormat,
    cli_errors,
    parse_encoders,
    parse_seeds,
)

ORDER = 10

RUN_EPILOG = """
[bold]Examples[/bold]

  mmbench run                                      [dim]# reference fusion on the embedded data[/dim]
  mmbench run --fusion cross_attention,concat,late --seeds 0,1,2
  mmbench run --fusion unimodal --set fusion.modality=audio
  mmbench run --set data.preset=synergy --fusion concat,late --format json
  mmbench run --dataset iemocap --data Filtered_IMOCAP.xlsx
  mmbench run --fusion concat --track tensorboard --no-checkpoints  [dim]# runs/tensorboard/[/dim]
  mmbench run --dataset meld --data MELD/ --fusion concat --context none,bigru,dialoguernn
  mmbench run --set data.preset=context --fusion concat --context all --set context.causal=true
"""


def run(
    fusion: opts.Fusions = "cross_attention",
    context: opts.Contexts = "none",
    dataset: opts.Dataset = "synthetic",
    data: opts.DataPath = None,
    seeds: opts.Seeds = None,
    max_epochs: opts.MaxEpochs = None,
    encoder: opts.Encoders = None,
    set_: opts.Overrides = None,
    protocol: opts.ProtocolFile = None,
    params: opts.Params = None,
    device: opts.Device = opts.DEVICE_DEFAULT,
    precision: opts.Precision = opts.PRECISION_DEFAULT,
    compile_: opts.Compile = False,
    out: opts.Out = opts.RUNS_DEFAULT,
    checkpoints: opts.Checkpoints = True,
    track: opts.Track = None,
    robustness: Annotated[
        bool, typer.Option("--robustness", help="Also run the robustness analysis on each trained model.")
    ] = False,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Train and evaluate fusion methods on a dataset; write one record per (fusion, seed)."""
    with cli_errors():
        from mmbench import api
        from mmbench.ui.console import RichReporter, print_json

        result = api.run(
            fusion,
            dataset,
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
            params=params,
            save_checkpoints=checkpoints,
            track=list(track or []),
            robustness=robustness,
            reporter=RichReporter(),
        )
        prep, records, summary = result.prepared, result.records, result.summary
        if fmt == OutputFormat.json:
            print_json(
                {
                    "dataset": prep.data.name,
                    "protocol_fingerprint": prep.protocol_fingerprint,
                    "dataset_fingerprint": prep.data.fingerprint,
                    "budget_cut": prep.budget_cut,
                    "out": str(out),
                    "results": summary,
                }
            )
        else:
            from mmbench.ui.console import out_console
            from mmbench.ui.tables import results_table

            for item in results_table(prep, summary, records, width=out_console.width):
                out_console.print(item)
        if any(r.get("status") != "ok" for r in records):
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(epilog=RUN_EPILOG)(run)
