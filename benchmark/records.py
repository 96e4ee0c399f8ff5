"""Run records: one JSON file per (dataset, fusion, protocol fingerprint, params, seed).

Files are written atomically (temporary file in the same folder, fsync, rename), so a run
killed at any moment leaves either the complete old state or the complete new one: a reader
never sees half a record. Test predictions are stored beside each record.

``RunRecord`` is the typed schema of a record file (published as ``docs/record.schema.json``).
Every reader loads records through ``load_record`` / ``load_records``, which check them against
it: known keys are type-checked, unknown keys are kept (records written by newer versions still
load), and a malformed record is a ``DataError`` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from mmbench.errors import DataError

SCHEMA_VERSION = 1
RECORD_SUFFIX = ".json"
PREDICTIONS_SUFFIX = ".predictions.json"
CHECKPOINT_SUFFIX = ".safetensors"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file + rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """The JSON text mmbench writes (indent 2, keys in insertion order, numpy values as numbers)."""
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class _Part(BaseModel):
    """A typed part of a record: known keys strictly typed (no "0.5" for 0.5), unknown keys kept."""

    model_config = ConfigDict(extra="allow", strict=True)


class ClassMetrics(_Part):
    """One class of ``metrics.<split>.per_class`` (sklearn's classification report)."""

    precision: Fraction
    recall: Fraction
    f1: Fraction
    support: int


#: A score that is a fraction: finite and in [0, 1] (``NaN``, ``1e308`` or ``inf`` would rank first).
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SplitMetrics(_Part):
    """``metrics.dev`` / ``metrics.test``: classification metrics of one split (``mmbench.metrics``).

    Scores are finite fractions in [0, 1]; a record holding anything else is refused when read.
    """

    accuracy: Fraction
    weighted_f1: Fraction
    macro_f1: Fraction
    #: UA: mean per-class recall over the classes with samples (absent from records before it existed)
    unweighted_accuracy: Fraction | None = None
    #: WA: the same as ``accuracy``
    weighted_accuracy: Fraction | None = None
    per_class: dict[str, ClassMetrics] = Field(default_factory=dict)
    #: rows = true class, columns = predicted class, in ``class_names`` order
    confusion_matrix: list[list[int]] = Field(default_factory=list)


#: A score that may be undefined (``None``): Pearson correlation of a constant, Acc-2 without a
#: non-zero target.
OptionalFraction = Annotated[float | None, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class RegressionMetrics(_Part):
    """``metrics.dev`` / ``metrics.test`` of a regression task (``mmbench.metrics.regression_metrics``).

    MAE is a finite non-negative number in the target's units; ``corr`` (Pearson) lies in [-1, 1];
    the accuracies and F1 scores are fractions. Which accuracies a record holds depends on the
    target range (CMU-MOSI/MOSEI: ``acc2_has0`` ... ``acc7``; CH-SIMS: ``acc2`` ... ``f1``).
    """

    mae: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    corr: Annotated[float | None, Field(ge=-1.0, le=1.0, allow_inf_nan=False)] = None
    acc2_has0: OptionalFraction = None
    f1_has0: OptionalFraction = None
    acc2_non0: OptionalFraction = None
    f1_non0: OptionalFraction = None
    acc5: OptionalFraction = None
    acc7: OptionalFraction = None
    acc2: OptionalFraction = None
    acc3: OptionalFraction = None
    f1: OptionalFraction = None


def _metrics_kind(value: Any) -> str:
    # Split metrics holding an MAE are a regression task's; everything else is checked as classification.
    return "regression" if isinstance(value, dict) and "mae" in value else "classification"


#: One split's metrics: classification or regression, told apart by the ``mae`` key.
AnySplitMetrics = Annotated[
    Annotated[SplitMetrics, Tag("classification")] | Annotated[RegressionMetrics, Tag("regression")],
    Discriminator(_metrics_kind),
]


class TaskInfo(_Part):
    """The record's task (``mmbench.tasks``): ``classification`` or ``regression`` with its range."""

    kind: str = Field(description="classification | regression")
    target_range: list[float] | None = None


class EpochLog(_Part):
    """One entry of ``history``: the epoch (1-based), its mean train loss, the dev metric, the lr."""

    epoch: int
    train_loss: float | None = None
    lr: float | None = None


class Efficiency(_Part):
    """Cost of the run: parameters, training time (s), throughput (samples/s), peak memory (bytes)."""

    params: int
    train_seconds: float | None = None
    train_samples_per_second: float | None = None
    #: the run's own increase (``mmbench.training.memory``); ``peak_memory_source`` says what was measured
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None
    #: median of timed dev passes after a warm-up (``mmbench.training.latency``)
    inference_ms_per_sample: float | None = None
    #: seconds the run's encoders take to encode the dataset (the stored time for cache hits)
    encode_seconds: float | None = None
    #: ``run`` (this run's own time and memory) or ``vectorised cell``: ``train_seconds`` is this
    #: seed's share of the cell's wall time and the peak memory is the whole cell's
    cost_basis: str | None = None


class EncoderInfo(_Part):
    """How one modality was encoded: encoder name, full identity (the cache key), mode, options."""

    name: str
    identity: dict[str, Any] | None = None
    mode: str | None = None
    cache: str | None = None
    options: dict[str, Any] | None = None
    seconds: float | None = None
    encode_seconds: float | None = None


class Execution(_Part):
    """What was asked for (``precision`` may be ``auto``) and what it resolved to; the resolved
    numerics are also the protocol's fingerprinted ``numerics`` block (``mmbench.protocol``)."""

    precision: str
    compile: bool
    effective_precision: str | None = None
    #: ``vectorised`` (the cell's seeds trained as one stacked model, ``seed_batch``) or ``sequential``
    seed_batching: str | None = None
    #: why a run that could have been vectorised trained alone (``train.seed_batching=false``...)
    seed_batching_fallback: str | None = None
    seed_batch: list[int] | None = None


class Failure(_Part):
    """Why a run failed (``status == "failed"``) and at which epoch, when known."""

    reason: str
    epoch: int | None = None


class Environment(_Part):
    """Versions and hardware of the run (python, torch, mmbench, plugins, device, git commit)."""

    python: str | None = None
    torch: str | None = None
    mmbench: str | None = None
    device: str | None = None
    git_commit: str | None = None
    plugins: list[dict[str, Any]] = Field(default_factory=list)


class RunRecord(_Part):
    """One run record file (``<dataset>__<fusion>__<protocol fp>__<params tag>__seed<N>.json``).

    The runner writes the dict (``mmbench.runner.run.run_one``); this model checks it when read.
    Keys added by later versions load as extra keys. Fields without a default are required.
    """

    schema_version: int
    status: str = Field(description="ok | failed")
    dataset: str
    fusion: str
    seed: int
    protocol: dict[str, Any] = Field(description="the resolved protocol (see mmbench.protocol)")
    protocol_fingerprint: str
    dataset_fingerprint: str
    encoders: dict[str, EncoderInfo]
    class_names: list[str]
    metrics: dict[str, AnySplitMetrics] = Field(description="dev and test; empty for a failed run")
    #: absent in records written before regression tasks: classification
    task: TaskInfo | None = None
    best_epoch: int | None
    history: list[EpochLog]
    efficiency: Efficiency
    n_train: int
    n_dev: int
    n_test: int
    environment: Environment
    created_at: str = Field(description="ISO 8601 time in UTC, seconds")
    fusion_params: dict[str, Any] = Field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    train_overrides: dict[str, Any] = Field(default_factory=dict)
    params_tag: str | None = None
    budget_cut: bool = False
    train_config: dict[str, Any] | None = None
    execution: Execution | None = None
    oom_retries: int = 0
    #: absolute (so the record reproduces from any folder); ``data_sha256`` is the data's content hash
    data_path: str | None = None
    data_sha256: str | None = None
    data_meta: dict[str, Any] = Field(default_factory=dict)
    duplicates: dict[str, Any] | None = None
    epochs_run: int | None = None
    stopped_early: bool | None = None
    failure: Failure | None = None
    #: Added by ``mmbench robustness`` (or ``run --robustness``): missing/noisy-modality analysis.
    robustness: dict[str, Any] | None = None
    #: The dataset's cluster unit (``DatasetPlugin.cluster_unit``); the predictions file then holds
    #: each test utterance's cluster id (``clusters``) for the leaderboard's tie test.
    cluster_unit: str | None = None
    #: Not fingerprinted: the protocol's description, the data path and the protocol file path.
    annotation: dict[str, Any] | None = None
    predictions_file: str | None = None
    checkpoint_file: str | None = None

    @model_validator(mode="after")
    def _ok_runs_have_metrics(self) -> RunRecord:
        if self.status == "ok" and not {"dev", "test"} <= set(self.metrics):
            raise ValueError("a run with status 'ok' needs metrics.dev and metrics.test")
        return self


def record_schema() -> dict[str, Any]:
    """The JSON Schema of ``RunRecord`` (committed as ``docs/record.schema.json``)."""
    schema = RunRecord.model_json_schema()
    schema["$id"] = "https://mmbench/record.schema.json"
    schema["description"] = (RunRecord.__doc__ or "").strip().splitlines()[0]
    return schema


def record_schema_text() -> str:
    return json.dumps(record_schema(), indent=2, sort_keys=True) + "\n"


def check_record(record: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """``record`` unchanged if it matches ``RunRecord``.

    Raises:
        DataError: naming ``path`` and the first key that is missing or of the wrong type.
    """
    try:
        RunRecord.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Union members show up in the location ("metrics.test.regression.mae"): drop their tags.
        key = ".".join(str(p) for p in err["loc"] if p not in ("classification", "regression")) or "record"
        given = "" if err["type"] == "missing" else f", got {err['input']!r}"[:200]
        message = err["msg"].removeprefix("Value error, ")
        raise DataError(f"not a valid mmbench run record: {key}: {message}{given}", path=path) from None
    return record


def record_stem(dataset: str, fusion: str, protocol_fp: str, tag: str, seed: int) -> str:
    """File stem that identifies a run; equal runs map to equal names (sweeps skip them)."""
    return f"{dataset}__{fusion}__{protocol_fp}__{tag}__seed{seed}"


def record_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}{RECORD_SUFFIX}"


def predictions_path(record_file: Path) -> Path:
    return record_file.with_name(record_file.name[: -len(RECORD_SUFFIX)] + PREDICTIONS_SUFFIX)


def checkpoint_path(record_file: Path) -> Path:
    return record_file.with_name(record_file.name[: -len(RECORD_SUFFIX)] + CHECKPOINT_SUFFIX)


def check_same_data(record: dict[str, Any] | None, data_fingerprint: str | None) -> None:
    """Refuse to skip or overwrite ``record`` (a run's existing record file) with a run on other data.

    A record's file name holds dataset, method, protocol fingerprint, parameters and seed, not the
    data's content: two files read by the same dataset plugin under the same protocol (CMU-MOSI's
    aligned and unaligned pickles, two versions of a CSV) map to the same name.

    Raises:
        UsageError: naming the record, both dataset fingerprints and the way out (another ``--out``).
    """
    if record is None or data_fingerprint is None:
        return
    theirs = record.get("dataset_fingerprint")
    if theirs and theirs != data_fingerprint:
        from mmbench.errors import UsageError

        made_from = record.get("data_path") or (record.get("annotation") or {}).get("data_path")
        raise UsageError(
            f"{record.get('_path', 'the record')} holds a run of the same dataset, method, protocol and "
            f"seed on other data (dataset fingerprint {theirs}"
            + (f", from {made_from}" if made_from else "")
            + f"; this data: {data_fingerprint}); write these runs to another --out folder, or remove it"
        )


def write_record(out_dir: Path, stem: str, record: dict[str, Any], predictions: dict[str, Any]) -> Path:
    """Write predictions first, then the record: a record on disk implies its predictions
    (and its checkpoint, which the runner writes before calling this). Sets
    ``record["predictions_file"]``. The record is checked against ``RunRecord`` first (a
    ``pydantic.ValidationError`` is an internal error: mmbench wrote a record it cannot read)."""
    path = record_path(out_dir, stem)
    record["predictions_file"] = predictions_path(path).name
    text = json_text(record)
    # A record mmbench could not read back is a bug of the writer: fail before writing anything.
    RunRecord.model_validate_json(text)
    atomic_write_json(predictions_path(path), predictions)
    atomic_write_text(path, text)
    return path


def is_record_file(path: Path) -> bool:
    return (
        path.name.endswith(RECORD_SUFFIX)
        and not path.name.endswith(PREDICTIONS_SUFFIX)
        and not path.name.startswith(".")
    )


#: Largest record file read: records are small (predictions live beside them).
MAX_RECORD_BYTES = 64 << 20


def load_record(path: Path) -> dict[str, Any] | None:
    """One record (a dict) with ``_path`` set, checked against ``RunRecord``; None if the file is
    missing, truncated or not a record at all (no ``schema_version`` and ``metrics``).

    Only regular files are read (a FIFO named ``*.json`` would block forever), at most
    :data:`MAX_RECORD_BYTES`.

    Raises:
        DataError: the file is a record but a key is missing, of the wrong type or a score is not
            a finite fraction; or the path is not a regular file (names the file).
    """
    import stat

    try:
        info = Path(path).stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise DataError("not a readable mmbench run record (not a regular file)", path=path)
    if info.st_size > MAX_RECORD_BYTES:
        raise DataError(f"not a readable mmbench run record ({info.st_size:,} bytes)", path=path)
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or "schema_version" not in rec or "metrics" not in rec:
        return None
    check_record(rec, path)
    rec["_path"] = str(path)
    return rec


def load_records(runs_dir: Path, strict: bool = False, warn: Any = None) -> list[dict[str, Any]]:
    """All valid records under ``runs_dir`` (recursively), each checked and with ``_path`` set.

    Files that are not records (other JSON, truncated JSON) are skipped: atomic writes mean
    these are not mmbench's own, and a leaderboard must not read them. A record that fails the
    check (a missing key, a wrong type, a score that is not a finite fraction) or a ``*.json``
    that is not a regular file is skipped with one warning naming it (``warn``, default: stderr),
    so one bad file does not stop a leaderboard.

    Raises:
        DataError: with ``strict``, the first such file (names it).
    """
    if warn is None:
        from mmbench.ui.console import err_console

        def warn(message: str) -> None:
            err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    out = []
    for path in sorted(Path(runs_dir).rglob(f"*{RECORD_SUFFIX}")):
        if not is_record_file(path):
            continue
        try:
            rec = load_record(path)
        except DataError as exc:
            if strict:
                raise
            warn(f"skipped {exc} (--strict to stop instead)")
            continue
        if rec is not None:
            out.append(rec)
    return out


if __name__ == "__main__":  # python -m mmbench.records > docs/record.schema.json
    import sys

    sys.stdout.write(record_schema_text())
