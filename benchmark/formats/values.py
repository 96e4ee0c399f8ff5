"""Sane feature values: finite and within :data:`VALUE_LIMIT`; train-only standardisation.

A value of 1e30 is a valid float32, but squared in a normalisation layer's running variance it
overflows to infinity and silently removes its modality from the model. Readers refuse values
beyond ``+-VALUE_LIMIT`` naming the file, row and column, as they refuse NaN and infinity.
"""

from __future__ import annotations

import numpy as np

#: Largest accepted absolute feature value (its square, 1e30, stays finite in float32).
VALUE_LIMIT = 1e15


def first_bad(array: np.ndarray) -> tuple[int, int] | None:
    """``(row, column)`` of the first non-finite or out-of-range value of ``[N, D]``, or None."""
    flat = array.reshape(array.shape[0], -1)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat) | (np.abs(flat) > VALUE_LIMIT)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)


def standardize_train_only(
    modalities: dict[str, dict[str, np.ndarray]], train: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Each stream's features z-scored with the **train** rows' mean and std (a constant feature
    keeps std 1); sequences ``[N, T, D]`` use statistics over all train time steps. float32 out."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for mod, streams in modalities.items():
        out[mod] = {}
        for name, x in streams.items():
            rows = x[train].reshape(-1, x.shape[-1]).astype(np.float64)
            mean, std = rows.mean(axis=0), rows.std(axis=0)
            std[std < 1e-12] = 1.0
            out[mod][name] = ((x - mean) / std).astype(np.float32)
    return out
