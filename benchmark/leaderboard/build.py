"""Leaderboards: run records grouped by fingerprint, summarised over seeds, ranked and tested.

* Records are grouped by (dataset, protocol fingerprint, dataset fingerprint); runs from
  different groups never share a table.
* Within a group, one row per fusion setting: fusion + params tag (hyper-parameters and
  encoders), and tuned runs (a non-null ``tuning``) as their own row.
* Each row: n seeds, test metrics as mean ± sample std (``runner.summarize``), per-class F1
  (classification), rank by the primary metric in its direction (``mmbench.tasks``: MAE ascending,
  the others descending; a row whose primary metric is undefined ranks last), whether it is tied
  with the best (``leaderboard.ties``), and the efficiency columns.
* Failed runs are listed, never averaged; budget-cut runs (``--max-epochs`` below the
  protocol) are left out unless asked for.

Output is a pure function of the records and the options: rows, groups and footers are sorted,
the bootstrap is seeded, and nothing depends on the clock, the file order or dict order, so the
same records always render to the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UsageError
from mmbench.leaderboard.ties import load_predictions as load_predictions
from mmbench.leaderboard.ties import mark_ties
from mmbench.protocol import NOT_FINGERPRINTED, NUMERICS_KEY, fingerprint_without_numerics
from mmbench.runner.methods import record_method
from mmbench.runner.run import summarize
from mmbench.runner.sweep import parse_dataset_spec
from mmbench.tasks import REGRESSION_METRICS, Task, higher_is_better, metric_label, task_from_record

#: Column and caption names of the metrics (regression metrics as papers print them: MAE, Corr, Acc-7).
METRIC_NAMES = {
    **{m: metric_label(m) for m in REGRESSION_METRICS},
    "weighted_f1": "weighted F1",
    "accuracy": "WA (accuracy)",
    "weighted_accuracy": "WA (accuracy)",
    "unweighted_accuracy": "UA",
    "macro_f1": "macro F1",
}
#: (record key, column header, higher is better)
EFFICIENCY = (
    ("params", "params", False),
    ("train_seconds", "train s", False),
    ("encode_seconds", "encode s", False),
    ("train_samples_per_second", "train samples/s", True),
    ("peak_memory_bytes", "peak MiB", False),
    ("inference_ms_per_sample", "inference ms/sample", False),
)
UP, DOWN = "↑", "↓"
BUDGET_MARK = "†"


@dataclass
class Row:
    """One fusion setting of a group, summarised over its seeds."""

    fusion: str
    params_tag: str
    tuning: dict[str, Any] | None
    records: list[dict[str, Any]]  # ok runs, sorted by seed
    failed: list[dict[str, Any]]
    summary: dict[str, Any]  # runner.summarize's row
    per_class: dict[str, dict[str, Any]]  # mean/std test F1 per class; mean None: no F1
    efficiency: dict[str, float | None]
    budget_cut: bool
    encoders: str
    label: str = ""
    rank: int = 0
    p_value: float | None = None  # Holm-adjusted two-sided p of the test against the best
    p_raw: float | None = None  # the same test's p before the correction
    delta: float | None = None
    tied: bool = False
    best: bool = False
    robustness: dict[str, Any] | None = None  # robustness.summarize_robustness of the records
    numerics: str = ""  # numerics_tag of the runs, in a table that mixes numerics on request

    @property
    def seeds(self) -> list[int]:
        return [int(r["seed"]) for r in self.records]

    def mean(self, metric: str) -> float:
        return self.summary["test"][metric]["mean"]

    def std(self, metric: str) -> float:
        return self.summary["test"][metric]["std"]


@dataclass
class Group:
    """Records sharing dataset, protocol fingerprint and dataset fingerprint: one table."""

    dataset: str
    protocol_fingerprint: str
    dataset_fingerprint: str
    protocol: dict[str, Any]
    records: list[dict[str, Any]]
    rows: list[Row] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    title_bits: list[str] = field(default_factory=list)
    significance: dict[str, Any] = field(default_factory=dict)
    #: Grouped by the fingerprint without numerics (``--mix-numerics``).
    mixed_numerics: bool = False

    @property
    def metric(self) -> str:
        return self.protocol.get("metric", "weighted_f1")

    @property
    def title(self) -> str:
        return " · ".join([self.dataset, *self.title_bits])

    @property
    def task(self) -> Task:
        """The records' task (``mmbench.tasks``): its metrics and their directions."""
        return task_from_record(self.records[0])

    @property
    def class_names(self) -> list[str]:
        """The class names; empty for a regression task (no per-class table, no confusion matrix)."""
        first = self.records[0]
        if "class_names" in first:
            return list(first["class_names"] or first["metrics"]["test"].get("per_class") or ())
        return list(first["metrics"]["test"].get("per_class") or ())

    @property
    def higher_is_better(self) -> bool:
        """Whether the primary metric ranks descending (false for MAE)."""
        return higher_is_better(self.metric)

    @property
    def metrics(self) -> list[str]:
        """The primary metric first, then the task's other headline metrics (WA is accuracy: shown once)."""
        same = {self.metric, "accuracy"} if self.metric == "weighted_accuracy" else {self.metric}
        return [self.metric, *(m for m in self.task.headline_metrics if m not in same)]


@dataclass
class Leaderboard:
    groups: list[Group]
    runs_dir: str
    selection: str
    excluded_budget_cut: int = 0
    duplicates: list[str] = field(default_factory=list)
    alpha: float = 0.05
    n_resamples: int = 1000
    bootstrap_seed: int = 0


# ---------------------------------------------------------------- building
def _rel(path: str | None, runs_dir: Path) -> str:
    if not path:
        return "?"
    try:
        return Path(os.path.relpath(path, runs_dir)).as_posix()
    except ValueError:
        return Path(path).name


def matches_spec(record: dict[str, Any], spec: str) -> bool:
    """Whether a record belongs to dataset spec ``NAME`` or ``NAME:PRESET``."""
    name, preset = parse_dataset_spec(spec)
    if record.get("dataset") != name:
        return False
    return preset is None or (record.get("protocol", {}).get("data") or {}).get("preset") == preset


def row_key(record: dict[str, Any]) -> tuple[str, str, int | None]:
    """(method, params tag, tuning trials or None): what makes a leaderboard row.

    The method is the fusion, or ``fusion + context`` for runs with a dialogue context model.
    """
    tuning = record.get("tuning")
    trials = int(tuning.get("n_trials", 0)) if isinstance(tuning, dict) else None
    return record_method(record), str(record.get("params_tag") or ""), trials


def numerics_tag(record: dict[str, Any]) -> str:
    """Short label of a record's numerics: ``bf16 cuda torch 2.5.1+cu121`` (``?`` when unrecorded)."""
    block = (record.get("protocol") or {}).get(NUMERICS_KEY)
    if not block:
        return "?"
    bits = [str(block.get("precision")), str(block.get("device")), f"torch {block.get('torch')}"]
    if block.get("compile"):
        bits.append("compiled")
    if block.get("deterministic_algorithms"):
        bits.append("deterministic")
    if block.get("after_oom"):
        bits.append(f"batch {block['after_oom']['batch_size']}x{block['after_oom']['grad_accum']}")
    return " ".join(bits)


def _encoders_label(record: dict[str, Any]) -> str:
    encoders = record.get("encoders") or {}
    return ", ".join(f"{m}={(e or {}).get('name', '?')}" for m, e in sorted(encoders.items()))


def build_leaderboard(
    records: list[dict[str, Any]],
    runs_dir: Path,
    datasets: list[str] | None = None,
    fingerprint: str | None = None,
    include_budget_cut: bool = False,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    bootstrap_seed: int = 0,
    mix_numerics: bool = False,
) -> Leaderboard:
    """Group, summarise, rank and test ``records`` (as loaded by ``records.load_records``).

    Records of different numerics (the protocol's ``numerics`` block: precision, compile, device,
    torch version...) have different protocol fingerprints and so separate tables;
    ``mix_numerics`` groups them by the fingerprint without that block instead.
    """
    runs_dir = Path(runs_dir)
    records = sorted(records, key=lambda r: _rel(r.get("_path"), runs_dir))
    if not records:
        raise UsageError(f"no run records under {runs_dir} (run `mmbench run` or `mmbench sweep` first)")
    if datasets:
        for spec in datasets:
            parse_dataset_spec(spec)
        records = [r for r in records if any(matches_spec(r, s) for s in datasets)]
        if not records:
            raise UsageError(f"no run records of {', '.join(datasets)} under {runs_dir}")
    if fingerprint:
        records = [
            r
            for r in records
            if str(r.get("protocol_fingerprint", "")).startswith(fingerprint)
            or str(r.get("dataset_fingerprint", "")).startswith(fingerprint)
        ]
        if not records:
            raise UsageError(
                f"no run records with a protocol or dataset fingerprint starting {fingerprint!r}"
            )
    cut = [r for r in records if r.get("budget_cut")]
    if not include_budget_cut:
        records = [r for r in records if not r.get("budget_cut")]
        if not records:
            raise UsageError(
                f"all {len(cut)} matching records are budget-cut runs (--max-epochs below the protocol); "
                "add --include-budget-cut to show them"
            )

    seen: dict[tuple, str] = {}
    unique, duplicates = [], []
    for rec in records:
        ident = (
            rec.get("dataset"),
            rec.get("protocol_fingerprint"),
            rec.get("dataset_fingerprint"),
            row_key(rec),
            rec.get("seed"),
        )
        where = _rel(rec.get("_path"), runs_dir)
        if ident in seen:
            duplicates.append(f"{where} (same run as {seen[ident]})")
            continue
        seen[ident] = where
        unique.append(rec)

    by_group: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in unique:
        protocol_fp = str(rec.get("protocol_fingerprint"))
        if mix_numerics:
            protocol_fp = fingerprint_without_numerics(rec.get("protocol") or {})
        key = (str(rec["dataset"]), protocol_fp, str(rec.get("dataset_fingerprint")))
        by_group.setdefault(key, []).append(rec)
    groups = [
        Group(
            dataset=k[0],
            protocol_fingerprint=k[1],
            dataset_fingerprint=k[2],
            protocol=v[0].get("protocol") or {},
            records=v,
            mixed_numerics=mix_numerics,
        )
        for k, v in by_group.items()
    ]
    _title_groups(groups)
    groups.sort(key=lambda g: (g.dataset, g.title, g.protocol_fingerprint, g.dataset_fingerprint))
    board = Leaderboard(
        groups=groups,
        runs_dir=runs_dir.as_posix(),
        selection=", ".join(datasets) if datasets else "all datasets",
        excluded_budget_cut=0 if include_budget_cut else len(cut),
        duplicates=duplicates,
        alpha=alpha,
        n_resamples=n_resamples,
        bootstrap_seed=bootstrap_seed,
    )
    for group in groups:
        _fill_group(group, board)
    if not any(g.rows for g in groups):
        raise UsageError(
            f"every matching run failed; nothing to rank ({sum(len(g.failed) for g in groups)} failed)"
        )
    return board


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def fmt_value(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def _title_groups(groups: list[Group]) -> None:
    """Name each group by its preset and by what differs from the other groups of its dataset."""
    for group in groups:
        preset = (group.protocol.get("data") or {}).get("preset")
        group.title_bits = [f"preset={preset}"] if preset is not None else []
    by_dataset: dict[str, list[Group]] = {}
    for group in groups:
        by_dataset.setdefault(group.dataset, []).append(group)
    for siblings in by_dataset.values():
        if len(siblings) < 2:
            continue
        flat = [
            _flatten(
                {
                    k: v
                    for k, v in g.protocol.items()
                    if k not in NOT_FINGERPRINTED and not (g.mixed_numerics and k == NUMERICS_KEY)
                }
            )
            for g in siblings
        ]
        keys = sorted({k for f in flat for k in f} - {"data.preset"})
        differing = [k for k in keys if len({fmt_value(f.get(k)) for f in flat}) > 1]
        for group, f in zip(siblings, flat, strict=True):
            bits = [f"{k}={fmt_value(f.get(k))}" for k in differing[:4]]
            if len(differing) > 4:
                bits.append(f"+{len(differing) - 4} more protocol differences")
            same_protocol = [g for g in siblings if g.protocol_fingerprint == group.protocol_fingerprint]
            if len(same_protocol) > 1:
                bits.append(f"dataset fingerprint {group.dataset_fingerprint}")
            group.title_bits += bits


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _fill_group(group: Group, board: Leaderboard) -> None:
    ok = [r for r in group.records if r.get("status") == "ok"]
    group.failed = sorted(
        (r for r in group.records if r.get("status") != "ok"), key=lambda r: (row_key(r), r.get("seed", 0))
    )

    def key_of(rec: dict[str, Any]) -> tuple:
        # Mixed numerics (on request): runs of other numerics stay rows of their own.
        return (*row_key(rec), numerics_tag(rec) if group.mixed_numerics else "")

    by_row: dict[tuple, list[dict[str, Any]]] = {}
    for rec in ok:
        by_row.setdefault(key_of(rec), []).append(rec)
    rows = []
    for key, recs in sorted(by_row.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or -1, kv[0][3])):
        recs = sorted(recs, key=lambda r: int(r["seed"]))
        failed = [r for r in group.failed if key_of(r) == key]
        per_class = per_class_f1(recs, group.class_names)
        efficiency = {
            k: _mean([v for v in (efficiency_value(r, k) for r in recs) if v is not None])
            for k, _, _ in EFFICIENCY
        }
        rows.append(
            Row(
                fusion=key[0],
                params_tag=key[1],
                tuning=recs[0].get("tuning"),
                records=recs,
                failed=failed,
                summary=summarize(recs + failed)[0],
                per_class=per_class,
                efficiency=efficiency,
                budget_cut=any(r.get("budget_cut") for r in recs),
                encoders=_encoders_label(recs[0]),
                numerics=key[3],
                robustness=summarize_robustness(recs),
            )
        )
    _label_rows(rows)
    metric = group.metric
    rows.sort(key=lambda r: (rank_key(r.mean(metric), metric), r.label))
    for i, row in enumerate(rows):
        same = i > 0 and row.mean(metric) == rows[i - 1].mean(metric)
        row.rank = rows[i - 1].rank if same else i + 1
    group.rows = rows
    if rows:
        mark_ties(group, board)


def rank_key(value: float | None, metric: str) -> float:
    """Sort key of a row's mean ``metric``: the best first in the metric's direction, undefined last."""
    if value is None or math.isnan(value):
        return math.inf
    return -value if higher_is_better(metric) else value


def efficiency_value(record: dict[str, Any], key: str) -> float | None:
    """``record["efficiency"][key]``; for records written before ``encode_seconds`` was stored, the
    encoders' own times when no modality came from the cache (a hit's time is a load, not an encoding)."""
    value = (record.get("efficiency") or {}).get(key)
    if value is not None:
        return float(value)
    if key == "encode_seconds":
        encoders = list((record.get("encoders") or {}).values())
        if encoders and all(e.get("cache") != "hit" and e.get("seconds") is not None for e in encoders):
            return float(sum(e["seconds"] for e in encoders))
    return None


def per_class_f1(records: list[dict[str, Any]], class_names: list[str]) -> dict[str, dict[str, Any]]:
    """Per class: mean and sample std over seeds of test F1, ``None`` where the class has no F1.

    A class with neither a true nor a predicted test sample in a run has no F1 (``metrics``): that
    run is left out of the class's mean, as macro F1 leaves the class out, so that a row's macro F1
    is the mean of the per-class numbers it shows.
    """
    from mmbench.metrics import class_present

    if not class_names:  # a regression task: no classes
        return {}
    present = [class_present(r["metrics"]["test"]["confusion_matrix"]) for r in records]
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(class_names):
        values = np.array(
            [
                r["metrics"]["test"]["per_class"][name]["f1"]
                for r, p in zip(records, present, strict=True)
                if p[i]
            ],
            dtype=float,
        )
        out[name] = {
            "mean": float(values.mean()) if len(values) else None,
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        }
    return out


def _label_rows(rows: list[Row]) -> None:
    """Fusion name, ``(tuned, N trials)`` for tuned rows, the params tag where a name repeats."""
    for row in rows:
        row.label = row.fusion
        if ((row.records or row.failed)[0].get("context") or {}).get("causal"):
            row.label += " (causal)"
        if row.tuning is not None:
            row.label += f" (tuned, {int(row.tuning.get('n_trials', 0))} trials)"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    tags: dict[str, set[str]] = {}
    for row in rows:
        tags.setdefault(row.label, set()).add(row.params_tag)
    for row in rows:
        if counts[row.label] > 1:
            # the params tag where it tells the rows apart, else (mixed numerics) the numerics
            same_params = len(tags[row.label]) == 1 and row.numerics
            row.label += f" [{row.numerics}]" if same_params else f" [{row.params_tag}]"
        if row.budget_cut:
            row.label += f" {BUDGET_MARK}"


def summarize_robustness(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean ± std over seeds of a row's robustness figures; None when none was analysed."""
    analysed = [r["robustness"] for r in records if r.get("robustness")]
    if not analysed:
        return None

    def mean_std(values: list[float]) -> dict[str, float] | None:
        vals = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
        if not len(vals):
            return None
        return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}

    modalities = list(analysed[0]["contributions"]["shapley"])
    out = {
        "n": len(analysed),
        "relative": mean_std([a["noise"]["relative_robustness"]["all"] for a in analysed]),
        "effective": mean_std([(a["noise"].get("effective_robustness") or {}).get("all") for a in analysed]),
        "shapley": {m: mean_std([a["contributions"]["shapley"][m] for a in analysed]) for m in modalities},
    }
    if all("drops" in a for a in analysed):  # analyses made since drops are stored
        metric = analysed[0]["metric"]
        out["drops"] = {
            m: mean_std([a["drops"]["removed"][m].get(metric) for a in analysed]) for m in modalities
        }
    return out
