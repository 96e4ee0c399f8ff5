"""Re-run one record from what it stores, and compare the metrics.

A record holds the resolved protocol (data options, class set, training budget, encoders), the
fusion's hyper-parameters, tuned trainer values (``train_overrides``, with the ``tuning``
provenance), the seed, the data path, the precision and compile setting it trained with and the
torch thread count: a re-run restores every one of them. On CPU with the same versions and thread
count the metrics must match exactly; when they do not, the comparison lists the recorded settings
that differ between the two runs (versions, device, threads, precision...), the usual causes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from mmbench.errors import DataError
from mmbench.protocol import NUMERICS_KEY
from mmbench.records import load_record

COMPARED = ("accuracy", "weighted_f1", "macro_f1", "confusion_matrix")
#: Recorded settings that can change a number: (where in the record, key).
SETTINGS = (
    ("environment", "torch"),
    ("environment", "numpy"),
    ("environment", "python"),
    ("environment", "mmbench"),
    ("environment", "git_commit"),
    ("environment", "device"),
    ("environment", "device_name"),
    ("environment", "torch_threads"),
    ("execution", "effective_precision"),
    ("execution", "compile"),
    ("execution", "seed_batching"),
    ("execution", "seed_batch"),
    ("train_config", "batch_size"),
    ("train_config", "grad_accum"),
    ("", "params_tag"),
    ("", "dataset_fingerprint"),
    ("", "protocol_fingerprint"),
)


def recorded_precision(record: dict[str, Any]) -> str:
    """The precision the record trained in (``auto`` of old records: fp32 on CPU, as it resolved)."""
    execution = record.get("execution") or {}
    if execution.get("effective_precision"):
        return str(execution["effective_precision"])
    precision = str(execution.get("precision") or "auto")
    if precision == "auto" and str((record.get("environment") or {}).get("device", "cpu")) == "cpu":
        return "fp32"
    return precision


def tuned_file(record: dict[str, Any], path: Path) -> Path | None:
    """The record's tuned values as a ``--params`` file (None for an untuned record)."""
    tuning = record.get("tuning")
    if not tuning:
        return None
    doc = {
        "fusion": record["fusion"],
        "params": dict(record.get("fusion_params") or {}),
        "train": dict(record.get("train_overrides") or tuning.get("train") or {}),
        **{k: tuning.get(k) for k in ("study_name", "storage", "trials", "metric", "best_value", "seed")},
        "n_trials": int(tuning.get("n_trials") or 0),
        "dataset": tuning.get("dataset"),
        "protocol_fingerprint": tuning.get("protocol_fingerprint"),
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=True))
    return path


def request_from_record(record: dict[str, Any], protocol_file: Path, out_dir: Path, device: str):
    """A RunRequest that repeats the record's run (its protocol written to ``protocol_file``)."""
    from mmbench.runner.run import RunRequest

    # The numerics block is the runner's (restored through the request below), never a file's.
    protocol = {k: v for k, v in record["protocol"].items() if k != NUMERICS_KEY}
    numerics = record["protocol"].get(NUMERICS_KEY) or {}
    protocol["fusion"] = {} if record.get("tuning") else dict(record.get("fusion_params") or {})
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    if context.get("name", "none") != "none":
        protocol["context"] = dict(context.get("params") or {})
    protocol_file.write_text(yaml.safe_dump(protocol, sort_keys=True))
    params = tuned_file(record, protocol_file.with_name("tuned.yaml"))
    execution = record.get("execution") or {}
    return RunRequest(
        contexts=[str(context.get("name", "none"))],
        dataset=record["dataset"],
        fusions=[record["fusion"]],
        seeds=reproduced_seeds(record),
        data_path=Path(record["data_path"]) if record.get("data_path") else None,
        protocol_file=protocol_file,
        device=device,
        out_dir=out_dir,
        save_checkpoints=False,
        precision=numerics.get("precision") or recorded_precision(record),
        compile=bool(numerics.get("compile", execution.get("compile", False))),
        params=str(params) if params else None,
        # A vectorised record re-trains its cell as one stacked model again (also on CPU).
        overrides=["train.seed_batching=true"] if len(reproduced_seeds(record)) > 1 else [],
    )


def compared_metrics(record: dict[str, Any]) -> list[str]:
    """The metrics a reproduction compares: ``COMPARED`` for a classification record, the task's
    metrics (``mae``, ``corr``, ``acc2_has0`` ...) for a regression record."""
    from mmbench.tasks import task_from_record

    test = (record.get("metrics") or {}).get("test") or {}
    return [m for m in COMPARED if m in test] or list(task_from_record(record).metric_names)


def reproduced_seeds(record: dict[str, Any]) -> list[int]:
    """The seeds a re-run trains: the record's, or every seed of its vectorised cell (the members of a
    stacked model share the generator that draws their dropout masks, so the record is reproduced
    by training the same cell again)."""
    execution = record.get("execution") or {}
    if execution.get("seed_batching") == "vectorised" and execution.get("seed_batch"):
        return [int(s) for s in execution["seed_batch"]]
    return [int(record["seed"])]


def compare(original: dict[str, Any], again: dict[str, Any]) -> list[dict[str, Any]]:
    """Per split and metric: both values and whether they are identical."""
    rows = []
    for split in ("dev", "test"):
        for metric in compared_metrics(original):
            a = original.get("metrics", {}).get(split, {}).get(metric)
            b = again.get("metrics", {}).get(split, {}).get(metric)
            rows.append({"split": split, "metric": metric, "original": a, "reproduced": b, "match": a == b})
    return rows


def recorded_threads(record: dict[str, Any]) -> int | None:
    """The CPU thread count (``torch.get_num_threads()``) the record ran with, if it says."""
    value = (record.get("environment") or {}).get("torch_threads")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def thread_note(original: int | None, reproduced: int | None, device: str) -> str:
    """One line on whether the CPU thread counts allow a bit-identical re-run."""
    if not device.startswith("cpu"):
        return "on CUDA, bit-identical results are not guaranteed (see docs/RELIABILITY.md)"
    if original is None:
        return (
            f"the record does not say how many CPU threads it used; re-run with {reproduced}, and CPU "
            "results are bit-identical only with the same thread count"
        )
    if original != reproduced:
        return (
            f"recorded with {original} CPU threads, re-run with {reproduced}: results can differ in "
            "the last bits across thread counts"
        )
    return f"re-run with the recorded {original} CPU threads"


def setting_differences(original: dict[str, Any], again: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded settings (``SETTINGS``) whose values differ between the two runs."""
    out = []
    for section, key in SETTINGS:
        if section == "execution" and key == "effective_precision":
            a, b = recorded_precision(original), recorded_precision(again)
        else:
            a = (original.get(section) or {}).get(key) if section else original.get(key)
            b = (again.get(section) or {}).get(key) if section else again.get(key)
        if a is not None and a != b:
            out.append({"setting": f"{section}.{key}" if section else key, "original": a, "reproduced": b})
    return out


def reproduce(record_path: Path, registry: Any, device: str = "auto", reporter: Any = None) -> dict[str, Any]:
    """Re-run the record at ``record_path``; return the comparison and both fingerprints.

    ``device="auto"`` re-runs a CPU record on the CPU and a CUDA record on CUDA when present.

    On CPU the re-run uses the record's thread count (``environment.torch_threads``), since
    reductions split across threads sum in another order; ``threads`` in the result says which
    counts were used.
    """
    import torch

    from mmbench.runner.run import run_benchmark

    if not Path(record_path).exists():
        raise DataError("file does not exist", path=record_path)
    original = load_record(record_path)  # a malformed record is a DataError naming it (exit 2)
    if original is None:
        raise DataError("not a readable mmbench run record", path=record_path)
    if original.get("status") != "ok":
        raise DataError("the record is of a failed run; there are no metrics to reproduce", path=record_path)
    if device == "auto":  # the record's own device kind: a CPU record re-runs on the CPU (exact match)
        recorded = str((original.get("environment") or {}).get("device") or "auto")
        device = "cpu" if recorded == "cpu" else "auto"
    threads = recorded_threads(original)
    before = torch.get_num_threads()
    if threads is not None and device.startswith("cpu"):
        torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="mmbench-reproduce-") as tmp:
            request = request_from_record(original, Path(tmp) / "protocol.yaml", Path(tmp) / "runs", device)
            prep, records = run_benchmark(request, registry, reporter)
            again = next(r for r in records if int(r["seed"]) == int(original["seed"]))
    finally:
        torch.set_num_threads(before)
    used = recorded_threads(again)
    rows = compare(original, again)
    match = all(r["match"] for r in rows) and original["dataset_fingerprint"] == prep.data.fingerprint
    return {
        "record": str(record_path),
        "dataset": original["dataset"],
        "fusion": original["fusion"],
        "seed": original["seed"],
        "restored": {
            "precision": request.precision,
            "compile": request.compile,
            "torch_threads": threads if device == "cpu" else None,
            "tuned": request.params is not None,
            "train_overrides": original.get("train_overrides") or {},
        },
        "protocol_fingerprint": {
            "original": original["protocol_fingerprint"],
            "reproduced": prep.protocol_fingerprint,
        },
        "dataset_fingerprint": {
            "original": original["dataset_fingerprint"],
            "reproduced": prep.data.fingerprint,
        },
        "environment": {
            "original": {
                k: original.get("environment", {}).get(k)
                for k in ("mmbench", "torch", "device", "git_commit", "torch_threads")
            },
            "reproduced": {
                k: again["environment"].get(k)
                for k in ("mmbench", "torch", "device", "git_commit", "torch_threads")
            },
        },
        "threads": {"original": threads, "reproduced": used, "note": thread_note(threads, used, device)},
        "metrics": rows,
        "differences": setting_differences(original, again),
        "match": match,
    }
