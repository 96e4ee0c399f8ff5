"""Re-run one record from what it stores, and compare the metrics.

A record holds the resolved protocol (data options, class set, training budget, encoders),
the fusion's hyper-parameters, the seed and the data path, which is all a re-run needs. On
CPU with the same versions the metrics must match exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from mmbench.errors import DataError
from mmbench.records import load_record

COMPARED = ("accuracy", "weighted_f1", "macro_f1", "confusion_matrix")


def request_from_record(record: dict[str, Any], protocol_file: Path, out_dir: Path, device: str):
    """A RunRequest that repeats the record's run (its protocol written to ``protocol_file``)."""
    from mmbench.runner.run import RunRequest

    protocol = dict(record["protocol"])
    protocol["fusion"] = dict(record.get("fusion_params") or {})
    protocol_file.write_text(yaml.safe_dump(protocol, sort_keys=True))
    return RunRequest(
        dataset=record["dataset"],
        fusions=[record["fusion"]],
        seeds=[int(record["seed"])],
        data_path=Path(record["data_path"]) if record.get("data_path") else None,
        protocol_file=protocol_file,
        device=device,
        out_dir=out_dir,
        save_checkpoints=False,
    )


def compare(original: dict[str, Any], again: dict[str, Any]) -> list[dict[str, Any]]:
    """Per split and metric: both values and whether they are identical."""
    rows = []
    for split in ("dev", "test"):
        for metric in COMPARED:
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


def reproduce(record_path: Path, registry: Any, device: str = "auto", reporter: Any = None) -> dict[str, Any]:
    """Re-run the record at ``record_path``; return the comparison and both fingerprints.

    ``device="auto"`` re-runs a CPU record on the CPU and a CUDA record on CUDA when present.

    On CPU the re-run uses the record's thread count (``environment.torch_threads``), since
    reductions split across threads sum in another order; ``threads`` in the result says which
    counts were used.
    """
    import torch

    from mmbench.runner.run import run_benchmark

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
            again = records[0]
    finally:
        torch.set_num_threads(before)
    used = recorded_threads(again)
    rows = compare(original, again)
    return {
        "record": str(record_path),
        "dataset": original["dataset"],
        "fusion": original["fusion"],
        "seed": original["seed"],
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
                for k in ("mmbench", "torch", "device", "git_commit")
            },
            "reproduced": {
                k: again["environment"].get(k) for k in ("mmbench", "torch", "device", "git_commit")
            },
        },
        "threads": {"original": threads, "reproduced": used, "note": thread_note(threads, used, device)},
        "metrics": rows,
        "match": all(r["match"] for r in rows) and original["dataset_fingerprint"] == prep.data.fingerprint,
    }
