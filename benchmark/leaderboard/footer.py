"""Leaderboard footers: what a table's numbers mean and where they come from.

Protocol, selection rule, seeds, fingerprints, numerics, the tie test (method, resamples, cluster
unit, smallest attainable p), tuned values, failures, versions, hardware and commands, as
``(label, text)`` pairs that every renderer (markdown, JSON, LaTeX, HTML, terminal) shows.
"""

from __future__ import annotations

from typing import Any

from mmbench.leaderboard.build import BUDGET_MARK, METRIC_NAMES, Group, Leaderboard, Row, fmt_value
from mmbench.runner.methods import record_context, record_method


def _distinct(values: list[Any]) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "")})


def _join_some(values: list[str], limit: int = 3) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def context_footer(group: Group) -> str | None:
    """What the rows know of the dialogue around each utterance; None for data without dialogues
    (records of utterance-level runs on such data carry no ``context`` entry)."""
    records = [r for row in group.rows for r in row.records]
    if not any(isinstance(r.get("context"), dict) for r in records):
        return None
    used = sorted({record_context(r) for r in records} - {"none"})
    if not used:
        return (
            "none: every result classifies each utterance alone and uses no dialogue context; "
            "not comparable with published results that model the conversation"
        )
    causal = sorted({record_context(r) for r in records if (r.get("context") or {}).get("causal")})
    text = (
        f"rows named `fusion + model` run a dialogue context model ({', '.join(used)}) over the fused "
        "utterances of each dialogue; rows without `+` use no dialogue context"
    )
    if causal:
        text += f"; causal (past utterances only): {', '.join(causal)}"
    return text


def footer_lines(group: Group, board: Leaderboard) -> list[tuple[str, str]]:
    """(label, text) pairs: protocol, seeds, significance, failures, versions, hardware, origin."""
    p = group.protocol
    first = group.records[0]
    data_opts = (
        ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted((p.get("data") or {}).items())) or "defaults"
    )
    train = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted((p.get("train") or {}).items()))
    seeds = sorted({int(r["seed"]) for row in group.rows for r in row.records})
    sizes = "/".join(str(first.get(k, "?")) for k in ("n_train", "n_dev", "n_test"))
    lines = [
        (
            "Protocol",
            f"`{group.protocol_fingerprint}`; split: {p.get('split', 'the dataset’s own')}; "
            f"train/dev/test {sizes}; "
            f"{target_text(group)}; data: {data_opts}",
        ),
        (
            "Selection",
            f"the epoch with the {'best' if group.higher_is_better else 'lowest'} dev {group.metric} "
            "(early stopping on dev); test evaluated once; "
            f"training: {train}",
        ),
        ("Seeds", ", ".join(str(s) for s in seeds)),
        ("Dataset fingerprint", f"`{group.dataset_fingerprint}`"),
    ]
    lines.append(("Numerics", numerics_text(group)))
    lines.append(("Ties (≈)", ties_text(group)))
    tuned = [row for row in group.rows if row.tuning is not None]
    if tuned:
        lines.append(
            ("Tuned values (replace the protocol's for these rows)", "; ".join(map(tuned_text, tuned)))
        )
    context = context_footer(group)
    if context is not None:
        lines.append(("Dialogue context", context))
    if any(r.budget_cut for r in group.rows):
        lines.append(
            (
                f"Budget cut {BUDGET_MARK}",
                "trained with fewer epochs than the protocol (--max-epochs); not comparable with full runs",
            )
        )
    if group.failed:
        failed = [
            f"{record_method(r)} seed {r.get('seed')}: "
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


def target_text(group: Group) -> str:
    """``6 classes (hap, sad, ...)``, or the regression target (``a regression target in [-3, 3]``)."""
    classes = group.class_names
    if classes:
        return f"{len(classes)} classes ({', '.join(classes)})"
    return group.task.target_summary()


def numerics_text(group: Group) -> str:
    """The group's numerics (part of the protocol fingerprint), or each of them when mixed on request."""
    from mmbench.protocol import NUMERICS_KEY

    def one(block: dict[str, Any] | None) -> str:
        if not block:
            return "not recorded (records made before numerics entered the fingerprint)"
        parts = [
            f"precision {block.get('precision')}",
            f"compile {'on' if block.get('compile') else 'off'}",
            f"deterministic algorithms {'on' if block.get('deterministic_algorithms') else 'off'}",
            f"device {block.get('device')}",
            f"torch {block.get('torch')}",
        ]
        parts += [f"{k} {block[k]}" for k in ("cuda", "cudnn") if block.get(k) is not None]
        oom = block.get("after_oom")
        if oom:
            parts.append(f"batch {oom['batch_size']} x {oom['grad_accum']} after out-of-memory retries")
        return ", ".join(parts)

    blocks = _distinct(one((r.get("protocol") or {}).get(NUMERICS_KEY)) for r in group.records)
    if group.mixed_numerics and len(blocks) > 1:
        return "mixed on request (--mix-numerics): " + "; ".join(blocks)
    return "; ".join(blocks)


def tuned_text(row: Row) -> str:
    """A tuned row's values as its runs used them: fusion parameters, trainer values, the study."""
    rec = row.records[0]
    fusion = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted((rec.get("fusion_params") or {}).items()))
    train = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted((rec.get("train_overrides") or {}).items()))
    study = (row.tuning or {}).get("study_name") or "?"
    return (
        f"{row.label}: fusion {fusion or 'defaults'}; training {train or 'as the protocol'} (study {study})"
    )


def ties_text(group: Group) -> str:
    """The footer's description of the tie test: method, resamples, cluster unit, smallest p."""
    sig = group.significance
    name = METRIC_NAMES[group.metric]
    head = (
        f"not significantly different from the best at α = {sig.get('alpha')} (two-sided, Holm-adjusted "
        f"over all {sig.get('n_comparisons', 0)} pairwise comparisons of the table, since the best is "
        "picked on the same test data; the p shown is the adjusted p of the comparison with the best)"
    )
    smallest = sig.get("smallest_p")
    floor = f"smallest attainable p {smallest:.4f}" if smallest is not None else "no paired seeds"
    if smallest is not None and smallest >= sig.get("alpha", 0.05):
        floor += " (≥ α: with so few paired seeds no row can be marked different)"
    if sig.get("method") == "cluster_bootstrap":
        return (
            f"{head}: hierarchical bootstrap of test {name} ({sig['n_resamples']} resamples, seed "
            f"{sig['seed']}) resampling seeds (runs paired by seed) and clusters of test utterances; "
            f"cluster unit: {sig['cluster_unit']}, {sig['n_clusters']} clusters; tails widened to "
            f"Student's t (Welch-Satterthwaite df of the seed and cluster parts); {floor}"
        )
    return (
        f"{head}: sign-flip permutation test over seeds (runs paired by seed) on test {name}, used "
        f"because {sig.get('reason')}; {floor}"
    )


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
