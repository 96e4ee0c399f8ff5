"""Leaderboard rendering: markdown, CSV, JSON and rich tables from a built ``Leaderboard``.

Rendering is a pure function of the board (and the optional command line shown in footers), so the
same records always give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError
from mmbench.leaderboard.build import (
    DOWN,
    EFFICIENCY,
    METRIC_NAMES,
    UP,
    Group,
    Leaderboard,
    Row,
    load_predictions,
)
from mmbench.leaderboard.footer import document_notes as document_notes  # re-exported
from mmbench.leaderboard.footer import footer_lines as footer_lines  # re-exported
from mmbench.tasks import direction_arrow, higher_is_better


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
    if key in ("train_seconds", "encode_seconds"):
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
    heads += [f"{METRIC_NAMES[m]} {direction_arrow(m)}" for m in group.metrics]
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
    best_cells = {
        m: _best_values(rows, [r.mean(m) for r in rows], higher_is_better(m)) for m in group.metrics
    }
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
            mean = row.per_class[c]["mean"]
            text = "–" if mean is None else f"{mean:.3f}"
            cells.append(f"{bold[0]}{text}{bold[1]}" if i in best[c] else text)
        out.append(cells)
    return out


# ---------------------------------------------------------------- renderers
def _pipe_table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    from tabulate import tabulate

    align = ["right" if i in right else "left" for i in range(len(headers))]
    text = tabulate(rows, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)
    return text.splitlines()


def ranking_order(group: Group) -> str:
    """`` (lowest first)`` for a lower-is-better primary metric (MAE); nothing otherwise."""
    return "" if group.higher_is_better else " (lowest first)"


def plot_names(board: Leaderboard, group: Group, output: Path) -> dict[str, str]:
    """File names (beside ``output``) of a group's leaderboard plots."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    if len(board.groups) > 1:
        stem += f".{group.protocol_fingerprint[:8]}.{group.dataset_fingerprint[:8]}"
    names = {"bars": f"{stem}.{group.metric}.png"}
    if group.class_names:  # no per-class heatmap without classes
        names["per_class"] = f"{stem}.per_class_f1.png"
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
                f"{METRIC_NAMES[group.metric]}{ranking_order(group)}. **Bold**: best in the column. "
                f"{UP}/{DOWN}: higher/lower is better. ≈ tied: not significantly different from the best "
                "(see *Ties*)."
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
            names = group.class_names
            if names:  # a regression task has no classes
                out += ["Per-class test F1 (mean over seeds):", ""]
                out += _pipe_table(["fusion", *names], per_class_cells(group), set(range(1, len(names) + 1)))
                out.append("")
                if links and links.get("per_class"):
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


def robustness_markdown(group: Group, links: dict[str, str] | None) -> list[str]:
    """The robustness table (from ``mmbench robustness``) of the rows that have one."""
    rows = [r for r in group.rows if r.robustness]
    if not rows:
        return []
    modalities = list(rows[0].robustness["shapley"])
    drops = all("drops" in r.robustness for r in rows)

    def cell(v: dict[str, float] | None, sign: bool = False) -> str:
        if v is None:
            return "-"
        return f"{v['mean']:+.4f} ± {v['std']:.4f}" if sign else f"{v['mean']:.4f} ± {v['std']:.4f}"

    heads = [
        "fusion",
        "n",
        f"relative robustness {direction_arrow(group.metric)}",
        f"effective robustness {direction_arrow(group.metric)}",
        *[f"φ {m}" for m in modalities],
        *[f"drop w/o {m}" for m in modalities if drops],
    ]
    cells = [
        [
            row.label,
            str(row.robustness["n"]),
            cell(row.robustness["relative"]),
            cell(row.robustness["effective"], True),
            *[cell(row.robustness["shapley"].get(m), True) for m in modalities],
            *[cell(row.robustness["drops"].get(m), True) for m in modalities if drops],
        ]
        for row in rows
    ]
    out = [
        f"Robustness on test ({METRIC_NAMES[group.metric]}; `mmbench robustness`): area under the "
        "metric-vs-noise curve with Gaussian noise of 0-1 × train std on all modalities; effective = that "
        "area minus late fusion's curve scaled to equal clean score; φ = Shapley contribution of each "
        "modality (they sum to the gain over the no-input output)"
        + (
            "; drop w/o m = how much worse the metric gets with only m removed (positive is worse: a "
            "score down, an error such as MAE up)"
            if drops
            else ""
        )
        + ". See docs/robustness.md.",
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
                    "p_raw": row.p_raw,
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
            mean = row.per_class[c]["mean"]
            item[f"f1_{c}"] = "" if mean is None else repr(mean)
        writer.writerow(item)
    return buf.getvalue()


def rich_renderables(board: Leaderboard, command: str | None = None, width: int = 160) -> list[Any]:
    """Rich tables (one per group) with their footers, for a terminal ``width`` columns wide.

    Fusion names are never shortened; efficiency columns fold into a second table when the main
    table would not fit (see ``mmbench.ui.tables.fitted_tables``)."""
    from rich.markup import escape
    from rich.text import Text

    from mmbench.ui.tables import Column, fitted_tables

    out: list[Any] = []
    efficiency = {f"{title} {UP if higher else DOWN}" for _, title, higher in EFFICIENCY}
    for group in board.groups:
        columns = []
        for head in table_headers(group):
            if head in ("rank", "fusion", "n"):
                columns.append(Column(escape(head), "name", "left" if head == "fusion" else "right"))
            elif head in efficiency:
                columns.append(Column(escape(head), "efficiency"))
            else:
                columns.append(
                    Column(escape(head), justify="left" if head in ("vs best", "encoders") else "right")
                )
        out += fitted_tables(
            columns,
            table_cells(group, bold=("[bold]", "[/bold]"), escape=escape),
            width,
            title=escape(f"{group.title} — protocol {group.protocol_fingerprint}"),
        )
        if group.class_names:
            per_class = [Column("fusion", "name", "left")] + [Column(escape(n)) for n in group.class_names]
            out += fitted_tables(
                per_class,
                per_class_cells(group, bold=("[bold]", "[/bold]"), escape=escape),
                width,
                title="per-class test F1 (mean over seeds)",
            )
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
                slim: dict[str, Any] = {"y_true": preds.y_true.tolist(), "y_pred": preds.y_pred.tolist()}
                if preds.clusters is not None:
                    slim["clusters"] = preds.clusters
                atomic_write_text(dest / pred_name, json.dumps(slim, separators=(",", ":")) + "\n")
                record["predictions_file"] = pred_name
            else:
                record.pop("predictions_file", None)
            target = dest / src.name
            atomic_write_text(target, json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
            written.append(target)
    return written
