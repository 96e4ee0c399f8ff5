"""Emotion labels shared by the ``iemocap`` and ``meld`` datasets: spellings, class sets, drops.

Every spelling a file may use (``Happiness``, ``happy``, ``hap``, ``Joy``, ``HAPPY ``...) is mapped
to one *concept* keyed by IEMOCAP's three-letter code (``neu hap sad ang exc fru sur fea dis oth
xxx``). A :class:`ClassSet` then says which concepts a protocol uses and how they are named:
IEMOCAP keeps the codes, MELD uses its own words (``joy`` for ``hap``...).

Rules (see ``docs/datasets.md``):

* an empty or unknown label is an error naming file, row and column and listing the accepted
  spellings -- a typo must never become a silently dropped row;
* a known label outside the chosen class set (``xxx``, ``oth``, or ``sur``/``fea`` in IEMOCAP's
  6-class set) is dropped *explicitly*: the plugin removes those rows and reports the count per
  label in ``meta["dropped_labels"]`` and in a warning.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbench.errors import DataError, UsageError

#: concept code -> accepted spellings (compared after lower-casing and removing non-letters).
SPELLINGS: dict[str, tuple[str, ...]] = {
    "neu": ("neu", "neutral", "neutrality", "neutralstate"),
    "hap": ("hap", "happy", "happiness", "joy", "joyful", "happ"),
    "sad": ("sad", "sadness"),
    "ang": ("ang", "anger", "angry"),
    "exc": ("exc", "excited", "excitement"),
    "fru": ("fru", "frustration", "frustrated"),
    "sur": ("sur", "surprise", "surprised"),
    "fea": ("fea", "fear", "fearful", "afraid"),
    "dis": ("dis", "disgust", "disgusted"),
    "oth": ("oth", "other", "others"),
    "xxx": ("xxx", "noagreement", "undecided"),
}
_LOOKUP = {spelling: code for code, names in SPELLINGS.items() for spelling in names}
_CLEAN = re.compile(r"[^a-z]")


class DatasetWarning(UserWarning):
    """Something a dataset plugin did to the data that the user must know about (drops, fallbacks)."""


def warn(message: str) -> None:
    """Emit a :class:`DatasetWarning` (shown once per message on stderr by Python)."""
    warnings.warn(message, DatasetWarning, stacklevel=3)


def canonical_label(value: Any) -> str | None:
    """The concept code of a label spelling (``'Happiness'`` -> ``'hap'``), or None if unknown."""
    if value is None:
        return None
    key = _CLEAN.sub("", str(value).strip().lower())
    return _LOOKUP.get(key)


def accepted_spellings(codes: Sequence[str] | None = None) -> str:
    """Human-readable list of accepted spellings per concept (for error messages)."""
    codes = list(codes) if codes is not None else list(SPELLINGS)
    return "; ".join(f"{c}: {'/'.join(SPELLINGS[c])}" for c in codes)


@dataclass(frozen=True)
class ClassSet:
    """The classes a protocol uses: concept codes, their display names (label order), a name."""

    name: str
    codes: tuple[str, ...]
    names: tuple[str, ...]
    #: Every concept the dataset's files may legitimately hold (outside ``codes`` = dropped).
    vocabulary: tuple[str, ...]

    def index(self) -> dict[str, int]:
        """Concept code -> label index; a merged class (``hap+exc``) maps each member to its index."""
        return {m: i for i, c in enumerate(self.codes) for m in c.split("+")}

    def concepts(self) -> list[str]:
        """Every concept code the classes use (members of merged classes included)."""
        return list(self.index())


IEMOCAP_VOCABULARY = ("hap", "sad", "neu", "ang", "exc", "fru", "sur", "fea", "dis", "oth", "xxx")
IEMOCAP_6 = ClassSet(
    "iemocap-6",
    ("hap", "sad", "neu", "ang", "exc", "fru"),
    ("hap", "sad", "neu", "ang", "exc", "fru"),
    IEMOCAP_VOCABULARY,
)
#: The reference system's 8 classes: the standard 6 plus the next two by frequency (sur, fea).
IEMOCAP_8 = ClassSet(
    "iemocap-8",
    ("hap", "sad", "neu", "ang", "exc", "fru", "sur", "fea"),
    ("hap", "sad", "neu", "ang", "exc", "fru", "sur", "fea"),
    IEMOCAP_VOCABULARY,
)
#: IEMOCAP-4 as speech emotion work uses it: happy and excited merged, then sad, neutral, angry.
IEMOCAP_4 = ClassSet(
    "iemocap-4",
    ("hap+exc", "sad", "neu", "ang"),
    ("hap+exc", "sad", "neu", "ang"),
    IEMOCAP_VOCABULARY,
)
MELD_NAMES = {
    "neu": "neutral",
    "hap": "joy",
    "sur": "surprise",
    "ang": "anger",
    "sad": "sadness",
    "dis": "disgust",
    "fea": "fear",
}
MELD_7 = ClassSet(
    "meld-7",
    tuple(MELD_NAMES),
    tuple(MELD_NAMES.values()),
    (*MELD_NAMES, "exc", "fru", "oth", "xxx"),
)


def resolve_class_set(dataset: str, option: Any) -> ClassSet:
    """The class set for ``classes`` (protocol ``classes`` or ``data.classes``): 6, 8, 7 or a list."""
    if dataset == "iemocap":
        presets = {4: IEMOCAP_4, 6: IEMOCAP_6, 8: IEMOCAP_8}
        default = IEMOCAP_6
    else:
        presets = {7: MELD_7}
        default = MELD_7
    if option is None:
        return default
    if isinstance(option, str) and option.strip().isdigit():
        option = int(option.strip())
    if isinstance(option, str) and option.strip().lower() in {p.name for p in presets.values()}:
        return next(p for p in presets.values() if p.name == option.strip().lower())
    if isinstance(option, int) and not isinstance(option, bool):
        if option not in presets:
            raise UsageError(
                f"classes={option} is not a class set of {dataset}; use "
                f"{' or '.join(str(k) for k in presets)} or a list of labels"
            )
        return presets[option]
    if isinstance(option, str):
        option = [p for p in option.split(",") if p.strip()]
    if isinstance(option, (list, tuple)) and option:
        codes, seen = [], set()
        for item in option:
            members = []
            for part in str(item).split("+"):  # "hap+exc": one class made of several labels
                code = canonical_label(part)
                if code is None or code not in default.vocabulary:
                    raise UsageError(
                        f"classes: {part.strip()!r} is not a {dataset} label; accepted: "
                        f"{accepted_spellings(default.vocabulary)}; merge labels with +, e.g. hap+exc"
                    )
                if code in seen:
                    raise UsageError(f"classes: {part.strip()!r} is listed twice")
                seen.add(code)
                members.append(code)
            codes.append("+".join(members))
        if len(codes) < 2:
            raise UsageError("classes: a class set needs at least two labels")
        names = tuple(
            "+".join(MELD_NAMES.get(m, m) for m in c.split("+")) if dataset == "meld" else c for c in codes
        )
        return ClassSet(f"{dataset}-custom", tuple(codes), names, default.vocabulary)
    raise UsageError(f"classes must be a number or a list of labels, got {option!r}")


def encode_labels(
    values: Sequence[Any],
    class_set: ClassSet,
    *,
    path: object,
    rows: Sequence[int] | np.ndarray,
    column: str = "Emotion",
) -> tuple[np.ndarray, dict[str, int]]:
    """Label indices (``-1`` for rows to drop) and the dropped count per concept code.

    Raises ``DataError`` naming file, row and column for an empty or unknown label.
    """
    index = class_set.index()
    out = np.full(len(values), -1, dtype=np.int64)
    dropped: Counter[str] = Counter()
    for i, value in enumerate(values):
        text = "" if value is None else str(value).strip()
        if not text or text.lower() == "nan":
            raise DataError(
                f"empty label; accepted spellings: {accepted_spellings(class_set.vocabulary)}",
                path=path,
                row=int(rows[i]),
                column=column,
            )
        code = canonical_label(text)
        if code is None or code not in class_set.vocabulary:
            raise DataError(
                f"unknown label {text!r}; accepted spellings: {accepted_spellings(class_set.vocabulary)}",
                path=path,
                row=int(rows[i]),
                column=column,
            )
        if code in index:
            out[i] = index[code]
        else:
            dropped[code] += 1
    return out, dict(sorted(dropped.items()))


def describe_drops(dropped: dict[str, int], class_set: ClassSet, source: object) -> str | None:
    """A warning line for rows dropped because their label is outside the class set (None if none)."""
    if not dropped:
        return None
    parts = ", ".join(f"{n} {code}" for code, n in dropped.items())
    return (
        f"{source}: dropped {sum(dropped.values())} rows whose label is outside the {class_set.name} "
        f"class set ({parts}); classes used: {', '.join(class_set.names)}"
    )
