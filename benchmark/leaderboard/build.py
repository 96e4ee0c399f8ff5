"""Leaderboards: run records grouped by fingerprint, summarised over seeds, ranked and tested.

* Records are grouped by (dataset, protocol fingerprint, dataset fingerprint); runs from
  different groups never share a table.
* Within a group, one row per fusion setting: fusion + params tag (hyper-parameters and
  encoders), and tuned runs (a non-null ``tuning``) as their own row.
* Each row: n seeds, test metrics as mean ± sample std (``runner.summarize``), per-class F1,
  rank by the protocol's primary metric, whether it is tied with the best (``mmbench.leaderboard.significance``),
  and the efficiency columns.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import UsageError
from mmbench.protocol import NOT_FINGERPRINTED
from mmbench.runner.run import SUMMARY_METRICS, summarize
from mmbench.runner.sweep import parse_dataset_spec

METRIC_NAMES = {"weighted_f1": "weighted F1", "accuracy": "accuracy", "macro_f1": "macro F1"}
#: (record key, column header, higher is better)
EFFICIENCY = (
    ("params", "params", False),
    ("train_seconds", "train s", False),
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
    per_class: dict[str, dict[str, float]]
    efficiency: dict[str, float | None]
    budget_cut: bool
    encoders: str
    label: str = ""
    rank: int = 0
    p_value: float | None = None
    delta: float | None = None
    tied: bool = False
    best: bool = False
    robustness: dict[str, Any] | None = None  # robustness.summarize_robustness of the records

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

    @property
    def metric(self) -> str:
        return self.protocol.get("metric", "weighted_f1")

    @property
    def title(self) -> str:
        return " · ".join([self.dataset, *self.title_bits])

    @property
    def class_names(self) -> list[str]:
        first = self.records[0]
        return list(first.get("class_names") or first["metrics"]["test"]["per_class"])

    @property
    def metrics(self) -> list[str]:
        """The primary metric first, then the others."""
        return [self.metric, *(m for m in SUMMARY_METRICS if m != self.metric)]


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
    """(fusion, params tag, tuning trials or None): what makes a leaderboard row."""
    tuning = record.get("tuning")
    trials = int(tuning.get("n_trials", 0)) if isinstance(tuning, dict) else None
    return str(record["fusion"]), str(record.get("params_tag") or ""), trials


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
) -> Leaderboard:
    """Group, summarise, rank and test ``records`` (as loaded by ``records.load_records``)."""
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
        key = (str(rec["dataset"]), str(rec.get("protocol_fingerprint")), str(rec.get("dataset_fingerprint")))
        by_group.setdefault(key, []).append(rec)
    groups = [
        Group(
            dataset=k[0],
            protocol_fingerprint=k[1],
            dataset_fingerprint=k[2],
            protocol=v[0].get("protocol") or {},
            records=v,
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


def _fmt_value(value: Any) -> str:
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
            _flatten({k: v for k, v in g.protocol.items() if k not in NOT_FINGERPRINTED}) for g in siblings
        ]
        keys = sorted({k for f in flat for k in f} - {"data.preset"})
        differing = [k for k in keys if len({_fmt_value(f.get(k)) for f in flat}) > 1]
        for group, f in zip(siblings, flat, strict=True):
            bits = [f"{k}={_fmt_value(f.get(k))}" for k in differing[:4]]
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
    by_row: dict[tuple, list[dict[str, Any]]] = {}
    for rec in ok:
        by_row.setdefault(row_key(rec), []).append(rec)
    rows = []
    for key, recs in sorted(by_row.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or -1)):
        recs = sorted(recs, key=lambda r: int(r["seed"]))
        failed = [r for r in group.failed if row_key(r) == key]
        per_class = {}
        for name in group.class_names:
            values = np.array([r["metrics"]["test"]["per_class"][name]["f1"] for r in recs], dtype=float)
            per_class[name] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            }
        efficiency = {
            k: _mean([float(r["efficiency"][k]) for r in recs if r.get("efficiency", {}).get(k) is not None])
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
                robustness=summarize_robustness(recs),
            )
        )
    _label_rows(rows)
    metric = group.metric
    rows.sort(key=lambda r: (-r.mean(metric), r.label))
    for i, row in enumerate(rows):
        same = i > 0 and row.mean(metric) == rows[i - 1].mean(metric)
        row.rank = rows[i - 1].rank if same else i + 1
    group.rows = rows
    if rows:
        _significance(group, board)


def _label_rows(rows: list[Row]) -> None:
    """Fusion name, ``(tuned, N trials)`` for tuned rows, the params tag where a name repeats."""
    for row in rows:
        row.label = row.fusion
        if row.tuning is not None:
            row.label += f" (tuned, {int(row.tuning.get('n_trials', 0))} trials)"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    for row in rows:
        if counts[row.label] > 1:
            row.label += f" [{row.params_tag}]"
        if row.budget_cut:
            row.label += f" {BUDGET_MARK}"


# ---------------------------------------------------------------- significance
def load_predictions(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """(y_true, y_pred) of a record's stored test predictions, or None when unavailable."""
    path = record.get("_path")
    name = record.get("predictions_file")
    if not path or not name:
        return None
    try:
        data = json.loads((Path(path).parent / name).read_text(encoding="utf-8"))
        y_true = np.asarray(data["y_true"], dtype=np.int64)
        y_pred = np.asarray(data["y_pred"], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) != record.get("n_test", len(y_true)):
        return None
    return y_true, y_pred


def _significance(group: Group, board: Leaderboard) -> None:
    """Mark each row tied with the best or not (seeded paired bootstrap, else a test over seeds)."""
    from mmbench.leaderboard.significance import paired_bootstrap, resample_indices, resampled_scores, seed_permutation

    metric, rows = group.metric, group.rows
    best = rows[0]
    best.best, best.tied = True, True
    preds = {id(r): load_predictions(r) for row in rows for r in row.records}
    truths = [p[0] for p in preds.values() if p is not None]
    reason = ""
    if any(p is None for p in preds.values()):
        missing = sum(p is None for p in preds.values())
        reason = f"{missing} run(s) have no readable predictions file"
    elif any(not np.array_equal(t, truths[0]) for t in truths):
        reason = "the runs' test labels differ"
    method = "seeds" if reason else "bootstrap"
    group.significance = {
        "method": method,
        "reason": reason,
        "alpha": board.alpha,
        "n_resamples": board.n_resamples,
        "seed": board.bootstrap_seed,
    }
    idx = None
    if method == "bootstrap":
        idx = resample_indices(len(truths[0]), board.n_resamples, board.bootstrap_seed)
    cache: dict[int, np.ndarray] = {}

    def scores(rec: dict[str, Any]) -> np.ndarray:
        if id(rec) not in cache:
            y_true, y_pred = preds[id(rec)]
            cache[id(rec)] = resampled_scores(y_true, y_pred, idx, len(group.class_names), metric)
        return cache[id(rec)]

    best_by_seed = {int(r["seed"]): r for r in best.records}
    for row in rows[1:]:
        pairs = [(best_by_seed[int(r["seed"])], r) for r in row.records if int(r["seed"]) in best_by_seed]
        if not pairs:
            row.p_value, row.tied = None, False
            continue
        a_vals = [float(a["metrics"]["test"][metric]) for a, _ in pairs]
        b_vals = [float(b["metrics"]["test"][metric]) for _, b in pairs]
        if method == "bootstrap":
            row.delta = float(np.mean(a_vals) - np.mean(b_vals))
            row.p_value = paired_bootstrap(
                np.stack([scores(a) for a, _ in pairs]), np.stack([scores(b) for _, b in pairs])
            )
        else:
            result = seed_permutation(a_vals, b_vals, board.bootstrap_seed)
            row.delta, row.p_value = result.delta, result.p_value
        row.tied = row.p_value >= board.alpha


# ---------------------------------------------------------------- formatting helpers
def fmt_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_efficiency(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "params":
        return f"{value:,.0f}"
    if key == "train_seconds":
        return f"{value:,.1f}"
    if key == "train_samples_per_second":
        return f"{value:,.0f}"
    if key == "peak_memory_bytes":
        return f"{value / 2**20:,.1f}"
    return f"{value:.3f}"


def fmt_vs_best(row: Row) -> str:
    if row.best:
        return "best"
    if row.p_value is None:
        return "n/a (no shared seeds)"
    p = "p<0.001" if row.p_value < 0.001 else f"p={row.p_value:.3f}"
    return f"≈ tied ({p})" if row.tied else p


def _best_values(rows: list[Row], values: list[float | None], higher: bool) -> set[int]:
    present = [v for v in values if v is not None]
    if not present:
        return set()
    target = max(present) if higher else min(present)
    return {i for i, v in enumerate(values) if v is not None and v == target}


def table_headers(group: Group) -> list[str]:
    heads = ["rank", "fusion", "n"]
    heads += [f"{METRIC_NAMES[m]} {UP}" for m in group.metrics]
    heads.append("vs best")
    if len({r.encoders for r in group.rows}) > 1:
        heads.append("encoders")
    heads += [f"{title} {UP if higher else DOWN}" for _, title, higher in EFFICIENCY]
    return heads


def table_cells(
    group: Group, bold: tuple[str, str] = ("**", "**"), escape: Callable[[str], str] = str
) -> list[list[str]]:
    """The main table's cells (strings, through ``escape``), the best of each metric column in ``bold``."""
    rows = group.rows
    best_cells = {m: _best_values(rows, [r.mean(m) for r in rows], True) for m in group.metrics}
    show_encoders = len({r.encoders for r in rows}) > 1
    out = []
    for i, row in enumerate(rows):
        cells = [str(row.rank), escape(row.label), str(row.summary["n_seeds"])]
        for m in group.metrics:
            text = fmt_mean_std(row.mean(m), row.std(m))
            cells.append(f"{bold[0]}{text}{bold[1]}" if i in best_cells[m] else text)
        cells.append(fmt_vs_best(row))
        if show_encoders:
            cells.append(escape(row.encoders))
        cells += [fmt_efficiency(k, row.efficiency[k]) for k, _, _ in EFFICIENCY]
        out.append(cells)
    return out


def per_class_cells(
    group: Group, bold: tuple[str, str] = ("**", "**"), escape: Callable[[str], str] = str
) -> list[list[str]]:
    names = group.class_names
    best = {c: _best_values(group.rows, [r.per_class[c]["mean"] for r in group.rows], True) for c in names}
    out = []
    for i, row in enumerate(group.rows):
        cells = [escape(row.label)]
        for c in names:
            text = f"{row.per_class[c]['mean']:.3f}"
            cells.append(f"{bold[0]}{text}{bold[1]}" if i in best[c] else text)
        out.append(cells)
    return out


def _distinct(values: list[Any]) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "")})


def _join_some(values: list[str], limit: int = 3) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def footer_lines(group: Group, board: Leaderboard) -> list[tuple[str, str]]:
    """(label, text) pairs: protocol, seeds, significance, failures, versions, hardware, origin."""
    p = group.protocol
    first = group.records[0]
    classes = group.class_names
    data_opts = (
        ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted((p.get("data") or {}).items())) or "defaults"
    )
    train = ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted((p.get("train") or {}).items()))
    seeds = sorted({int(r["seed"]) for row in group.rows for r in row.records})
    sizes = "/".join(str(first.get(k, "?")) for k in ("n_train", "n_dev", "n_test"))
    lines = [
        (
            "Protocol",
            f"`{group.protocol_fingerprint}`; split: {p.get('split', 'the dataset’s own')}; "
            f"train/dev/test {sizes}; "
            f"{len(classes)} classes ({', '.join(classes)}); data: {data_opts}",
        ),
        (
            "Selection",
            f"the epoch with the best dev {group.metric} (early stopping on dev); test evaluated once; "
            f"training: {train}",
        ),
        ("Seeds", ", ".join(str(s) for s in seeds)),
        ("Dataset fingerprint", f"`{group.dataset_fingerprint}`"),
    ]
    sig = group.significance
    if sig.get("method") == "bootstrap":
        lines.append(
            (
                "Ties (≈)",
                f"not significantly worse than the best at α = {sig['alpha']}: one-sided paired "
                f"bootstrap over the test set ({sig['n_resamples']} resamples, seed {sig['seed']}), runs "
                f"paired by seed and {METRIC_NAMES[group.metric]} averaged over the shared seeds; "
                "p = share of resamples in which the method scores at least as well as the best",
            )
        )
    else:
        lines.append(
            (
                "Ties (≈)",
                f"not significantly worse than the best at α = {sig.get('alpha')}: one-sided sign-flip "
                f"permutation test over seeds (runs paired by seed) on test {METRIC_NAMES[group.metric]}, "
                f"used because {sig.get('reason')}",
            )
        )
    if any(r.budget_cut for r in group.rows):
        lines.append(
            (
                f"Budget cut {BUDGET_MARK}",
                "trained with fewer epochs than the protocol (--max-epochs); not comparable with full runs",
            )
        )
    if group.failed:
        failed = [
            f"{r['fusion']} seed {r.get('seed')}: "
            + _one_line((r.get("failure") or {}).get("reason", "failed"), 100)
            for r in group.failed
        ]
        lines.append((f"Failed runs ({len(failed)}, not averaged)", "; ".join(failed)))
    envs = [r.get("environment") or {} for r in group.records]
    plugins = _distinct(
        f"{pl.get('name')} ({pl.get('distribution')} {pl.get('version')})"
        for e in envs
        for pl in (e.get("plugins") or [])
    )
    software = [
        "mmbench " + "/".join(_distinct(e.get("mmbench") for e in envs)),
        "python " + "/".join(_distinct(e.get("python") for e in envs)),
        "torch " + "/".join(_distinct(e.get("torch") for e in envs)),
    ]
    if plugins:
        software.append("plugins: " + ", ".join(plugins))
    lines.append(("Software", "; ".join(software)))
    hardware = _distinct(
        f"{e.get('device')} ({e.get('device_name')}), {e.get('cpu_count')} CPUs, "
        f"{e.get('torch_threads')} torch threads"
        for e in envs
    )
    lines.append(("Hardware", "; ".join(hardware) or "unknown"))
    commits = _distinct(e.get("git_commit") for e in envs)
    if commits:
        lines.append(("mmbench commit", _join_some(commits)))
    commands = _distinct(e.get("command") for e in envs)
    if commands:
        lines.append(("Runs made by", _join_some([f"`{c}`" for c in commands])))
    return lines


def document_notes(board: Leaderboard) -> list[str]:
    notes = []
    if board.excluded_budget_cut:
        notes.append(
            f"Not shown: {board.excluded_budget_cut} budget-cut run(s) (--max-epochs below the protocol); "
            "add --include-budget-cut to show them."
        )
    if board.duplicates:
        notes.append(f"Ignored {len(board.duplicates)} duplicate record(s): {_join_some(board.duplicates)}.")
    return notes


# ---------------------------------------------------------------- renderers
def _pipe_table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    from tabulate import tabulate

    align = ["right" if i in right else "left" for i in range(len(headers))]
    text = tabulate(rows, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)
    return text.splitlines()


def plot_names(board: Leaderboard, group: Group, output: Path) -> dict[str, str]:
    """File names (beside ``output``) of a group's leaderboard plots."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    if len(board.groups) > 1:
        stem += f".{group.protocol_fingerprint[:8]}.{group.dataset_fingerprint[:8]}"
    names = {"bars": f"{stem}.{group.metric}.png", "per_class": f"{stem}.per_class_f1.png"}
    if any(r.robustness for r in group.rows):
        names.update(noise=f"{stem}.noise.png", contributions=f"{stem}.contributions.png")
    return names


def render_markdown(
    board: Leaderboard, command: str | None = None, plots: dict[int, dict[str, str]] | None = None
) -> str:
    """The leaderboard as GitHub markdown; ``plots[i]`` names group ``i``'s PNGs to link."""
    out = [f"# Leaderboard: {board.selection}", ""]
    out.append("<!-- Generated by `mmbench leaderboard` from run records; do not edit by hand. -->")
    out.append("")
    for i, group in enumerate(board.groups):
        out += [f"## {group.title}", ""]
        if not group.rows:
            out += ["Every run of this protocol failed; nothing to rank.", ""]
        else:
            out.append(
                f"Test split: mean ± std (sample std) over n seeds, ranked by test "
                f"{METRIC_NAMES[group.metric]}. **Bold**: best in the column. {UP}/{DOWN}: higher/lower "
                "is better. ≈ tied: not significantly worse than the best (see *Ties*)."
            )
            out.append("")
            heads = table_headers(group)
            right = {0, 2} | set(range(3, len(heads)))
            right.discard(3 + len(group.metrics))  # "vs best" reads better left-aligned
            if "encoders" in heads:
                right.discard(heads.index("encoders"))
            out += _pipe_table(heads, table_cells(group), right)
            out.append("")
            links = (plots or {}).get(i)
            if links:
                out += [
                    f"![Test {METRIC_NAMES[group.metric]} by fusion, mean ± std over seeds]({links['bars']})",
                    "",
                ]
            out += ["Per-class test F1 (mean over seeds):", ""]
            names = group.class_names
            out += _pipe_table(["fusion", *names], per_class_cells(group), set(range(1, len(names) + 1)))
            out.append("")
            if links:
                out += [f"![Per-class test F1 by fusion]({links['per_class']})", ""]
            out += robustness_markdown(group, links)
        for label, text in footer_lines(group, board):
            out.append(f"- **{label}**: {text}")
        out.append("")
    for note in document_notes(board):
        out += [note, ""]
    if command:
        out += ["---", "", f"Regenerate: `{command}`", ""]
    return "\n".join(out).rstrip("\n") + "\n"


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
    return {
        "n": len(analysed),
        "relative": mean_std([a["noise"]["relative_robustness"]["all"] for a in analysed]),
        "effective": mean_std([(a["noise"].get("effective_robustness") or {}).get("all") for a in analysed]),
        "shapley": {m: mean_std([a["contributions"]["shapley"][m] for a in analysed]) for m in modalities},
    }


def robustness_markdown(group: Group, links: dict[str, str] | None) -> list[str]:
    """The robustness table (from ``mmbench robustness``) of the rows that have one."""
    rows = [r for r in group.rows if r.robustness]
    if not rows:
        return []
    modalities = list(rows[0].robustness["shapley"])

    def cell(v: dict[str, float] | None, sign: bool = False) -> str:
        if v is None:
            return "-"
        return f"{v['mean']:+.4f} ± {v['std']:.4f}" if sign else f"{v['mean']:.4f} ± {v['std']:.4f}"

    heads = [
        "fusion",
        "n",
        f"relative robustness {UP}",
        f"effective robustness {UP}",
        *[f"φ {m}" for m in modalities],
    ]
    cells = [
        [
            row.label,
            str(row.robustness["n"]),
            cell(row.robustness["relative"]),
            cell(row.robustness["effective"], True),
            *[cell(row.robustness["shapley"].get(m), True) for m in modalities],
        ]
        for row in rows
    ]
    out = [
        f"Robustness on test ({METRIC_NAMES[group.metric]}; `mmbench robustness`): area under the "
        "metric-vs-noise curve with Gaussian noise of 0-1 × train std on all modalities; effective = that "
        "area minus late fusion's curve scaled to equal clean score; φ = Shapley contribution of each "
        "modality (they sum to the gain over the no-input output). See docs/robustness.md.",
        "",
        *_pipe_table(heads, cells, set(range(1, len(heads)))),
        "",
    ]
    if links and links.get("noise"):
        out += [
            f"![Test metric under noise]({links['noise']})",
            "",
            f"![Modality contributions]({links['contributions']})",
            "",
        ]
    return out


def board_to_dict(board: Leaderboard) -> dict[str, Any]:
    """Everything a JSON consumer needs: groups, rows (full precision), tests, footers."""
    groups = []
    for group in board.groups:
        rows = []
        for row in group.rows:
            rows.append(
                {
                    "rank": row.rank,
                    "label": row.label,
                    "fusion": row.fusion,
                    "params_tag": row.params_tag,
                    "tuning": row.tuning,
                    "encoders": row.encoders,
                    "budget_cut": row.budget_cut,
                    "n_seeds": row.summary["n_seeds"],
                    "seeds": row.seeds,
                    "failed_seeds": row.summary["failed_seeds"],
                    "test": row.summary["test"],
                    "dev": row.summary["dev"],
                    "per_class_f1": row.per_class,
                    "efficiency": row.efficiency,
                    "best": row.best,
                    "tied": row.tied,
                    "p_value": row.p_value,
                    "delta": row.delta,
                    "robustness": row.robustness,
                }
            )
        groups.append(
            {
                "dataset": group.dataset,
                "title": group.title,
                "protocol_fingerprint": group.protocol_fingerprint,
                "dataset_fingerprint": group.dataset_fingerprint,
                "metric": group.metric,
                "class_names": group.class_names,
                "significance": group.significance,
                "rows": rows,
                "failed": [
                    {
                        "fusion": r["fusion"],
                        "seed": r.get("seed"),
                        "reason": (r.get("failure") or {}).get("reason"),
                    }
                    for r in group.failed
                ],
                "footer": dict(footer_lines(group, board)),
            }
        )
    return {
        "selection": board.selection,
        "runs": board.runs_dir,
        "groups": groups,
        "excluded_budget_cut": board.excluded_budget_cut,
        "duplicates": board.duplicates,
    }


def render_json(board: Leaderboard, command: str | None = None) -> str:
    data = board_to_dict(board)
    data["command"] = command
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


CSV_FIELDS = [
    "dataset",
    "protocol_fingerprint",
    "dataset_fingerprint",
    "rank",
    "label",
    "fusion",
    "params_tag",
    "tuned_trials",
    "budget_cut",
    "n_seeds",
    "seeds",
]


def render_csv(board: Leaderboard) -> str:
    """One CSV table; refuses records from more than one group (it would mix fingerprints)."""
    import csv
    import io

    if len(board.groups) > 1:
        raise UsageError(
            "the records form several groups that must not share one CSV table: "
            + "; ".join(
                f"{g.title} (protocol {g.protocol_fingerprint}, data {g.dataset_fingerprint})"
                for g in board.groups
            )
            + ". Pick one with --dataset NAME[:PRESET] or --fingerprint PREFIX, or use --format md|json."
        )
    group = board.groups[0]
    metric_fields = [f"{m}_{s}" for m in group.metrics for s in ("mean", "std")]
    fields = [
        *CSV_FIELDS,
        *metric_fields,
        "tied",
        "p_value",
        *[k for k, _, _ in EFFICIENCY],
        *[f"f1_{c}" for c in group.class_names],
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in group.rows:
        item: dict[str, Any] = {
            "dataset": group.dataset,
            "protocol_fingerprint": group.protocol_fingerprint,
            "dataset_fingerprint": group.dataset_fingerprint,
            "rank": row.rank,
            "label": row.label,
            "fusion": row.fusion,
            "params_tag": row.params_tag,
            "tuned_trials": "" if row.tuning is None else int(row.tuning.get("n_trials", 0)),
            "budget_cut": row.budget_cut,
            "n_seeds": row.summary["n_seeds"],
            "seeds": " ".join(str(s) for s in row.seeds),
            "tied": row.tied,
            "p_value": "" if row.p_value is None else repr(row.p_value),
        }
        for m in group.metrics:
            item[f"{m}_mean"] = repr(row.mean(m))
            item[f"{m}_std"] = repr(row.std(m))
        for k, _, _ in EFFICIENCY:
            item[k] = "" if row.efficiency[k] is None else repr(row.efficiency[k])
        for c in group.class_names:
            item[f"f1_{c}"] = repr(row.per_class[c]["mean"])
        writer.writerow(item)
    return buf.getvalue()


def rich_renderables(board: Leaderboard, command: str | None = None) -> list[Any]:
    """Rich tables (one per group) with their footers, for the terminal."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    for group in board.groups:
        table = Table(
            title=escape(f"{group.title} — protocol {group.protocol_fingerprint}"), title_justify="left"
        )
        heads = table_headers(group)
        for head in heads:
            left = head in ("fusion", "vs best", "encoders")
            table.add_column(escape(head), justify="left" if left else "right", no_wrap=head != "fusion")
        for cells in table_cells(group, bold=("[bold]", "[/bold]"), escape=escape):
            table.add_row(*cells)
        out.append(table)
        names = group.class_names
        per_class = Table(title="per-class test F1 (mean over seeds)", title_justify="left")
        per_class.add_column("fusion")
        for name in names:
            per_class.add_column(escape(name), justify="right")
        for cells in per_class_cells(group, bold=("[bold]", "[/bold]"), escape=escape):
            per_class.add_row(*cells)
        out.append(per_class)
        for label, text in footer_lines(group, board):
            out.append(Text(f"{label}: {text}".replace("`", ""), style="dim"))
        out.append(Text(""))
    for note in document_notes(board):
        out.append(Text(note))
    if command:
        out.append(Text(f"regenerate: {command}", style="dim"))
    return out


# ---------------------------------------------------------------- publishing
def export_runs(board: Leaderboard, dest: Path) -> list[Path]:
    """Copy the board's records to ``dest`` with slim predictions (y_true, y_pred; no ids,
    probabilities or checkpoints), compact and key-sorted: small enough to commit beside
    published markdown, and enough to regenerate it (bootstrap included)."""
    from mmbench.records import PREDICTIONS_SUFFIX, atomic_write_text

    dest = Path(dest)
    written = []
    for group in board.groups:
        for rec in [r for row in group.rows for r in row.records] + group.failed:
            src = Path(rec["_path"])
            record = {k: v for k, v in rec.items() if not k.startswith("_") and k != "checkpoint_file"}
            env = dict(record.get("environment") or {})
            if env.get("plugins"):  # install locations are the publisher's paths, not results
                env["plugins"] = [{k: v for k, v in pl.items() if k != "location"} for pl in env["plugins"]]
                record["environment"] = env
            stem = src.name[: -len(".json")]
            pred_name = stem + PREDICTIONS_SUFFIX
            preds = load_predictions(rec)
            if preds is not None:
                slim = {"y_true": preds[0].tolist(), "y_pred": preds[1].tolist()}
                atomic_write_text(dest / pred_name, json.dumps(slim, separators=(",", ":")) + "\n")
                record["predictions_file"] = pred_name
            else:
                record.pop("predictions_file", None)
            target = dest / src.name
            atomic_write_text(target, json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
            written.append(target)
    return written
