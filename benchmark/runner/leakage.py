"""The duplicate guard: the same utterance in two splits is a leak; the same short text is not.

A **leak** is one utterance present in two splits, the trace of over-sampling or augmenting a
dataset before splitting it (a model then scores on memorised rows). Evidence of it:

* **the same utterance id** (``MultimodalData.ids``) in two splits;
* **the same continuous feature vector** in two splits, also after rounding: every numeric
  modality that is not derived from a raw text field (audio, visual, plain feature columns) is
  compared, all of them at once. Rows are standardised with **train** statistics, projected to at
  most :data:`PROJECTION_DIM` dimensions with a fixed Gaussian matrix and compared by cosine
  (blocks of at most :data:`BLOCK_ELEMENTS` similarities); each candidate pair above
  :data:`CANDIDATE_COSINE` is then confirmed feature by feature in the original units: every
  feature within ``RTOL`` (relative) or ``ATOL`` train standard deviations. Copies written with
  fewer significant digits (5, even 3) are caught; two recordings never agree that closely.
  Feature vectors narrower than :data:`MIN_TOLERANT_DIM` only count when bit-identical (a few
  numbers can agree by chance). All-zero rows (missing features) are never evidence.

**Natural repeats** are identical texts in two splits ("Okay.", "Hey!"): frequent in
conversation data and no leak. They are counted and exemplified (:attr:`DuplicateReport.repeats`),
in the run record and in ``mmbench inspect``, never refused. Text-derived numeric features (a
modality that also has raw text, e.g. a pickle's sentence vectors) are treated like the text.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbench.data import SPLITS, MultimodalData

PROJECTION_DIM = 64
CANDIDATE_COSINE = 0.99
CANDIDATES = 3
RTOL = 1e-2
ATOL = 1e-2
MIN_TOLERANT_DIM = 8
BLOCK_ELEMENTS = 4_000_000
EXAMPLES = 5


@dataclass
class DuplicateReport:
    """Leaks (the same utterance in two splits) and natural repeats (the same text in two splits).

    Attributes:
        pairs: ``"train/test"`` -> rows of the second split that copy a row of the first (by id
            or by features); these stop a run unless ``data.allow_duplicates=true``.
        examples: pair -> a few ``(row of first split, row of second)`` data indices.
        within: split -> rows that copy an earlier row of the same split (reported only).
        ids: the data's sample ids, so the evidence names rows as the user's file does.
        by: pair -> ``{"id": n, "features": n}``: which evidence found the copies.
        evidence: the modalities compared as features (empty for text-only data).
        repeats: natural repeats: ``{"across": pair -> rows, "rows": total, "distinct": texts,
            "examples": [[text, {split: count}], ...]}`` (empty dict without raw text).
    """

    pairs: dict[str, int]
    examples: dict[str, list[tuple[int, int]]]
    within: dict[str, int]
    ids: Sequence[str] | None = None
    by: dict[str, dict[str, int]] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    repeats: dict[str, Any] = field(default_factory=dict)

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
                how = self.by.get(key, {})
                kinds = ", ".join(f"{n} by {k}" for k, n in how.items() if n)
                ex = ", ".join(
                    f"{a} {self.row_name(i)} = {b} {self.row_name(j)}" for i, j in self.examples[key][:3]
                )
                parts.append(f"{count} {b} rows duplicate {a} rows ({kinds}; e.g. {ex})")
        return "; ".join(parts)

    def describe_repeats(self) -> str:
        """One line on identical texts across splits (natural repeats), or '' when there are none."""
        if not self.repeats.get("rows"):
            return ""
        ex = ", ".join(f"{t!r} x{sum(c.values())}" for t, c in self.repeats["examples"][:3])
        return (
            f"{self.repeats['rows']} rows of dev/test repeat a text of an earlier split "
            f"({self.repeats['distinct']} distinct texts, e.g. {ex}): natural repeats of short "
            "utterances, not leaks"
        )

    def as_record(self) -> dict[str, Any]:
        """The JSON summary kept in the run record (``duplicates``)."""
        return {
            "across_splits": dict(self.pairs),
            "within_splits": dict(self.within),
            "by": {k: dict(v) for k, v in self.by.items()},
            "evidence": list(self.evidence),
            "examples": {
                k: [[self.row_name(i), self.row_name(j)] for i, j in v[:EXAMPLES]]
                for k, v in self.examples.items()
                if v
            },
            "natural_repeats": self.repeats,
        }


def evidence_modalities(data: MultimodalData) -> list[str]:
    """Numeric modalities that identify a recording: those without a raw text field of the same name."""
    return [m for m in data.modalities if m not in data.raw]


def evidence_matrix(data: MultimodalData, modalities: Sequence[str]) -> np.ndarray:
    """``[N, D]`` float64: the evidence modalities side by side (sequences mean-pooled over time)."""
    blocks = []
    for m in modalities:
        x = data.concatenated(m)
        blocks.append(x.mean(axis=1) if x.ndim == 3 else x)
    if not blocks:
        return np.zeros((data.n, 0))
    return np.concatenate(blocks, axis=1).astype(np.float64)


def row_hashes(data: MultimodalData) -> list[bytes]:
    """One digest per sample over all of its modalities (numeric streams and raw fields)."""
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


def _close(x: np.ndarray, a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """For row pairs ``(a[k], b[k])``: every feature within RTOL relative or ATOL train stds."""
    xa, xb = x[a], x[b]
    tol = RTOL * np.maximum(np.abs(xa), np.abs(xb)) + ATOL * scale
    return (np.abs(xa - xb) <= tol).all(axis=1)


def feature_matches(
    x: np.ndarray, splits: dict[str, np.ndarray], train: np.ndarray
) -> dict[tuple[str, str], dict[int, int]]:
    """``(a, b)`` -> {row of b: matching row of a} for copies of the same feature vector.

    ``a == b`` finds copies inside one split (the matching row comes earlier). ``x`` is ``[N, D]``.
    """
    out: dict[tuple[str, str], dict[int, int]] = {}
    n, d = x.shape
    if d == 0:
        return out
    present = np.abs(x).sum(axis=1) > 0
    mean = x[train].mean(axis=0)
    scale = x[train].std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    if d > PROJECTION_DIM:
        z = z @ np.random.default_rng(0).standard_normal((d, PROJECTION_DIM))
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    unit = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0).astype(np.float32)
    tolerant = d >= MIN_TOLERANT_DIM
    for i, a in enumerate(SPLITS):
        a_idx = np.asarray(splits[a])
        a_idx = a_idx[present[a_idx]]
        ua = np.ascontiguousarray(unit[a_idx])
        for b in SPLITS[i:]:
            b_idx = np.asarray(splits[b])
            b_idx = b_idx[present[b_idx]]
            found: dict[int, int] = {}
            if len(a_idx) and len(b_idx):
                k = min(CANDIDATES, len(a_idx))
                step = max(1, BLOCK_ELEMENTS // len(a_idx))
                for start in range(0, len(b_idx), step):
                    rows = b_idx[start : start + step]
                    sims = unit[rows] @ ua.T
                    if a == b:  # only earlier rows of the same split
                        sims[a_idx[None, :] >= rows[:, None]] = -2.0
                    top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
                    for c in range(k):
                        col = top[:, c] if top is not None else np.full(len(rows), c)
                        ok = sims[np.arange(len(rows)), col] > CANDIDATE_COSINE
                        cand_b, cand_a = rows[ok], a_idx[col[ok]]
                        if tolerant:
                            same = _close(x, cand_a, cand_b, scale)
                        else:
                            same = (x[cand_a] == x[cand_b]).all(axis=1)
                        for rb, ra in zip(cand_b[same].tolist(), cand_a[same].tolist(), strict=True):
                            found.setdefault(rb, ra)
            out[(a, b)] = found
    return out


def text_repeats(data: MultimodalData) -> dict[str, Any]:
    """Identical (whitespace-trimmed) raw texts in two splits: counts and the most repeated examples."""
    if not data.raw:
        return {}
    field_name = "text" if "text" in data.raw else sorted(data.raw)[0]
    texts = [t.strip() for t in data.raw[field_name]]
    per_split = {s: Counter(texts[int(i)] for i in data.splits[s]) for s in SPLITS}
    across: dict[str, int] = {}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            across[f"{a}/{b}"] = sum(c for t, c in per_split[b].items() if t in per_split[a])
    later = {s: set(per_split[s]) for s in SPLITS}
    shared = (later["train"] & (later["dev"] | later["test"])) | (later["dev"] & later["test"])
    rows = sum(c for t, c in per_split["dev"].items() if t in later["train"])
    rows += sum(c for t, c in per_split["test"].items() if t in later["train"] or t in later["dev"])
    ranked = sorted(shared, key=lambda t: (-sum(per_split[s][t] for s in SPLITS), t))
    examples = [[t, {s: per_split[s][t] for s in SPLITS}] for t in ranked[:EXAMPLES]]
    return {
        "field": field_name,
        "across": across,
        "rows": rows,
        "distinct": len(shared),
        "examples": examples,
    }


def find_duplicates(data: MultimodalData) -> DuplicateReport:
    """The leak evidence of ``data`` (ids and features across splits) and its natural text repeats."""
    evidence = evidence_modalities(data)
    matches = feature_matches(evidence_matrix(data, evidence), data.splits, data.splits["train"])
    id_of = [str(u) for u in data.ids] if data.ids is not None else None
    pairs: dict[str, int] = {}
    examples: dict[str, list[tuple[int, int]]] = {}
    by: dict[str, dict[str, int]] = {}
    within: dict[str, int] = {}
    for s in SPLITS:
        within[s] = len(matches.get((s, s), {}))
    for i, a in enumerate(SPLITS):
        first_id = {id_of[int(r)]: int(r) for r in data.splits[a]} if id_of is not None else {}
        for b in SPLITS[i + 1 :]:
            key = f"{a}/{b}"
            by_id = {}
            if id_of is not None:
                by_id = {int(r): first_id[id_of[int(r)]] for r in data.splits[b] if id_of[int(r)] in first_id}
            by_feat = matches.get((a, b), {})
            rows = {**by_feat, **by_id}
            pairs[key] = len(rows)
            examples[key] = sorted((ra, rb) for rb, ra in rows.items())[:EXAMPLES]
            by[key] = {"id": len(by_id), "features": len(by_feat)}
    return DuplicateReport(
        pairs=pairs,
        examples=examples,
        within=within,
        ids=data.ids,
        by=by,
        evidence=evidence,
        repeats=text_repeats(data),
    )
