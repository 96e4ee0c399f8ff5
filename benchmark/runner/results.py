"""Parts of a run record and summaries over seeds: encoding time, checkpoints,
mean ± std of the metrics (``summarize``, used by run output and leaderboards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.records import checkpoint_path

#: Metrics summarised over seeds and shown in leaderboards (``weighted_accuracy`` is ``accuracy``).
SUMMARY_METRICS = ("accuracy", "unweighted_accuracy", "weighted_f1", "macro_f1")


def encode_seconds(encoders: dict[str, Any]) -> float | None:
    """Seconds the run's encoders take to encode the dataset (all modalities, all splits), also
    when their features came from the cache (the time stored with them); None if unknown."""
    values = [e.get("encode_seconds") for e in encoders.values()]
    if any(v is None for v in values):
        return None
    return round(float(sum(values)), 3)


def save_checkpoint(record_file: Path, model: Any) -> Path:
    """Best-dev weights beside the record, as safetensors (no pickle), written atomically."""
    from safetensors.torch import save

    from mmbench.records import atomic_write_bytes

    path = checkpoint_path(record_file)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state))
    return path


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fusion: n, and mean/std (sample std, ddof=1; 0 for one seed) of dev and test metrics.

    UA and WA of records written before they were stored are derived (``metrics.split_metric``).
    The metrics are the task's (``Task.summary_metrics``); a metric undefined in some seeds (``None``,
    e.g. the correlation of a constant prediction) is averaged over the seeds where it is defined.
    """
    from mmbench.metrics import split_metric
    from mmbench.runner.methods import record_method
    from mmbench.tasks import task_from_record

    by_fusion: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_fusion.setdefault(record_method(rec), []).append(rec)  # fusion, or fusion + context
    out = []
    for fusion, recs in by_fusion.items():
        ok = [r for r in recs if r.get("status") == "ok"]
        row: dict[str, Any] = {
            "fusion": fusion,
            "n_seeds": len(ok),
            "failed_seeds": [r["seed"] for r in recs if r.get("status") != "ok"],
            "seeds": [r["seed"] for r in ok],
            "test": {},
            "dev": {},
            "records": [r.get("_path") for r in recs],
        }
        names = task_from_record(ok[0]).summary_metrics if ok else SUMMARY_METRICS
        for split in ("test", "dev"):
            for metric in names:
                values = [split_metric(r["metrics"][split], metric) for r in ok]
                values = np.array([v for v in values if v is not None], dtype=float)
                row[split][metric] = {
                    "mean": float(values.mean()) if len(values) else None,
                    "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                }
        out.append(row)
    return out
