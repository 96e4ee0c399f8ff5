"""The embedded ``synthetic`` dataset: deterministic, IEMOCAP-shaped, with known structure.

Shapes follow the reference IEMOCAP features: ``text`` 768, ``audio`` = ``V1`` 512 + ``V3`` 25 +
``V4`` 25, ``visual`` 512; 8 imbalanced classes; 10 speakers in 5 sessions. The split is by
speaker (train: speakers 0-6, dev: 7, test: 8-9), so test speakers are never seen in training.

Each class index is written as three bits ``b0 b1 b2``. A preset decides which modality carries
which information (every code is drawn from a class-independent uniform distribution unless it
is derived from the label):

* ``redundant``: every modality carries the whole label (noisily).
* ``unique``: text carries ``b0``, audio ``b1``, visual ``b2``; only together do they give the label.
* ``synergy``: text carries two random bits ``t0 t2``, audio ``a0 = b0 xor t0`` and a random
  ``a1``, visual ``v1 = b1 xor a1`` and ``v2 = b2 xor t2``. Each modality alone (and each one's
  marginal) is independent of the label: only an interaction between modalities reveals it.
* ``mixed`` (default): text carries the label weakly, audio ``b0``, visual ``b1``, and ``b2`` is
  the xor of a text bit and an audio bit; visual also holds a faint copy of the label.

A code becomes features by picking a random prototype for the code value in a small latent
space, adding latent noise (which no projection can remove), projecting into the modality's
width, and adding a per-speaker offset and isotropic noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import UsageError

CLASS_NAMES = ["neu", "fru", "ang", "sad", "exc", "hap", "sur", "fea"]
CLASS_PRIOR = np.array([0.22, 0.20, 0.15, 0.14, 0.12, 0.09, 0.05, 0.03])
PRESETS = ("redundant", "unique", "synergy", "mixed")
STREAMS = {"text": {"text": 768}, "audio": {"V1": 512, "V3": 25, "V4": 25}, "visual": {"V1": 512}}
N_SPEAKERS = 10
SPLIT_SPEAKERS = {"train": range(0, 7), "dev": range(7, 8), "test": range(8, 10)}
LATENT = 16


def _bits(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return labels & 1, (labels >> 1) & 1, (labels >> 2) & 1


def _codes(preset: str, labels: np.ndarray, rng: np.random.Generator) -> dict[str, list[tuple]]:
    """Per modality, a list of (code array, number of code values, latent noise) components."""
    n = len(labels)
    b0, b1, b2 = _bits(labels)

    def coin() -> np.ndarray:
        return rng.integers(0, 2, size=n)

    if preset == "redundant":
        return {m: [(labels, 8, 2.4)] for m in STREAMS}
    if preset == "unique":
        return {"text": [(b0, 2, 1.6)], "audio": [(b1, 2, 1.6)], "visual": [(b2, 2, 1.6)]}
    if preset == "synergy":
        t0, t2, a1 = coin(), coin(), coin()
        a0, v1, v2 = b0 ^ t0, b1 ^ a1, b2 ^ t2
        return {
            "text": [(t0 * 2 + t2, 4, 1.0)],
            "audio": [(a0 * 2 + a1, 4, 1.0)],
            "visual": [(v1 * 2 + v2, 4, 1.0)],
        }
    # mixed
    s_t = coin()
    s_a = b2 ^ s_t
    return {
        "text": [(labels, 8, 3.0), (s_t, 2, 1.2)],
        "audio": [(b0, 2, 1.6), (s_a, 2, 1.2)],
        "visual": [(b1, 2, 1.6), (labels, 8, 4.0)],
    }


def generate(
    preset: str = "mixed",
    n_samples: int = 7400,
    generator_seed: int = 20240,
    speaker_offset: float = 0.5,
    feature_noise: float = 1.0,
) -> MultimodalData:
    """Generate the dataset; the same arguments always give the same bytes."""
    if preset not in PRESETS:
        raise UsageError(f"data.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if not isinstance(n_samples, int) or n_samples < 200:
        raise UsageError(f"data.n_samples must be an integer of at least 200, got {n_samples!r}")
    rng = np.random.default_rng(generator_seed)
    labels = rng.choice(len(CLASS_NAMES), size=n_samples, p=CLASS_PRIOR).astype(np.int64)
    speakers = rng.integers(0, N_SPEAKERS, size=n_samples)
    codes = _codes(preset, labels, rng)

    modalities: dict[str, dict[str, np.ndarray]] = {}
    for mod, streams in STREAMS.items():
        width = sum(streams.values())
        latent = np.zeros((n_samples, LATENT * len(codes[mod])), dtype=np.float64)
        for j, (code, n_values, noise) in enumerate(codes[mod]):
            prototypes = rng.normal(size=(n_values, LATENT))
            block = prototypes[code] + noise * rng.normal(size=(n_samples, LATENT))
            latent[:, j * LATENT : (j + 1) * LATENT] = block
        projection = rng.normal(size=(latent.shape[1], width)) / np.sqrt(latent.shape[1])
        offsets = speaker_offset * rng.normal(size=(N_SPEAKERS, width))
        feats = latent @ projection + offsets[speakers]
        feats += feature_noise * rng.normal(size=feats.shape)
        feats = feats.astype(np.float32)
        out, start = {}, 0
        for stream, dim in streams.items():
            out[stream] = np.ascontiguousarray(feats[:, start : start + dim])
            start += dim
        modalities[mod] = out

    split_of_speaker = np.empty(N_SPEAKERS, dtype=object)
    for split, spk in SPLIT_SPEAKERS.items():
        split_of_speaker[list(spk)] = split
    sample_split = split_of_speaker[speakers]
    splits = {s: np.flatnonzero(sample_split == s).astype(np.int64) for s in SPLIT_SPEAKERS}
    speaker_ids = np.array([f"Ses{s // 2 + 1:02d}{'FM'[s % 2]}" for s in speakers])
    return MultimodalData(
        name="synthetic",
        modalities=modalities,
        labels=labels,
        class_names=list(CLASS_NAMES),
        splits=splits,
        groups={"speaker": speaker_ids, "session": np.array([s[:5] for s in speaker_ids])},
        ids=[f"syn{i:05d}" for i in range(n_samples)],
        meta={
            "source": f"synthetic(preset={preset}, n_samples={n_samples}, seed={generator_seed})",
            "split_scheme": "by speaker: train 0-6, dev 7, test 8-9",
            "preset": preset,
        },
    )


class SyntheticDataset(DatasetPlugin):
    """Embedded default dataset; options come from the protocol's ``data`` section."""

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        allowed = {"preset", "n_samples", "generator_seed", "speaker_offset", "feature_noise"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UsageError(
                f"unknown option(s) data.{', data.'.join(unknown)} for dataset synthetic; "
                f"known: {', '.join(sorted(allowed))}"
            )
        return generate(**options)
