"""``mmbench run``: train and evaluate fusions on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands._common import (
    OutputFormat,
    cli_errors,
    parse_encoders,
    parse_seeds,
    resolve_fusions,
)
from mmbench.errors import UsageError

ORDER = 10

RUN_EPILOG = """
[bold]Examples[/bold]

  mmbench run                                      [dim]# reference fusion on the embedded data[/dim]
  mmbench run --fusion cross_attention,concat,late --seeds 0,1,2
  mmbench run --fusion unimodal --set fusion.modality=audio
  mmbench run --set data.preset=synergy --fusion concat,late --format json
  mmbench run --dataset iemocap --data Filtered_IMOCAP.xlsx
"""


def run(
    fusion: Annotated[
        str, typer.Option("--fusion", "-f", help="Fusion(s), comma-separated, or 'all'.")
    ] = "cross_attention",
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name.")] = "synthetic",
    data: Annotated[
        Path | None, typer.Option("--data", help="Data file or folder (default: $MMBENCH_DATA).")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds, e.g. 0,1,2 or 0-4 (default: the protocol's).")
    ] = None,
    max_epochs: Annotated[
        int | None,
        typer.Option("--max-epochs", help="Cap on epochs (a budget cut below the protocol is recorded)."),
    ] = None,
    encoder: Annotated[
        list[str] | None, typer.Option("--encoder", "-e", help="MODALITY=NAME, repeatable.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Protocol override key=value, repeatable (e.g. train.lr=5e-4)."),
    ] = None,
    protocol: Annotated[
        Path | None, typer.Option("--protocol", help="A protocol YAML merged over the dataset's.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params", help="Fusion hyper-parameters: 'tuned' (from `mmbench tune`) or a YAML file."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    precision: Annotated[
        str,
        typer.Option(help="auto (bf16/fp16 autocast on CUDA, fp32 on CPU), fp32, bf16 or fp16."),
    ] = "auto",
    compile_: Annotated[
        bool,
        typer.Option(
            "--compile", help="Wrap the model's forward in torch.compile (helps on CUDA; slow to warm up)."
        ),
    ] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for run records.")] = Path("runs"),
    robustness: Annotated[
        bool, typer.Option("--robustness", help="Also run the robustness analysis on each trained model.")
    ] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
) -> None:
    """Train and evaluate fusion methods on a dataset; write one record per (fusion, seed)."""
    with cli_errors():
        from mmbench.registry import get_registry
        from mmbench.runner.run import RunRequest, run_benchmark, summarize
        from mmbench.ui.console import RichReporter, print_json

        if precision not in ("auto", "fp32", "bf16", "fp16"):
            raise UsageError(f"--precision must be auto, fp32, bf16 or fp16, got {precision!r}")
        registry = get_registry()
        request = RunRequest(
            dataset=dataset,
            fusions=resolve_fusions(fusion, registry),
            seeds=parse_seeds(seeds),
            data_path=data,
            protocol_file=protocol,
            overrides=list(set_ or []),
            encoders=parse_encoders(encoder),
            max_epochs=max_epochs,
            device=device,
            out_dir=out,
            precision=precision,
            compile=compile_,
            params=params,
        )
        registry.get("dataset", dataset)
        prep, records = run_benchmark(request, registry, RichReporter())
        if robustness:
            from mmbench.robustness.runs import analyse_records

            analyse_records(
                [r for r in records if r.get("status") == "ok"],
                registry,
                device=request.device if request.device != "auto" else "cpu",
                reporter=RichReporter(),
                pool=records,
            )
        summary = summarize(records)
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
