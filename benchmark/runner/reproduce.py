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


def reproduce(record_path: Path, registry: Any, device: str = "auto", reporter: Any = None) -> dict[str, Any]:
    """Re-run the record at ``record_path``; return the comparison and both fingerprints.

    ``device="auto"`` re-runs a CPU record on the CPU and a CUDA record on CUDA when present.
    """
    from mmbench.runner.run import run_benchmark

    original = load_record(record_path)
    if original is None:
        raise DataError("not a readable mmbench run record", path=record_path)
    if original.get("status") != "ok":
        raise DataError("the record is of a failed run; there are no metrics to reproduce", path=record_path)
    if device == "auto":  # the record's own device kind: a CPU record re-runs on the CPU (exact match)
        recorded = str((original.get("environment") or {}).get("device") or "auto")
        device = "cpu" if recorded == "cpu" else "auto"
    with tempfile.TemporaryDirectory(prefix="mmbench-reproduce-") as tmp:
        request = request_from_record(original, Path(tmp) / "protocol.yaml", Path(tmp) / "runs", device)
        prep, records = run_benchmark(request, registry, reporter)
        again = records[0]
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
        "metrics": rows,
        "match": all(r["match"] for r in rows) and original["dataset_fingerprint"] == prep.data.fingerprint,
    }
