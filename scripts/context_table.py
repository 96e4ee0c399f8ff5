"""Dev and test weighted F1 per method from `mmbench leaderboard --format json` (stdin), as markdown.

    mmbench leaderboard --runs runs/meld-context --format json | python scripts/context_table.py

Rows are ordered by dev weighted F1 (the selection split); the row marked `selected` is the context
model with the best dev score, compared with `none` on test.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    board = json.load(sys.stdin)
    for group in board["groups"]:
        rows = sorted(group["rows"], key=lambda r: -r["dev"]["weighted_f1"]["mean"])
        with_context = [r for r in rows if " + " in r["fusion"]]
        selected = with_context[0]["label"] if with_context else None
        print(f"{group['title']} (protocol `{group['protocol_fingerprint']}`)\n")
        print("| method | seeds | dev weighted F1 | test weighted F1 | test accuracy | |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            dev, test, acc = r["dev"]["weighted_f1"], r["test"]["weighted_f1"], r["test"]["accuracy"]
            mark = "selected on dev" if r["label"] == selected else ""
            print(
                f"| {r['label']} | {r['n_seeds']} | {100 * dev['mean']:.2f} ± {100 * dev['std']:.2f} | "
                f"{100 * test['mean']:.2f} ± {100 * test['std']:.2f} | "
                f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} | {mark} |"
            )
        print()


if __name__ == "__main__":
    main()
