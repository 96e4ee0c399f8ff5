"""``mmbench bench --seeds``: the seeds of each fusion's cell, one at a time vs vectorised.

For each fusion the cell (every seed: training, evaluation, latency timing, records written) runs
twice per repeat, alternately: with ``train.seed_batching=false`` (one seed at a time) and with the
default (the seeds as one stacked model where that applies, ``mmbench.training.vectorised``). The
median wall time of each is reported with their ratio, whether the vectorised cell fell back (and
why), and the largest per-seed difference of the record metrics between the two (dev and test
accuracy, weighted F1, macro F1). Dropout masks are drawn in another order when vectorised, so with
dropout > 0 the members are other draws of the same training, not the sequential runs; with dropout 0
and no modality dropout the records agree up to float reassociation.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

#: Record metrics compared per seed between the two paths.
COMPARED = ("accuracy", "weighted_f1", "macro_f1")


def cell_seconds(
    prep: Any, fusion: str, seeds: list[int], device: str, tensors: dict, vectorised: bool
) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of one cell (every seed, records written to a temporary folder) and its records."""
    import torch

    from mmbench.runner.run import SilentReporter
    from mmbench.runner.seed_batching import run_seeds

    with tempfile.TemporaryDirectory(prefix="mmbench-seeds-") as out:
        request = dataclasses.replace(prep.request, out_dir=Path(out), skip_existing=False)
        cell = dataclasses.replace(
            prep, request=request, execution={**prep.execution, "seed_batching": vectorised}
        )
        t0 = time.perf_counter()
        records = run_seeds(cell, fusion, seeds, device, SilentReporter(), tensors)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0, records


def metric_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float | None:
    """Largest absolute per-seed difference of the compared dev/test metrics (None: a run failed)."""
    diffs = []
    for ra, rb in zip(a, b, strict=True):
        if ra.get("status") != "ok" or rb.get("status") != "ok":
            return None
        for split in ("dev", "test"):
            diffs += [abs(ra["metrics"][split][m] - rb["metrics"][split][m]) for m in COMPARED]
    return max(diffs, default=0.0)


def bench_seed_batching(
    prep: Any, fusion: str, seeds: list[int], device: str, repeats: int
) -> dict[str, Any]:
    """Sequential vs vectorised wall time of one fusion's cell of ``seeds`` (median of ``repeats``)."""
    import torch

    from mmbench.training.tensors import split_tensors

    dev_t = torch.device(device)
    tensors = {s: split_tensors(prep.data, s, dev_t) for s in ("train", "dev", "test")}
    # Warm-up (allocator, kernels, vmap's first trace): both paths, one epoch of two seeds, untimed.
    warm_train = {**prep.protocol["train"], "max_epochs": 1}
    warm = dataclasses.replace(prep, protocol={**prep.protocol, "train": warm_train})
    for vectorised in (False, True):
        cell_seconds(warm, fusion, seeds[:2], device, tensors, vectorised)
    times: dict[str, list[float]] = {"sequential": [], "vectorised": []}
    records: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for mode, vectorised in (("sequential", False), ("vectorised", True)):
            seconds, records[mode] = cell_seconds(prep, fusion, seeds, device, tensors, vectorised)
            times[mode].append(seconds)
    vec = records["vectorised"]
    execution = vec[0].get("execution") or {}
    seq_s, vec_s = statistics.median(times["sequential"]), statistics.median(times["vectorised"])
    return {
        "fusion": fusion,
        "seeds": seeds,
        "repeats": repeats,
        "sequential_seconds": round(seq_s, 3),
        "vectorised_seconds": round(vec_s, 3),
        "speedup": round(seq_s / vec_s, 3) if vec_s > 0 else None,
        "seed_batching": execution.get("seed_batching"),
        "fallback": execution.get("seed_batching_fallback"),
        "max_metric_difference": metric_difference(records["sequential"], vec),
        "best_epochs_sequential": [r.get("best_epoch") for r in records["sequential"]],
        "best_epochs_vectorised": [r.get("best_epoch") for r in vec],
        "runs": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }
