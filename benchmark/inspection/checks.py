"""Look at a dataset before benchmarking on it: classes, features, splits, leaks, linear signal.

Everything here computes and returns plain data (no printing); :mod:`mmbench.inspection.report`
turns it into a terminal summary, markdown and PNGs. The data arrives through the normal path
(protocol, dataset plugin, validation, encoders: :func:`mmbench.runner.run.prepare`), except that
duplicates across splits are reported instead of stopping the load.

Choices worth knowing:

* Features are standardised per feature with **train** statistics (mean, std; a constant feature
  keeps std 1). Sequence modalities ``[N, T, D]`` are mean-pooled over their real time steps.
* The all-modality view concatenates the standardised modalities, each scaled by
  ``1/sqrt(width)`` so that every modality carries the same total variance (a 768-wide text
  block does not drown a 25-wide prosody stream). PCA and near-duplicate search use that view.
* Near-duplicates: rows of a later split whose cosine similarity to some row of an earlier split
  exceeds :data:`NEAR_DUPLICATE_COSINE`, computed on L2-normalised rows in blocks of at most
  :data:`BLOCK_ELEMENTS` similarities (memory stays bounded for any N).
* Linear probes (:mod:`mmbench.inspection.probes`): an L2 logistic regression on the standardised
  features, fitted on train and scored on dev, beside the majority-class baseline. Signal is
  judged with Cohen's kappa (agreement beyond chance: 0 for the majority baseline and for any
  guess that ignores the input, whatever the class imbalance); a probe "beats chance" when its
  kappa exceeds two standard errors of kappa under chance for the dev size (at least 0.02).
* A regression task (``mmbench.tasks``) gets the target's statistics (``summary["target"]``) in
  place of class counts (``summary["classes"]``) and ridge probes scored with MAE and Pearson
  correlation (:mod:`mmbench.inspection.target`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mmbench.data import SPLITS, MultimodalData
from mmbench.errors import UsageError
from mmbench.inspection.probes import probe_report, project
from mmbench.tasks import task_of

NEAR_DUPLICATE_COSINE = 0.999
BLOCK_ELEMENTS = 4_000_000
MAX_POINTS = 3000
#: Meta keys shown as part of the class set when present (every meta key is shown anyway).
LABEL_META_HINTS = ("label", "class", "drop", "merge", "map")
EXAMPLES = 5


@dataclass
class Inspection:
    """What ``mmbench inspect`` found: a JSON-ready summary and the 2-D points to plot."""

    summary: dict[str, Any]
    #: ``labels`` / ``splits`` of the plotted rows, and method (``pca``, ``tsne``) -> panel -> [n, 2].
    points: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------ loading


def inspect_request(
    request: Any,
    registry: Any,
    reporter: Any = None,
    *,
    tsne: bool = False,
    max_points: int = MAX_POINTS,
    seed: int = 0,
) -> Inspection:
    """Load ``request``'s dataset exactly as ``mmbench run`` would, then inspect it.

    ``prepare`` stops on leaks across splits and dataset plugins on repeated utterance ids; here
    ``data.allow_duplicates=true`` (and ``data.duplicate_ids=keep`` where the dataset has that
    option) are added so that such data loads and its problems are reported. The protocol
    fingerprint shown is the one a run with the user's own options would record.
    """
    from mmbench.protocol import fingerprint, load_protocol
    from mmbench.runner.run import prepare

    ds_plugin = registry.create("dataset", request.dataset)
    user_protocol = load_protocol(
        request.dataset,
        getattr(ds_plugin, "protocol_path", None),
        request.protocol_file,
        list(request.overrides),
    )
    overrides = [*request.overrides, "data.allow_duplicates=true"]
    if "duplicate_ids" in user_protocol["data"]:
        overrides.append("data.duplicate_ids=keep")
    if reporter is not None:
        reporter.log(
            "loading with data.allow_duplicates=true (and repeated ids kept): problems are reported "
            "here, not refused"
        )
    prep = prepare(replace(request, overrides=overrides), registry, reporter)
    protocol = copy.deepcopy(prep.protocol)
    protocol["data"] = user_protocol["data"]
    result = inspect_data(
        prep.data,
        duplicates=prep.duplicate_report,
        protocol=protocol,
        encoders=prep.encoders,
        tsne=tsne,
        max_points=max_points,
        seed=seed,
    )
    result.summary["protocol_fingerprint"] = fingerprint(protocol)
    return result


def inspect_data(
    data: MultimodalData,
    *,
    duplicates: Any = None,
    protocol: dict[str, Any] | None = None,
    encoders: dict[str, Any] | None = None,
    tsne: bool = False,
    max_points: int = MAX_POINTS,
    seed: int = 0,
) -> Inspection:
    """Inspect numeric (already encoded) data; ``duplicates`` defaults to ``find_duplicates(data)``."""
    from mmbench.runner.leakage import find_duplicates

    if max_points < 10:
        raise UsageError(f"--max-points must be at least 10, got {max_points}")
    if not data.modalities:
        raise UsageError(
            f"{data.name} has no numeric modality to inspect (raw fields must be encoded first, and "
            "encoders trained inside the model give no features); choose frozen encoders with "
            "--encoder MODALITY=NAME"
        )
    data.validate()
    if duplicates is None:
        duplicates = find_duplicates(data)
    feats = {m: pooled(data, m) for m in data.modalities}
    train = data.splits["train"]
    standardised = {m: standardise(x, train) for m, x in feats.items()}
    joint = joint_view(standardised)
    label_key, label_report, probes = label_parts(data)
    summary: dict[str, Any] = {
        "dataset": data.name,
        "source": str(data.meta.get("source", data.name)),
        "dataset_fingerprint": data.fingerprint,
        "protocol_fingerprint": None,
        "n": data.n,
        "meta": {k: jsonable(v) for k, v in data.meta.items()},
        label_key: label_report(data, protocol),
        "modalities": modality_report(data, feats, encoders),
        "splits": split_report(data, duplicates, joint),
        "probes": probes(data, standardised),
    }
    points, projection = project(data, standardised, joint, tsne=tsne, max_points=max_points, seed=seed)
    summary["projection"] = projection
    summary["warnings"] = collect_warnings(summary)
    return Inspection(summary=summary, points=points)


def label_parts(data: MultimodalData) -> tuple[str, Any, Any]:
    """(summary key, label report, probes) of the data's task: class counts and logistic probes, or
    the regression target's statistics and ridge probes."""
    from mmbench.inspection.target import regression_probe_report, target_report

    return {
        "classification": ("classes", class_report, probe_report),
        "regression": ("target", target_report, regression_probe_report),
    }[task_of(data).kind]


# ------------------------------------------------------------------------ features


def pooled(data: MultimodalData, modality: str) -> np.ndarray:
    """The modality as ``[N, D]`` float32: sequences are mean-pooled over their real steps."""
    x = data.concatenated(modality)
    if x.ndim == 2:
        return x
    steps = x.shape[1]
    lengths = data.lengths.get(modality)
    if lengths is None:
        return x.mean(axis=1)
    lengths = np.clip(np.asarray(lengths, dtype=np.int64), 1, steps)
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)
    return np.einsum("ntd,nt->nd", x, mask) / lengths[:, None].astype(np.float32)


def standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``(x - train mean) / train std`` per feature; zero-variance features keep std 1."""
    mean = x[train].mean(axis=0, dtype=np.float64)
    std = x[train].std(axis=0, dtype=np.float64)
    std[std < 1e-12] = 1.0
    return ((x - mean) / std).astype(np.float32)


def joint_view(standardised: dict[str, np.ndarray]) -> np.ndarray:
    """All modalities side by side, each scaled to the same total variance (``1/sqrt(width)``)."""
    blocks = [x / np.float32(math.sqrt(x.shape[1])) for x in standardised.values()]
    return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, size-capped copy of a meta value (arrays and long lists are summarised)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 50 else f"array{tuple(value.shape)} {value.dtype}"
    if depth > 3:
        return str(value)[:200]
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        out = [jsonable(v, depth + 1) for v in items[:50]]
        return out + [f"... {len(items) - 50} more"] if len(items) > 50 else out
    return str(value)[:200]


# ------------------------------------------------------------------------ classes


def class_report(data: MultimodalData, protocol: dict[str, Any] | None) -> dict[str, Any]:
    """Counts per split and class, the train imbalance ratio and what the class set dropped."""
    counts = {
        split: {
            name: int(c)
            for name, c in zip(
                data.class_names,
                np.bincount(data.labels[data.splits[split]], minlength=data.num_classes),
                strict=True,
            )
        }
        for split in SPLITS
    }
    total = {name: sum(counts[s][name] for s in SPLITS) for name in data.class_names}
    train_present = {k: v for k, v in counts["train"].items() if v > 0}
    ratio = max(train_present.values()) / min(train_present.values()) if train_present else None
    label_meta = {
        k: jsonable(v) for k, v in data.meta.items() if any(h in k.lower() for h in LABEL_META_HINTS)
    }
    return {
        "names": list(data.class_names),
        "protocol_classes": jsonable((protocol or {}).get("classes")),
        "counts": counts,
        "total": total,
        "imbalance_ratio": round(ratio, 3) if ratio is not None else None,
        "largest_train_class": max(train_present, key=train_present.get) if train_present else None,
        "smallest_train_class": min(train_present, key=train_present.get) if train_present else None,
        "absent_in_train": [k for k, v in counts["train"].items() if v == 0],
        "label_meta": label_meta,
    }


# ------------------------------------------------------------------------ modalities


def stream_stats(x: np.ndarray, train: np.ndarray) -> dict[str, Any]:
    """Problems and value ranges of one ``[N, D]`` stream (ranges over train rows)."""
    finite = np.isfinite(x)
    nan_features = int((~finite).any(axis=0).sum())
    safe = np.where(finite, x, 0.0)
    zero_features = int((safe == 0).all(axis=0).sum())
    constant_features = int((safe.max(axis=0) == safe.min(axis=0)).sum())
    zero_rows = int((safe == 0).all(axis=1).sum())
    tr = safe[train]
    means, stds = tr.mean(axis=0, dtype=np.float64), tr.std(axis=0, dtype=np.float64)
    return {
        "dim": int(x.shape[1]),
        "nan_features": nan_features,
        "constant_features": constant_features,
        "zero_features": zero_features,
        "zero_rows": zero_rows,
        "mean_range": [round(float(means.min()), 4), round(float(means.max()), 4)],
        "std_range": [round(float(stds.min()), 4), round(float(stds.max()), 4)],
    }


def modality_report(
    data: MultimodalData, feats: dict[str, np.ndarray], encoders: dict[str, Any] | None
) -> dict[str, Any]:
    """Per modality: widths per stream, problems (NaN/constant/all-zero) and value ranges."""
    spec = data.input_spec()
    train = data.splits["train"]
    out: dict[str, Any] = {}
    for mod in data.modalities:
        mspec = spec[mod]
        stats = {}
        for stream, sl in mspec.stream_slices().items():
            stats[stream] = stream_stats(feats[mod][:, sl], train)
        lengths = data.lengths.get(mod)
        enc = (encoders or {}).get(mod) or {}
        out[mod] = {
            "dim": mspec.dim,
            "sequence": mspec.sequence,
            "max_len": mspec.max_len,
            "lengths": None
            if lengths is None
            else {
                "min": int(np.min(lengths)),
                "mean": round(float(np.mean(lengths)), 2),
                "max": int(np.max(lengths)),
            },
            "encoder": enc.get("name"),
            "in_model": False,
            "streams": stats,
        }
    for mod, info in data.in_model.items():
        enc = (encoders or {}).get(mod) or {}
        out[mod] = {
            "dim": int(info["dim"]),
            "sequence": bool(info["sequence"]),
            "max_len": None,
            "lengths": None,
            "encoder": enc.get("name", info.get("encoder")),
            "in_model": True,
            "streams": {},
        }
    return out


# ------------------------------------------------------------------------ splits


def group_report(data: MultimodalData) -> dict[str, Any]:
    """Per group kind: number of groups per split and the groups two splits share."""
    out: dict[str, Any] = {}
    for kind, ids in data.groups.items():
        ids = np.asarray(ids).astype(str)
        per = {s: set(ids[data.splits[s]].tolist()) for s in SPLITS}
        shared = {}
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1 :]:
                common = sorted(per[a] & per[b])
                shared[f"{a}/{b}"] = {"count": len(common), "examples": common[:EXAMPLES]}
        out[kind] = {"per_split": {s: len(per[s]) for s in SPLITS}, "shared": shared}
    return out


def near_duplicates(
    x: np.ndarray,
    splits: dict[str, np.ndarray],
    threshold: float = NEAR_DUPLICATE_COSINE,
    block_elements: int = BLOCK_ELEMENTS,
) -> dict[str, dict[str, Any]]:
    """Per split pair ``a/b``: rows of ``b`` with cosine > ``threshold`` to some row of ``a``.

    Rows are L2-normalised once; similarities are computed ``block x len(a)`` at a time with
    ``block * len(a) <= block_elements``, so memory never grows with ``N^2``. Each pair also
    returns the indices of the matched ``b`` rows and one matching ``a`` row for each.
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x, dtype=np.float32), where=norms > 0).astype(
        np.float32, copy=False
    )
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(SPLITS):
        a_idx = np.asarray(splits[a])
        ua = np.ascontiguousarray(unit[a_idx])
        for b in SPLITS[i + 1 :]:
            b_idx = np.asarray(splits[b])
            rows = max(1, block_elements // max(len(a_idx), 1))
            hit_b, hit_a = [], []
            for start in range(0, len(b_idx), rows):
                sims = unit[b_idx[start : start + rows]] @ ua.T
                best = sims.argmax(axis=1)
                best_sim = sims[np.arange(len(best)), best]
                hit = np.flatnonzero(best_sim > threshold)
                hit_b.append(b_idx[start + hit])
                hit_a.append(a_idx[best[hit]])
            rows_b = np.concatenate(hit_b) if hit_b else np.empty(0, dtype=np.int64)
            rows_a = np.concatenate(hit_a) if hit_a else np.empty(0, dtype=np.int64)
            out[f"{a}/{b}"] = {"count": len(rows_b), "rows": rows_b, "matches": rows_a}
    return out


def split_report(data: MultimodalData, duplicates: Any, joint: np.ndarray) -> dict[str, Any]:
    """Split sizes, groups per split, exact duplicates (the guard's evidence), near-duplicates."""
    from mmbench.runner.leakage import row_hashes

    ids = data.ids

    def name(i: int) -> str:
        return str(ids[i]) if ids else f"row {i}"

    near = near_duplicates(joint, data.splits)
    hashes = row_hashes(data)
    by_split = {s: {hashes[int(i)] for i in data.splits[s]} for s in SPLITS}
    near_out = {}
    for key, found in near.items():
        a = key.split("/")[0]
        beyond = [int(r) for r in found["rows"] if hashes[int(r)] not in by_split[a]]
        near_out[key] = {
            "count": found["count"],
            "not_exact": len(beyond),
            "examples": [
                [name(int(j)), name(int(i))] for j, i in zip(found["matches"], found["rows"], strict=True)
            ][:EXAMPLES],
        }
    exact_examples = {
        key: [[name(i), name(j)] for i, j in pairs[:EXAMPLES]] for key, pairs in duplicates.examples.items()
    }
    return {
        "sizes": data.split_counts(),
        "groups": group_report(data),
        "exact_duplicates": {
            "across": dict(duplicates.pairs),
            "within": dict(duplicates.within),
            "total_across": int(duplicates.total),
            "by": {k: dict(v) for k, v in duplicates.by.items()},
            "evidence": list(duplicates.evidence),
            "examples": exact_examples,
            "description": duplicates.describe(),
        },
        "natural_repeats": {**duplicates.repeats, "description": duplicates.describe_repeats()},
        "repeated_ids": int(data.meta.get("repeated_ids") or 0),
        "near_duplicates": {
            "threshold": NEAR_DUPLICATE_COSINE,
            "space": "all modalities, standardised with train statistics",
            "across": near_out,
            "total_across": int(sum(v["count"] for v in near_out.values())),
        },
    }


# ------------------------------------------------------------------------ warnings


def collect_warnings(summary: dict[str, Any]) -> list[str]:
    """Short lines for the problems a researcher must look at before trusting a number."""
    out = []
    splits = summary["splits"]
    exact = splits["exact_duplicates"]
    if exact["total_across"]:
        out.append(
            f"leaks across splits (the same utterance id or feature vector): {exact['description']} — "
            "`mmbench run` refuses this data unless data.allow_duplicates=true"
        )
    if splits.get("repeated_ids"):
        out.append(
            f"{splits['repeated_ids']} rows repeat an earlier utterance id (over-sampling?) — "
            "`mmbench run` refuses this data unless data.duplicate_ids=keep"
        )
    near = splits["near_duplicates"]
    extra = {k: v["not_exact"] for k, v in near["across"].items() if v["not_exact"]}
    if extra:
        parts = ", ".join(f"{v} {k.split('/')[1]} rows near {k.split('/')[0]} rows" for k, v in extra.items())
        out.append(f"near-duplicates across splits (cosine > {near['threshold']}, not exact copies): {parts}")
    for split, count in exact["within"].items():
        if count:
            out.append(f"{count} duplicate rows inside the {split} split")
    for kind, g in splits["groups"].items():
        shared = {k: v["count"] for k, v in g["shared"].items() if v["count"]}
        if shared:
            parts = ", ".join(f"{v} {k}" for k, v in shared.items())
            out.append(f"{kind} groups shared between splits: {parts} (not {kind}-independent)")
    classes = summary.get("classes") or {}
    if classes.get("absent_in_train"):
        out.append(f"classes with no train rows: {', '.join(classes['absent_in_train'])}")
    for mod, info in summary["modalities"].items():
        for stream, s in info["streams"].items():
            problems = [
                f"{s[k]} {label}"
                for k, label in (
                    ("nan_features", "NaN/inf features"),
                    ("constant_features", "constant features"),
                    ("zero_rows", "all-zero rows"),
                )
                if s[k]
            ]
            if problems:
                out.append(f"{mod}/{stream}: {', '.join(problems)}")
    return out
