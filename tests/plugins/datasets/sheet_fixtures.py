"""A realistic IEMOCAP spreadsheet in the seed format, for end-to-end tests of the ``iemocap`` dataset.

:func:`write_seed_sheet` writes one row per utterance with the seed columns ``File Name``
(``Ses01F_impro03_M012``), ``Utterance`` (raw text), ``V1`` (512), ``V2``, ``V3``, ``V4`` (25 each;
the audio streams), ``A2`` (512; the visual stream) and ``Emotion`` (the 6 standard classes spelt
as words, or as three-letter codes). Vector cells are list literals with 6 significant digits.

The label is split across the modalities, like the ``unique`` preset of the synthetic dataset:
each class is a 3-bit code ``(t, a, v)``; the words of the utterance carry ``t`` (a cue-word
pool), the audio streams ``a`` and the visual stream ``v`` (class-independent prototypes in a
small latent space, projected to the stream widths). Each bit splits the six classes three
against three, so one modality alone can only name a group of three classes, two modalities
leave pairs undecided, and all three together name the class. On top of that: per-speaker
offsets (and verbal habits), latent and feature noise, a share of utterances whose words point
the wrong way, dialogue-level moods and IEMOCAP's class imbalance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: The 6 standard classes, their spellings in the seed sheets, prior (IEMOCAP's class shares)
#: and the bits ``(t, a, v)`` of the class carried by text, audio and visual.
CLASSES = {
    "hap": ("Happiness", 0.09, (1, 1, 1)),
    "sad": ("Sadness", 0.15, (0, 0, 0)),
    "neu": ("Neutral", 0.23, (1, 0, 0)),
    "ang": ("Anger", 0.15, (0, 1, 1)),
    "exc": ("Excited", 0.14, (1, 1, 0)),
    "fru": ("Frustration", 0.24, (0, 0, 1)),
}
CODES = tuple(CLASSES)
PRIOR = np.array([CLASSES[c][1] for c in CODES]) / sum(CLASSES[c][1] for c in CODES)
BITS = np.array([CLASSES[c][2] for c in CODES], dtype=np.int64)  # [6, 3]
#: Stream widths of the seed sheets (``audio`` = V1 + V2 + V3 + V4, ``visual`` = A2).
AUDIO_STREAMS = {"V1": 512, "V2": 25, "V3": 25, "V4": 25}
VISUAL_STREAMS = {"A2": 512}
#: Per-stream (scale of the per-dimension mean, scale of the values): descriptors differ in range.
STREAM_SCALES = {"V1": (0.05, 0.2), "V2": (3.0, 2.0), "V3": (1.0, 0.5), "V4": (8.0, 4.0), "A2": (0.5, 0.3)}
COLUMNS = ["File Name", "Utterance", "V1", "V2", "V3", "V4", "A2", "Emotion"]
SESSIONS = 5
IMPROS = 8  # Ses0{s}{F|M}_impro0{k}: 8 improvisations, each led once by each actor
LATENT = 16
WORD_FLIP = 0.15  # share of utterances whose cue words point to the other text bit

_CUES_LOW = "never can't unfair stupid why ridiculous tired hate worse leave stop wrong sick alone"
_CUES_HIGH = "great sure okay nice glad fine love wonderful alright thanks good cool yes fun right"
#: Cue words of the text bit: ``CUE_WORDS[t]``.
CUE_WORDS = (tuple(_CUES_LOW.split()), tuple(_CUES_HIGH.split()))
_FILLER = (
    "i you we he she they it that this the a to of and but so just well know mean think "
    "what when where there here now then really maybe about all with for on in at like "
    "do did does don't is was were are be been have has had going gonna want said tell "
    "told me him her them us my your our his their one thing things time day job money "
    "house car phone work guy people talk talking look see come go get got make take "
    "back out up down over again still even only much more some any every kind little "
    "yeah oh um uh hmm huh please listen wait because if or not"
)
FILLER = tuple(_FILLER.split())


def _cell(values: np.ndarray) -> str:
    """A vector as the seed sheets write it: a list literal with 6 significant digits."""
    return "[" + ", ".join(map("{:.6g}".format, values.tolist())) + "]"


def _layout(n_rows: int, rng: np.random.Generator) -> list[tuple[int, str, int]]:
    """``(session, dialogue id, number of utterances)`` for every dialogue, ``n_rows`` in all."""
    dialogues = [
        (s, f"Ses{s:02d}{lead}_impro{k:02d}")
        for s in range(1, SESSIONS + 1)
        for k in range(1, IMPROS + 1)
        for lead in "FM"
    ]
    if n_rows < 4 * len(dialogues):
        raise ValueError(f"n_rows must be at least {4 * len(dialogues)} (4 utterances per dialogue)")
    sizes = 4 + rng.multinomial(n_rows - 4 * len(dialogues), rng.dirichlet(np.full(len(dialogues), 6.0)))
    return [(s, d, int(k)) for (s, d), k in zip(dialogues, sizes, strict=True)]


def _sentence(t_bit: int, habits: list[str], rng: np.random.Generator, flip: bool) -> str:
    """Conversational filler with one or two cue words of the (possibly flipped) text bit."""
    words = list(rng.choice(FILLER, size=int(rng.integers(2, 15))))
    pool = CUE_WORDS[t_bit ^ int(flip)]
    for _ in range(int(rng.integers(1, 3))):
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(pool)))
    if rng.random() < 0.5:  # a speaker's verbal habit
        words.insert(0, str(rng.choice(habits)))
    text = " ".join(words)
    return text[0].upper() + text[1:] + str(rng.choice([".", ".", "?", "!"]))


def _streams(
    bit: np.ndarray,
    speaker: np.ndarray,
    widths: dict[str, int],
    rng: np.random.Generator,
    latent_noise: float,
) -> dict[str, np.ndarray]:
    """Features for one modality: bit prototype + latent noise, projected, speaker offset, noise."""
    n, width = len(bit), sum(widths.values())
    prototypes = rng.normal(size=(2, LATENT))
    latent = prototypes[bit] + latent_noise * rng.normal(size=(n, LATENT))
    feats = latent @ (rng.normal(size=(LATENT, width)) / np.sqrt(LATENT))
    feats += 0.5 * rng.normal(size=(2 * SESSIONS, width))[speaker]
    feats += rng.normal(size=feats.shape)
    out, start = {}, 0
    for name, dim in widths.items():
        mean_scale, value_scale = STREAM_SCALES[name]
        block = feats[:, start : start + dim] * value_scale + mean_scale * rng.normal(size=dim)
        out[name] = block
        start += dim
    return out


def seed_rows(n_rows: int = 1200, seed: int = 0, label_style: str = "words") -> list[list[str]]:
    """The rows (``COLUMNS`` order, cells as strings) of :func:`write_seed_sheet`'s sheet."""
    rng = np.random.default_rng(seed)
    ids, speakers, labels = [], [], []
    for session, dialogue, size in _layout(n_rows, rng):
        mood = rng.dirichlet(8.0 * PRIOR)  # improvisations lean towards some emotions
        counters = {"F": 0, "M": 0}
        gender = dialogue[5]
        for _ in range(size):
            ids.append(f"{dialogue}_{gender}{counters[gender]:03d}")
            counters[gender] += 1
            speakers.append(2 * (session - 1) + "FM".index(gender))
            labels.append(int(rng.choice(len(CODES), p=mood)))
            if rng.random() < 0.8:  # turns mostly alternate
                gender = "M" if gender == "F" else "F"
    labels_arr, speaker_arr = np.array(labels), np.array(speakers)
    bits = BITS[labels_arr]
    audio = _streams(bits[:, 1], speaker_arr, AUDIO_STREAMS, rng, latent_noise=1.0)
    visual = _streams(bits[:, 2], speaker_arr, VISUAL_STREAMS, rng, latent_noise=1.0)
    habits = [list(rng.choice(FILLER, size=3)) for _ in range(2 * SESSIONS)]
    flips = rng.random(n_rows) < WORD_FLIP
    rows = []
    for i in range(n_rows):
        code = CODES[labels_arr[i]]
        rows.append(
            [
                ids[i],
                _sentence(int(bits[i, 0]), habits[speaker_arr[i]], rng, bool(flips[i])),
                *(_cell(audio[c][i]) for c in ("V1", "V2", "V3", "V4")),
                _cell(visual["A2"][i]),
                CLASSES[code][0] if label_style == "words" else code,
            ]
        )
    return rows


def write_seed_sheet(
    path: Path, n_rows: int = 1200, seed: int = 0, fmt: str = "xlsx", label_style: str = "words"
) -> Path:
    """Write a seed-format IEMOCAP sheet (``fmt`` ``xlsx`` through openpyxl write-only, or ``csv``).

    Sessions 1-5 with 16 improvised dialogues each; the same arguments give the same cells.
    ``label_style``: ``words`` (``Happiness``, ``Frustration``...) or ``codes`` (``hap``, ``fru``...).
    """
    if fmt not in ("xlsx", "csv") or label_style not in ("words", "codes"):
        raise ValueError(f"fmt must be xlsx or csv and label_style words or codes: {fmt!r}, {label_style!r}")
    path = Path(path)
    rows = seed_rows(n_rows, seed, label_style)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        return path
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def session5_rows(path: Path) -> int:
    """Number of data rows whose ``File Name`` is a session-5 utterance (IEMOCAP's test split)."""
    if Path(path).suffix == ".csv":
        with Path(path).open(newline="", encoding="utf-8") as fh:
            return sum(row[0].startswith("Ses05") for row in csv.reader(fh) if row and row[0] != COLUMNS[0])
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        ids = (row[0] for row in book.active.iter_rows(min_row=2, max_col=1, values_only=True))
        return sum(str(i).startswith("Ses05") for i in ids)
    finally:
        book.close()
