"""The embedded ``synthetic`` dataset: deterministic, IEMOCAP-shaped, with known structure.

Shapes follow the reference IEMOCAP features: ``text`` 768, ``audio`` = ``V1`` 512 + ``V3`` 25 +
``V4`` 25, ``visual`` 512; 8 imbalanced classes; 10 speakers in 5 sessions of two. The split is
by session, as IEMOCAP's: train sessions 1-3, dev session 4, test session 5, so dev and test
speakers are never seen in training.

Each class index is written as three bits ``b0 b1 b2``. A preset decides which modality carries
which information (every code is drawn from a class-independent uniform distribution unless it
is derived from the label):

* ``redundant``: every modality carries the whole label (noisily).
* ``unique``: text carries ``b0``, audio ``b1``, visual ``b2``; only together do they give the label.
* ``synergy``: text carries two random bits ``t0 t2``, audio ``a0 = b0 xor t0`` and a random
  ``a1``, visual ``v1 = b1 xor a1`` and ``v2 = b2 xor t2``. Each modality alone (and each one's
  marginal) is independent of the label: only an interaction between modalities reveals it.
  Each pair of modalities reveals one of the three bits, so a model missing one modality keeps
  a little above chance (two of eight classes told apart). A pure three-way interaction (a
  parity over all three modalities) was tried and is not learnt by the built-in fusions within
  the protocol's budget, which would make the preset useless for comparing them.
* ``context`` (conversations, :func:`generate_context`): an utterance's label may be the previous
  utterance's (emotion inertia or contagion); only a dialogue context model can learn those.
* ``regression`` (sequences, :mod:`~mmbench.plugins.datasets.synthetic_regression`): a CMU-MOSI-like
  sentiment target in [-3, 3] that needs text x audio (a tone that reverses the words) plus visual.
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
SPLIT_SPEAKERS = {"train": range(0, 6), "dev": range(6, 8), "test": range(8, 10)}
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


def split_streams(feats: np.ndarray, streams: dict[str, int]) -> dict[str, np.ndarray]:
    """Cut a modality's features (last axis) into its named streams."""
    out, start = {}, 0
    for stream, width in streams.items():
        out[stream] = np.ascontiguousarray(feats[..., start : start + width])
        start += width
    return out


def session_split(speakers: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """IEMOCAP's split by session (:data:`SPLIT_SPEAKERS`) and the speaker/session group ids."""
    split_of_speaker = np.empty(N_SPEAKERS, dtype=object)
    for split, spk in SPLIT_SPEAKERS.items():
        split_of_speaker[list(spk)] = split
    sample_split = split_of_speaker[speakers]
    splits = {s: np.flatnonzero(sample_split == s).astype(np.int64) for s in SPLIT_SPEAKERS}
    speaker_ids = np.array([f"Ses{s // 2 + 1:02d}{'FM'[s % 2]}" for s in speakers])
    return splits, {"speaker": speaker_ids, "session": np.array([s[:5] for s in speaker_ids])}


def observe(
    latent: np.ndarray,
    width: int,
    speakers: np.ndarray,
    speaker_offset: float,
    feature_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Latent ``[N, L]`` or ``[N, T, L]`` -> features of ``width``: a random projection, a
    per-speaker offset and isotropic noise (draws in that order: the bytes depend on it)."""
    projection = rng.normal(size=(latent.shape[-1], width)) / np.sqrt(latent.shape[-1])
    offsets = speaker_offset * rng.normal(size=(N_SPEAKERS, width))
    per_sample = offsets[speakers].reshape(len(speakers), *([1] * (latent.ndim - 2)), width)
    feats = latent @ projection + per_sample
    return feats + feature_noise * rng.normal(size=feats.shape)


def generate(
    preset: str = "mixed",
    n_samples: int = 7400,
    generator_seed: int = 20240,
    speaker_offset: float | None = None,
    feature_noise: float | None = None,
) -> MultimodalData:
    """Generate the dataset; the same arguments always give the same bytes.

    ``speaker_offset`` and ``feature_noise`` default to 0.5 and 1.0 for the utterance-level
    presets and to :func:`generate_alignment`'s own defaults for ``alignment``.
    """
    if preset in ("alignment", "context", "regression"):
        extra = {"speaker_offset": speaker_offset, "feature_noise": feature_noise}
        make = _SEQUENCE_PRESETS[preset]()
        return make(n_samples, generator_seed, **{k: v for k, v in extra.items() if v is not None})
    speaker_offset = 0.5 if speaker_offset is None else speaker_offset
    feature_noise = 1.0 if feature_noise is None else feature_noise
    if preset not in PRESETS:
        raise UsageError(
            f"data.preset must be one of {', '.join(PRESETS)}, alignment, context, regression; got {preset!r}"
        )
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
        feats = observe(latent, width, speakers, speaker_offset, feature_noise, rng)
        modalities[mod] = split_streams(feats.astype(np.float32), streams)

    splits, groups = session_split(speakers)
    return MultimodalData(
        name="synthetic",
        modalities=modalities,
        labels=labels,
        class_names=list(CLASS_NAMES),
        splits=splits,
        groups=groups,
        ids=[f"syn{i:05d}" for i in range(n_samples)],
        meta={
            "source": f"synthetic(preset={preset}, n_samples={n_samples}, seed={generator_seed})",
            "split_scheme": "by session: train Ses01-03, dev Ses04, test Ses05",
            "preset": preset,
        },
    )


# ---------------------------------------------------------------- sequence variant: alignment
ALIGN_CLASS_NAMES = ["neu", "sad", "ang", "hap"]
ALIGN_PRIOR = np.array([0.30, 0.25, 0.25, 0.20])
ALIGN_OPTIONS = {"seq_len", "min_len", "dim"}
CONTEXT, EVENT = 6, 4  # latent widths of the shared per-step context and of an event
EVENT_STRENGTH, CONTEXT_NOISE, POSITION_SCALE, CONTEXT_SCALE = 3.0, 0.3, 1.0, 1.0


def alignment_streams(dim: int) -> dict[str, dict[str, int]]:
    """IEMOCAP's stream layout with every width scaled by ``dim / 512`` (``dim=512``: the real widths)."""
    small = max(2, round(25 * dim / 512))
    return {
        "text": {"text": dim * 3 // 2},
        "audio": {"V1": dim, "V3": small, "V4": small},
        "visual": {"V1": dim},
    }


def _event_steps(labels: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The step of each modality's event, chosen so that the label describes their alignment."""
    n = len(labels)
    audio_together, visual_together = labels // 2 == 1, labels % 2 == 1
    text = np.floor(rng.random(n) * lengths).astype(np.int64)
    steps = {"text": text}
    for mod, together in (("audio", audio_together), ("visual", visual_together)):
        other = np.floor(rng.random(n) * (lengths - 1)).astype(np.int64)
        other += other >= text  # any real step but the text event's
        steps[mod] = np.where(together, text, other)
    return steps


def generate_alignment(
    n_samples: int = 7400,
    generator_seed: int = 20240,
    seq_len: int = 12,
    min_len: int | None = None,
    dim: int = 16,
    speaker_offset: float = 0.0,
    feature_noise: float = 0.5,
) -> MultimodalData:
    """Sequence variant (``preset=alignment``): the label is the temporal alignment of events.

    Every sample is a sequence of ``min_len..seq_len`` steps (the same length in all three
    modalities, zero-padded to ``seq_len``; ``lengths`` gives the real steps). Each modality holds
    exactly one *event* at one step; its step is what the label describes:

    * label // 2 == 1: the audio event happens at the text event's step (else at another step);
    * label % 2 == 1: the visual event happens at the text event's step (else at another step).

    Classes: ``neu`` (neither coincides), ``sad`` (visual only), ``ang`` (audio only), ``hap``
    (both). The task is learnable: a small MLP applied to the three modalities' features at each
    step, max-pooled over steps, reaches about 0.94 test accuracy (3,000 samples, ``seq_len=8``,
    ``dim=16``). A fusion must discover which steps of two modalities belong together: ``mult``
    and sequence ``cross_attention`` do (docs/fusions.md), the pooled fusions cannot.

    A step's features mix three latent parts, projected into the modality's width: a context
    shared by all modalities at that step (what happens at that moment, so attention can match
    steps across modalities by content), a weak encoding of the step's position, and the event
    (a fixed per-modality pattern, present at one step only). Per-speaker offsets and isotropic
    noise are added as in the utterance-level presets. Every sample holds one event per modality,
    so a mean over time is the same kind of vector for every class: pooled features carry no
    label information and only models that compare modalities step by step can learn the task.
    """
    if not isinstance(n_samples, int) or n_samples < 200:
        raise UsageError(f"data.n_samples must be an integer of at least 200, got {n_samples!r}")
    if not isinstance(seq_len, int) or not 3 <= seq_len <= 1000:
        raise UsageError(f"data.seq_len must be an integer in [3, 1000], got {seq_len!r}")
    min_len = max(3, seq_len // 2) if min_len is None else min_len
    if not isinstance(min_len, int) or not 2 <= min_len <= seq_len:
        raise UsageError(f"data.min_len must be an integer in [2, data.seq_len={seq_len}], got {min_len!r}")
    if not isinstance(dim, int) or dim < 16:
        raise UsageError(f"data.dim must be an integer of at least 16, got {dim!r}")
    rng = np.random.default_rng(generator_seed)
    labels = rng.choice(len(ALIGN_CLASS_NAMES), size=n_samples, p=ALIGN_PRIOR).astype(np.int64)
    speakers = rng.integers(0, N_SPEAKERS, size=n_samples)
    lengths = rng.integers(min_len, seq_len + 1, size=n_samples).astype(np.int64)
    events = _event_steps(labels, lengths, rng)
    steps = np.arange(seq_len)
    real = steps[None, :] < lengths[:, None]
    angle = np.pi * steps / (seq_len - 1)
    position = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # [T, 2]
    context = rng.normal(size=(n_samples, seq_len, CONTEXT))

    modalities: dict[str, dict[str, np.ndarray]] = {}
    for mod, streams in alignment_streams(dim).items():
        width = sum(streams.values())
        pattern = rng.normal(size=EVENT) * EVENT_STRENGTH
        is_event = (steps[None, :] == events[mod][:, None]).astype(np.float64)
        latent = np.concatenate(
            [
                CONTEXT_SCALE * context + CONTEXT_NOISE * rng.normal(size=context.shape),
                np.broadcast_to(POSITION_SCALE * position, (n_samples, seq_len, 2)),
                is_event[..., None] * pattern,
            ],
            axis=-1,
        )
        feats = observe(latent, width, speakers, speaker_offset, feature_noise, rng)
        modalities[mod] = split_streams((feats * real[..., None]).astype(np.float32), streams)

    splits, groups = session_split(speakers)
    return MultimodalData(
        name="synthetic",
        modalities=modalities,
        labels=labels,
        class_names=list(ALIGN_CLASS_NAMES),
        splits=splits,
        groups=groups,
        lengths={m: lengths.copy() for m in modalities},
        ids=[f"syn{i:05d}" for i in range(n_samples)],
        meta={
            "source": (
                f"synthetic(preset=alignment, n_samples={n_samples}, seed={generator_seed}, "
                f"seq_len={seq_len}, min_len={min_len}, dim={dim})"
            ),
            "split_scheme": "by session: train Ses01-03, dev Ses04, test Ses05",
            "preset": "alignment",
            "event_steps": events,
        },
    )


# ------------------------------------------------------ conversation variant: context
CONTEXT_CLASS_NAMES = ["neu", "sad", "ang", "hap"]
CONTEXT_OPTIONS = {"dim", "context_rate", "min_turns", "max_turns", "switch_rate"}


def _conversation(
    rng: np.random.Generator, turns: int, switch_rate: float, context_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One dialogue's parties (0/1), labels and context flags, utterance by utterance."""
    party = np.zeros(turns, dtype=np.int64)
    labels = np.zeros(turns, dtype=np.int64)
    dependent = np.zeros(turns, dtype=bool)
    for t in range(turns):
        if t:
            party[t] = party[t - 1] ^ int(rng.random() < switch_rate)
        if t and not dependent[t - 1] and rng.random() < context_rate:
            # Emotion inertia (same speaker as before) or contagion (the other party): the label is
            # the previous utterance's, which the utterance itself does not show.
            dependent[t], labels[t] = True, labels[t - 1]
        else:
            labels[t] = rng.integers(len(CONTEXT_CLASS_NAMES))
    return party, labels, dependent


def generate_context(
    n_samples: int = 4000,
    generator_seed: int = 20240,
    dim: int = 16,
    context_rate: float = 0.4,
    min_turns: int = 4,
    max_turns: int = 24,
    switch_rate: float = 0.7,
    speaker_offset: float = 0.5,
    feature_noise: float = 0.5,
) -> MultimodalData:
    """Conversation variant (``preset=context``): a label that only the dialogue reveals.

    Dialogues of ``min_turns..max_turns`` utterances between the two speakers of one session
    (IEMOCAP's layout, so the split by session is a split by dialogue); the speaker changes with
    probability ``switch_rate`` at each turn. 4 balanced classes (``neu``, ``sad``, ``ang``, ``hap``).
    An utterance that follows a self-contained one is *context-dependent* with probability
    ``context_rate``: its label is the previous utterance's label (emotion inertia when the same
    speaker spoke before, contagion when the other party did), and its own features carry a random
    class code instead of its label, plus a cue (in audio) that it is a reaction. Self-contained
    utterances show their label in text (and faintly in visual). So a model that classifies each
    utterance alone stays at chance (0.25) on the context-dependent utterances, and a context model
    that reads the previous utterance can classify them. ``meta["context_dependent"]`` (bool
    ``[N]``) and ``meta["inertia"]`` (bool ``[N]``, same speaker as the previous utterance) mark them.
    """
    if not isinstance(n_samples, int) or n_samples < 200:
        raise UsageError(f"data.n_samples must be an integer of at least 200, got {n_samples!r}")
    if not isinstance(dim, int) or dim < 16:
        raise UsageError(f"data.dim must be an integer of at least 16, got {dim!r}")
    if not isinstance(min_turns, int) or not isinstance(max_turns, int) or not 2 <= min_turns <= max_turns:
        raise UsageError(
            f"data.min_turns/max_turns must be integers with 2 <= min <= max, got {min_turns}, {max_turns}"
        )
    for key, value in (("context_rate", context_rate), ("switch_rate", switch_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise UsageError(f"data.{key} must be a probability in [0, 1], got {value!r}")
    rng = np.random.default_rng(generator_seed)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("speaker", "labels", "dependent", "dialogue", "pos")
    }
    n, d = 0, 0
    while n < n_samples:
        turns = int(min(rng.integers(min_turns, max_turns + 1), n_samples - n))
        session = int(rng.integers(N_SPEAKERS // 2))
        party, labels, dependent = _conversation(rng, turns, switch_rate, context_rate)
        first = int(rng.integers(2))
        parts["speaker"].append(2 * session + (party ^ first))
        parts["labels"].append(labels)
        parts["dependent"].append(dependent)
        parts["dialogue"].append(np.full(turns, d))
        parts["pos"].append(np.arange(turns))
        n, d = n + turns, d + 1
    speakers = np.concatenate(parts["speaker"])
    labels = np.concatenate(parts["labels"]).astype(np.int64)
    dependent = np.concatenate(parts["dependent"])
    dialogue = np.concatenate(parts["dialogue"])
    shown = np.where(dependent, rng.integers(len(CONTEXT_CLASS_NAMES), size=n), labels)
    codes = {
        "text": [(shown, 4, 0.8)],
        "audio": [(dependent.astype(np.int64), 2, 0.5)],
        "visual": [(shown, 4, 3.0)],
    }
    modalities: dict[str, dict[str, np.ndarray]] = {}
    for mod, streams in alignment_streams(dim).items():
        width = sum(streams.values())
        latent = np.concatenate(
            [
                rng.normal(size=(v, LATENT))[c] + noise * rng.normal(size=(n, LATENT))
                for c, v, noise in codes[mod]
            ],
            axis=1,
        )
        feats = observe(latent, width, speakers, speaker_offset, feature_noise, rng)
        modalities[mod] = split_streams(feats.astype(np.float32), streams)
    splits, groups = session_split(speakers)
    groups["dialogue"] = np.array([f"dia{i:04d}" for i in dialogue])
    previous_same = np.zeros(n, dtype=bool)
    previous_same[1:] = (speakers[1:] == speakers[:-1]) & (dialogue[1:] == dialogue[:-1])
    return MultimodalData(
        name="synthetic",
        modalities=modalities,
        labels=labels,
        class_names=list(CONTEXT_CLASS_NAMES),
        splits=splits,
        groups=groups,
        ids=[f"syn{i:05d}" for i in range(n)],
        positions=np.concatenate(parts["pos"]).astype(np.int64),
        meta={
            "source": (
                f"synthetic(preset=context, n_samples={n_samples}, seed={generator_seed}, dim={dim}, "
                f"context_rate={context_rate})"
            ),
            "split_scheme": "by session (whole dialogues): train Ses01-03, dev Ses04, test Ses05",
            "preset": "context",
            "context_dependent": dependent,
            "inertia": dependent & previous_same,
        },
    )


class SyntheticDataset(DatasetPlugin):
    """Embedded default dataset; options come from the protocol's ``data`` section."""

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        allowed = {"preset", "n_samples", "generator_seed", "speaker_offset", "feature_noise"}
        if options.get("preset") == "alignment":
            allowed |= ALIGN_OPTIONS
        if options.get("preset") == "context":
            allowed |= CONTEXT_OPTIONS
        if options.get("preset") == "regression":
            from mmbench.plugins.datasets.synthetic_regression import REGRESSION_OPTIONS

            allowed |= REGRESSION_OPTIONS
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UsageError(
                f"unknown option(s) data.{', data.'.join(unknown)} for dataset synthetic; "
                f"known: {', '.join(sorted(allowed))}"
            )
        if options.get("preset") in _SEQUENCE_PRESETS:
            make = _SEQUENCE_PRESETS[options["preset"]]()
            return make(**{k: v for k, v in options.items() if k != "preset"})
        return generate(**options)


def _regression() -> Any:
    from mmbench.plugins.datasets.synthetic_regression import generate_regression

    return generate_regression


#: Presets with their own generator and options (the regression one lives in its own module).
_SEQUENCE_PRESETS = {
    "alignment": lambda: generate_alignment,
    "context": lambda: generate_context,
    "regression": _regression,
}
