"""``mmbench extract``: features from raw audio/video into a table the dataset plugins read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands._common import OutputFormat, cli_errors

ORDER = 12

EXTRACT_EPILOG = """
[bold]Examples[/bold]

  mmbench extract --manifest utterances.csv --audio-dir wav/ --encoder audio=mfcc --encoder audio=prosody
  mmbench extract --manifest meld.csv --video-dir mp4/ --encoder audio=wav2vec2:model=models/wav2vec2-base \\
      --encoder visual=frames:model=models/resnet-50,num_frames=8 --output features/
  mmbench extract --manifest utterances.csv --audio-dir wav/ --encoder audio=mfcc:pooling=mean_std@MFCC50

Encoders: [bold]MODALITY=NAME\\[:key=value,...]\\[@COLUMN][/bold] (default columns: audio=wav2vec2 V1,
audio=mfcc V2, audio=prosody V3, visual=frames A2). Output: features.csv (File Name, Utterance,
feature columns as list literals, Emotion, ...) and manifest.json (encoder identities, input hashes).

Re-running resumes from <output>/.parts/. A clip that cannot be decoded is listed and left out
(exit 0; --strict: exit 2). Models are read from local folders only; nothing is downloaded.
"""


def extract_command(
    manifest: Annotated[
        Path,
        typer.Option(
            "--manifest", "-m", help="CSV/TSV/XLSX: File Name (or id), Utterance, Emotion[, Split]."
        ),
    ],
    encoder: Annotated[
        list[str],
        typer.Option("--encoder", "-e", help="MODALITY=NAME\\[:key=value,...]\\[@COLUMN], repeatable."),
    ],
    audio_dir: Annotated[
        Path | None, typer.Option("--audio-dir", help="Folder of <id>.wav (or .flac, .mp3, ...).")
    ] = None,
    video_dir: Annotated[
        Path | None, typer.Option("--video-dir", help="Folder of <id>.mp4 (or .mkv, ...).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("features"),
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Threads for the numpy extractors (mfcc, prosody).")
    ] = 1,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 when any clip cannot be extracted.")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset that reads the table, for the printed run line (default: the one whose ids match).",
        ),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Summary format.")] = OutputFormat.table,
) -> None:
    """Extract audio/visual features from raw media into a resumable, traceable feature table."""
    with cli_errors():
        from mmbench.extraction.extract import run_extraction
        from mmbench.runner.output_paths import check_writable_dir
        from mmbench.ui.console import RichReporter, err_console, out_console, print_json

        check_writable_dir(output, "--output")
        reporter = RichReporter()
        result = run_extraction(
            manifest,
            list(encoder),
            output,
            audio_dir=audio_dir,
            video_dir=video_dir,
            workers=workers,
            strict=strict,
            log=reporter.log,
            dataset=dataset,
        )
        if fmt == OutputFormat.json:
            print_json(result.summary)
            return
        from rich.table import Table

        table = Table(title=f"features: {result.table} ({result.rows} rows)")
        for name in ("column", "computed", "reused"):
            table.add_column(name)
        for col in result.computed:
            table.add_row(col, str(result.computed[col]), str(result.reused[col]))
        out_console.print(table)
        if result.errors:
            clips = len({e["id"] for e in result.errors})
            err_console.print(f"warning: {clips} clip(s) skipped; listed in {result.manifest}", markup=False)
        if result.sequence_columns:
            err_console.print(
                f"Column(s) {', '.join(result.sequence_columns)} hold one sequence per utterance: the "
                "iemocap/meld table readers take one vector per cell, so they are left out below."
            )
        if result.run_command:
            out_console.print(f"Benchmark on it: {result.run_command}")


def register(app: typer.Typer) -> None:
    app.command("extract", epilog=EXTRACT_EPILOG)(extract_command)
