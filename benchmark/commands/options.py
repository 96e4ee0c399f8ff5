"""Every CLI option that more than one command takes, declared once.

A command spells an option through these aliases, so the same name has the same meaning, help
and default everywhere (``tests/cli/test_options.py`` walks every command to check it):

* ``--out DIR``: a folder of run records that a command writes (``run``, ``sweep``);
  ``--runs DIR``: a folder of run records that a command reads;
  ``--output PATH``: a file or report folder a command writes (never run records).
* ``--max-epochs N``: the cap on training epochs (a budget cut below the protocol is recorded).
* ``--device auto|cpu|cuda[:N]``, default ``auto`` (CUDA when present).
* ``--precision``, ``--compile``: numerics of training, for every command that trains a model.

Defaults are the ``*_DEFAULT`` constants, given in each command's signature. The module imports
only typer (``mmbench --help`` stays fast).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


DEVICE_DEFAULT = "auto"
PRECISION_DEFAULT = "auto"
RUNS_DEFAULT = Path("runs")

# What to run
Fusions = Annotated[str, typer.Option("--fusion", "-f", help="Fusion(s), comma-separated, or 'all'.")]
Fusion = Annotated[str, typer.Option("--fusion", "-f", help="The fusion.")]
Contexts = Annotated[
    str,
    typer.Option(
        "--context",
        "-c",
        help="Dialogue context model(s) crossed with the fusions, comma-separated, or 'all' "
        "(none = each utterance alone).",
    ),
]
Context = Annotated[
    str,
    typer.Option(
        "--context", "-c", help="Dialogue context model tuned with the fusion (its space joins the fusion's)."
    ),
]
BenchContexts = Annotated[
    str | None,
    typer.Option(
        "--context",
        "-c",
        help="Dialogue context model(s), comma-separated, or 'all': time each with every fusion "
        "(trainer samples/s over whole dialogues) instead of the bare-loop comparison.",
    ),
]
Dataset = Annotated[str, typer.Option("--dataset", "-d", help="Dataset name.")]
DatasetSpecs = Annotated[
    str, typer.Option("--dataset", "-d", help="Dataset spec(s) NAME or NAME:PRESET, comma-separated.")
]
DataPath = Annotated[
    Path | None, typer.Option("--data", help="Data file or folder (default: $MMBENCH_DATA).")
]
Seeds = Annotated[
    str | None, typer.Option("--seeds", help="Seeds, e.g. 0,1,2 or 0-4 (default: the protocol's).")
]
Encoders = Annotated[list[str] | None, typer.Option("--encoder", "-e", help="MODALITY=NAME, repeatable.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Protocol override key=value, repeatable (e.g. train.lr=5e-4)."),
]
ProtocolFile = Annotated[
    Path | None,
    typer.Option(
        "--protocol",
        help="A protocol YAML merged over the dataset's, or the name of a shipped one "
        "(e.g. synthetic-regression).",
    ),
]
Params = Annotated[
    str | None,
    typer.Option("--params", help="Fusion hyper-parameters: 'tuned' (from `mmbench tune`) or a YAML file."),
]
MaxEpochs = Annotated[
    int | None,
    typer.Option("--max-epochs", help="Cap on epochs (a budget cut below the protocol is recorded)."),
]

# How to run
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda[:N].")]
Precision = Annotated[
    str,
    typer.Option("--precision", help="auto (bf16/fp16 autocast on CUDA, fp32 on CPU), fp32, bf16 or fp16."),
]
Compile = Annotated[
    bool,
    typer.Option(
        "--compile", help="Wrap the model's forward in torch.compile (helps on CUDA; slow to warm up)."
    ),
]

# What a run keeps and reports
Checkpoints = Annotated[
    bool,
    typer.Option(
        "--checkpoints/--no-checkpoints",
        help="Save model weights beside each record (robustness analysis needs them).",
    ),
]
Track = Annotated[
    list[str] | None,
    typer.Option(
        "--track",
        help="Experiment tracker(s) fed during training: tensorboard, mlflow, wandb (`mmbench list "
        "trackers`); repeatable or comma-separated. A tracker's error is a warning, not a failed run.",
    ),
]

# Where results go and come from
Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for run records.")]
Runs = Annotated[Path, typer.Option("--runs", "-r", help="Folder of run records (searched recursively).")]
RunsOrBundle = Annotated[
    Path,
    typer.Option(
        "--runs", "-r", help="Folder of run records (searched recursively), or a results bundle (.zip)."
    ),
]
Format = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]

# Choosing and ranking existing records (leaderboard, export)
Fingerprint = Annotated[
    str | None,
    typer.Option("--fingerprint", help="Only records whose protocol/dataset fingerprint starts so."),
]
IncludeBudgetCut = Annotated[
    bool,
    typer.Option("--include-budget-cut", help="Also include runs trained below the protocol's budget (†)."),
]
Alpha = Annotated[float, typer.Option("--alpha", help="Significance level of the tie test.")]
Resamples = Annotated[int, typer.Option("--resamples", help="Bootstrap resamples of the tie test.")]
ALPHA_DEFAULT = 0.05
RESAMPLES_DEFAULT = 1000

# Filters over existing records
DatasetFilter = Annotated[
    str | None,
    typer.Option(
        "--dataset", "-d", help="Only records of these dataset spec(s), NAME or NAME:PRESET, comma-separated."
    ),
]
FusionFilter = Annotated[str | None, typer.Option("--fusion", "-f", help="Only this fusion.")]


#: ``--epochs``: the old spelling of ``--max-epochs`` in ``mmbench bench`` (hidden, kept working).
DeprecatedEpochs = Annotated[
    int | None, typer.Option("--epochs", hidden=True, help="Old name of --max-epochs.")
]

# Where training runs (docs/distributed.md): sweep cells and tuning workers on an executor
EXECUTOR_DEFAULT = "local"
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        "-x",
        help="Where cells or tuning workers run: local, process, ray, slurm (mmbench list).",
    ),
]
Workers = Annotated[
    int, typer.Option("--workers", "-j", help="How many run at once (sweep cells, or workers of one study).")
]
Threads = Annotated[
    int | None, typer.Option("--threads", help="CPU threads per cell or worker (default: cores / workers).")
]
Address = Annotated[
    str | None, typer.Option("--address", help="Ray cluster: auto or ray://HOST:10001 (ray executor).")
]
ExecutorOpts = Annotated[
    list[str] | None,
    typer.Option("--executor-opt", help="Executor option KEY=VALUE, repeatable (e.g. partition=gpu)."),
]
