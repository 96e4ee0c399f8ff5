"""``synthetic`` with ``preset=regression``: sentiment-like regression on sequences of varying length.

A CMU-MOSI-shaped stand-in (a real-valued target in [-3, 3], unaligned text/audio/visual sequences
with their own lengths) whose target needs an interaction between modalities, so a fusion can
beat every unimodal model. Each clip has three hidden values:

* text: the polarity of the words ``p`` ~ U(-1, 1);
* audio: a tone that keeps (``s = +1``, probability 1 - ``flip_rate``) or reverses (``s = -1``,
  sarcasm) what the words say;
* visual: an expression ``v`` ~ U(-1, 1) that adds to the sentiment.

The target is ``clip(2 * s * p + v + noise, -3, 3)`` (noise N(0, ``label_noise``)). Text alone can
only guess the sign from the prior on ``s``, audio alone knows nothing about the magnitude, visual
alone explains a third of the range: a model must combine text and audio multiplicatively and add
visual to reach a low MAE.

Each hidden value is shown at every real step of its modality's sequence (a fixed pattern scaled by
the value, under step noise), so pooling over the real steps recovers it; the padded steps are zero.
Sequence lengths are drawn per modality in ``min_len..seq_len``. Widths follow
:func:`~mmbench.plugins.datasets.synthetic.alignment_streams` (``dim`` scales them). The split is
by session, as the other presets (train Ses01-03, dev Ses04, test Ses05).
"""

from __future__ import annotations

import numpy as np

from mmbench.data import MultimodalData
from mmbench.errors import UsageError
from mmbench.plugins.datasets.synthetic import (
    N_SPEAKERS,
    alignment_streams,
    observe,
    session_split,
    split_streams,
)

REGRESSION_OPTIONS = {"seq_len", "min_len", "dim", "flip_rate", "label_noise"}
TARGET_RANGE = (-3.0, 3.0)
#: Latent widths: the value's pattern, per-step distractors.
PATTERN, DISTRACTOR = 4, 4


def _hidden(n: int, flip_rate: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "text": rng.uniform(-1.0, 1.0, size=n),
        "audio": np.where(rng.random(n) < flip_rate, -1.0, 1.0),
        "visual": rng.uniform(-1.0, 1.0, size=n),
    }


def _check(
    n_samples: int, seq_len: int, min_len: int, dim: int, flip_rate: float, label_noise: float
) -> None:
    if not isinstance(n_samples, int) or n_samples < 200:
        raise UsageError(f"data.n_samples must be an integer of at least 200, got {n_samples!r}")
    if not isinstance(seq_len, int) or not 2 <= seq_len <= 1000:
        raise UsageError(f"data.seq_len must be an integer in [2, 1000], got {seq_len!r}")
    if not isinstance(min_len, int) or not 1 <= min_len <= seq_len:
        raise UsageError(f"data.min_len must be an integer in [1, data.seq_len={seq_len}], got {min_len!r}")
    if not isinstance(dim, int) or dim < 16:
        raise UsageError(f"data.dim must be an integer of at least 16, got {dim!r}")
    for key, value, hi in (("flip_rate", flip_rate, 1.0), ("label_noise", label_noise, 3.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= hi:
            raise UsageError(f"data.{key} must be a number in [0, {hi:g}], got {value!r}")


def generate_regression(
    n_samples: int = 3000,
    generator_seed: int = 20240,
    seq_len: int = 12,
    min_len: int = 4,
    dim: int = 16,
    flip_rate: float = 0.3,
    label_noise: float = 0.1,
    speaker_offset: float = 0.3,
    feature_noise: float = 0.5,
) -> MultimodalData:
    """Generate the regression preset (see the module doc); the same arguments give the same bytes.

    Returns ``MultimodalData`` with ``task="regression"``, float32 labels ``[N]`` in [-3, 3],
    modalities ``text``/``audio``/``visual`` of shape ``[N, seq_len, D]`` and their ``lengths``;
    ``meta["hidden"]`` holds the three hidden values per clip (``[N]`` each).

    Raises:
        UsageError: an option outside its range (the message names ``data.<option>``).
    """
    _check(n_samples, seq_len, min_len, dim, flip_rate, label_noise)
    rng = np.random.default_rng(generator_seed)
    speakers = rng.integers(0, N_SPEAKERS, size=n_samples)
    hidden = _hidden(n_samples, flip_rate, rng)
    target = 2.0 * hidden["audio"] * hidden["text"] + hidden["visual"]
    target = np.clip(target + label_noise * rng.normal(size=n_samples), *TARGET_RANGE)
    steps = np.arange(seq_len)
    modalities: dict[str, dict[str, np.ndarray]] = {}
    lengths: dict[str, np.ndarray] = {}
    for mod, streams in alignment_streams(dim).items():
        length = rng.integers(min_len, seq_len + 1, size=n_samples).astype(np.int64)
        pattern = rng.normal(size=PATTERN)
        value = hidden[mod][:, None, None] * pattern  # [N, 1, PATTERN]
        shown = value + 0.5 * rng.normal(size=(n_samples, seq_len, PATTERN))
        distract = rng.normal(size=(n_samples, seq_len, DISTRACTOR))
        latent = np.concatenate([shown, distract], axis=-1)
        feats = observe(latent, sum(streams.values()), speakers, speaker_offset, feature_noise, rng)
        real = steps[None, :] < length[:, None]
        modalities[mod] = split_streams((feats * real[..., None]).astype(np.float32), streams)
        lengths[mod] = length
    splits, groups = session_split(speakers)
    return MultimodalData(
        name="synthetic",
        modalities=modalities,
        labels=target.astype(np.float32),
        class_names=[],
        splits=splits,
        groups=groups,
        lengths=lengths,
        ids=[f"syn{i:05d}" for i in range(n_samples)],
        task="regression",
        target_range=TARGET_RANGE,
        meta={
            "source": (
                f"synthetic(preset=regression, n_samples={n_samples}, seed={generator_seed}, "
                f"seq_len={seq_len}, min_len={min_len}, dim={dim}, flip_rate={flip_rate}, "
                f"label_noise={label_noise})"
            ),
            "split_scheme": "by session: train Ses01-03, dev Ses04, test Ses05",
            "preset": "regression",
            "hidden": hidden,
        },
    )
