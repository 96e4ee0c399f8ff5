"""Small files in the MMSA feature-pickle layout, for tests of the ``mosi``/``mosei``/``sims`` datasets.

:func:`write_mmsa_pickle` writes what MMSA publishes (``aligned_50.pkl``, ``unaligned_50.pkl``,
``unaligned_39.pkl``; layout in :mod:`mmbench.plugins.datasets.mmsa_pickle`), scaled down, with a
sentiment label that depends on the features so a model can learn it::

    from mmbench.testing.mmsa import write_mmsa_pickle

    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=(40, 10, 12), aligned=False)
    # mmbench run --dataset mosi --data <path> --fusion late
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Shapes per kind: text width, audio width, visual width, text steps, audio steps, visual steps.
KINDS = {
    "mosi": {"dt": 16, "da": 5, "dv": 20, "lt": 12, "la": 30, "lv": 20, "range": 3.0},
    "sims": {"dt": 16, "da": 33, "dv": 24, "lt": 10, "la": 25, "lv": 15, "range": 1.0},
}


def mmsa_splits(
    n: Sequence[int] = (40, 10, 12),
    aligned: bool = False,
    kind: str = "mosi",
    seed: int = 0,
    neg_inf: int = 0,
    vocab_size: int = 30522,
) -> dict[str, dict[str, Any]]:
    """The dict an MMSA pickle holds: ``train``/``valid``/``test`` with ``n`` clips each.

    Args:
        n: clips in train, valid and test.
        aligned: every modality on the text's steps, without ``audio_lengths``/``vision_lengths``
            (real steps = the ``text_bert`` mask), as ``aligned_50.pkl``; else each modality its own
            length, as ``unaligned_*.pkl``.
        kind: ``mosi`` (labels in [-3, 3], MOSI's audio/visual widths 5/20) or ``sims`` (labels in
            [-1, 1], per-modality labels ``regression_labels_T/A/V``).
        seed: the generator seed (same arguments, same dict).
        neg_inf: how many audio values of the train split are ``-inf`` (MMSA's files hold some).
        vocab_size: token ids of ``text_bert`` lie in ``[5, min(vocab_size, 2000))`` (101 = [CLS] first;
            ``bert-base-uncased`` has 30,522 ids).

    The label is a clipped sum of one feature per modality's mean over real steps, so each modality
    carries part of it; ``classification_labels`` is its sign (negative 0, neutral 1, positive 2).
    """
    shape = KINDS[kind]
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Any]] = {}
    for split, count in zip(("train", "valid", "test"), n, strict=True):
        lt = shape["lt"]
        la, lv = (lt, lt) if aligned else (shape["la"], shape["lv"])
        text_len = rng.integers(3, lt + 1, size=count)
        audio_len = text_len if aligned else rng.integers(1, la + 1, size=count)
        vision_len = text_len if aligned else rng.integers(1, lv + 1, size=count)
        text = _padded(rng, count, lt, shape["dt"], text_len)
        audio = _padded(rng, count, la, shape["da"], audio_len)
        vision = _padded(rng, count, lv, shape["dv"], vision_len)
        parts = [_mean(x, k)[:, 0] for x, k in ((text, text_len), (audio, audio_len), (vision, vision_len))]
        scale = shape["range"]
        label = np.clip(scale * np.tanh(0.8 * sum(parts)), -scale, scale)
        label = np.round(label * 5) / 5  # annotators' averages: steps of 0.2
        ids = np.arange(lt)[None, :]
        mask = (ids < text_len[:, None]).astype(np.float32)
        token_ids = rng.integers(5, min(vocab_size, 2000), size=(count, lt)) * mask
        token_ids[:, 0] = 101 if vocab_size > 101 else 2  # [CLS]
        text_bert = np.stack([token_ids, mask, np.zeros_like(mask)], axis=1).astype(np.float32)
        split_dict: dict[str, Any] = {
            "id": [f"vid{i % 7}_{split}$_${i}" for i in range(count)],
            "raw_text": [
                " ".join(f"w{int(t)}" for t in row[: int(k)])
                for row, k in zip(token_ids, text_len, strict=True)
            ],
            "text": text.astype(np.float32),
            "text_bert": text_bert,
            "audio": audio.astype(np.float32),
            "vision": vision.astype(np.float32),
            "regression_labels": label.astype(np.float32),
            "classification_labels": (np.sign(label) + 1).astype(np.float32),
            "annotations": ["Positive" if v > 0 else "Negative" if v < 0 else "Neutral" for v in label],
        }
        if not aligned:
            split_dict["audio_lengths"] = audio_len.astype(np.int64)
            split_dict["vision_lengths"] = vision_len.astype(np.int64)
        if kind == "sims":
            for m, part in zip("TAV", parts, strict=True):
                split_dict[f"regression_labels_{m}"] = np.clip(np.tanh(part), -1, 1).astype(np.float32)
        if split == "train" and neg_inf:
            flat = split_dict["audio"].reshape(-1)
            flat[rng.choice(flat.size, size=neg_inf, replace=False)] = -np.inf
        out[split] = split_dict
    return out


def write_mmsa_pickle(
    path: str | Path, n: Sequence[int] = (40, 10, 12), aligned: bool = False, **kwargs: Any
) -> Path:
    """Write :func:`mmsa_splits` (same arguments) to ``path`` with ``pickle.dump``, as MMSA does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(mmsa_splits(n, aligned, **kwargs), fh, protocol=4)
    return path


def _padded(rng: np.random.Generator, n: int, steps: int, dim: int, lengths: np.ndarray) -> np.ndarray:
    x = rng.normal(size=(n, steps, dim))
    return x * (np.arange(steps)[None, :, None] < lengths[:, None, None])


def _mean(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return x.sum(axis=1) / np.maximum(lengths, 1)[:, None]
