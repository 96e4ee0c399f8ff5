"""The duplicate guard: identical feature rows in two splits are the trace of a leak.

Over-sampling a dataset before splitting it puts copies of one utterance into train and test;
a model then scores on memorised rows. Rows are compared on all modalities at once (every
numeric stream and raw field), so two different utterances that merely share a text are not
flagged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.data import SPLITS, MultimodalData


@dataclass
class DuplicateReport:
    """Rows whose full content appears in more than one split."""

    pairs: dict[str, int]  # "train/test" -> number of rows of the second split copied
    examples: dict[str, list[tuple[int, int]]]  # a few (row of first split, row of second); data indices
    within: dict[str, int]  # split -> duplicate rows inside that split
    #: The data's sample ids (``MultimodalData.ids``), so the evidence names rows as the user's file does.
    ids: Sequence[str] | None = None

    @property
    def total(self) -> int:
        return sum(self.pairs.values())

    def row_name(self, i: int) -> str:
        """A row of the evidence: its sample id when the data has ids, else ``row <index>`` in the data."""
        return str(self.ids[i]) if self.ids is not None else f"row {i}"

    def describe(self) -> str:
        """One line per split pair with copies, naming a few copied rows (by id when there are ids)."""
        parts = []
        for key, count in self.pairs.items():
            if count:
                a, b = key.split("/")
                ex = ", ".join(
                    f"{a} {self.row_name(i)} = {b} {self.row_name(j)}" for i, j in self.examples[key][:3]
                )
                parts.append(f"{count} {b} rows duplicate {a} rows (e.g. {ex})")
        return "; ".join(parts)


def row_hashes(data: MultimodalData) -> list[bytes]:
    """One digest per sample over all of its modalities."""
    blocks = [np.ascontiguousarray(data.concatenated(m).reshape(data.n, -1)) for m in data.modalities]
    raw = [data.raw[m] for m in sorted(data.raw)]
    out = []
    for i in range(data.n):
        h = hashlib.blake2b(digest_size=16)
        for b in blocks:
            h.update(b[i].tobytes())
        for texts in raw:
            h.update(texts[i].encode("utf-8", "replace"))
        out.append(h.digest())
    return out


def find_duplicates(data: MultimodalData) -> DuplicateReport:
    hashes = row_hashes(data)
    first_seen: dict[str, dict[bytes, int]] = {}
    within: dict[str, int] = {}
    for split in SPLITS:
        seen: dict[bytes, int] = {}
        dup = 0
        for i in data.splits[split]:
            h = hashes[int(i)]
            if h in seen:
                dup += 1
            else:
                seen[h] = int(i)
        first_seen[split], within[split] = seen, dup
    pairs: dict[str, int] = {}
    examples: dict[str, list[tuple[int, int]]] = {}
    for a_pos, a in enumerate(SPLITS):
        for b in SPLITS[a_pos + 1 :]:
            key = f"{a}/{b}"
            hits = [
                (first_seen[a][h], int(i)) for i in data.splits[b] if (h := hashes[int(i)]) in first_seen[a]
            ]
            pairs[key], examples[key] = len(hits), hits[:5]
    return DuplicateReport(pairs=pairs, examples=examples, within=within, ids=data.ids)
