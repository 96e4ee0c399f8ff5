"""Rich tables for results printed by ``mmbench run``."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def fmt_mean_std(cell: dict[str, float | None]) -> str:
    if cell["mean"] is None:
        return "-"
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def results_table(prep: Any, summary: list[dict[str, Any]], records: list[dict[str, Any]]) -> Table:
    """Per fusion: mean ± std over seeds of test metrics, dev weighted F1 and efficiency."""
    table = Table(
        title=f"{prep.data.name} — protocol {prep.protocol_fingerprint} — "
        f"selection on dev {prep.protocol['metric']}",
        caption=f"records in {prep.request.out_dir}/",
    )
    for col, justify in (
        ("fusion", "left"),
        ("n", "right"),
        ("test acc ↑", "right"),
        ("test wF1 ↑", "right"),
        ("test mF1 ↑", "right"),
        ("dev wF1 ↑", "right"),
        ("params", "right"),
        ("train s", "right"),
    ):
        table.add_column(col, justify=justify)
    for row in summary:
        recs = [r for r in records if r["fusion"] == row["fusion"] and r.get("status") == "ok"]
        params = recs[0]["efficiency"]["params"] if recs else 0
        secs = sum(r["efficiency"]["train_seconds"] for r in recs) / max(len(recs), 1)
        table.add_row(
            row["fusion"],
            str(row["n_seeds"]),
            fmt_mean_std(row["test"]["accuracy"]),
            fmt_mean_std(row["test"]["weighted_f1"]),
            fmt_mean_std(row["test"]["macro_f1"]),
            fmt_mean_std(row["dev"]["weighted_f1"]),
            f"{params:,}",
            f"{secs:.1f}",
        )
    return table
