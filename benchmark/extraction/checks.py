"""Checks of an extraction's inputs: clips shared between splits, the dataset the ids belong to,
and what the audio files were (several sample rates, channels that cancel in the mono mix)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import DataError

if TYPE_CHECKING:
    from mmbench.extraction.extract import Utterance


def check_media_not_shared(rows: list[Utterance], manifest: Path) -> None:
    """Two utterances (e.g. ``dia0_utt0`` of train and of dev) must not read the same file."""
    owner: dict[tuple[str, Path], Utterance] = {}
    for utt in rows:
        for kind, media in (("audio", utt.audio), ("video", utt.video)):
            if media is None:
                continue
            other = owner.setdefault((kind, media.resolve()), utt)
            if other is not utt:
                raise DataError(
                    f"rows {other.row} ({other.key}) and {utt.row} ({utt.key}) both read {media}; ids "
                    "restart per split, so keep each split's clips in <dir>/<split>/ or give a path column",
                    path=manifest,
                    row=utt.row,
                )


def guess_dataset(ids: list[str]) -> str | None:
    """The one registered dataset whose ``id_pattern`` every id matches, else ``None``."""
    from mmbench.registry import get_registry

    registry = get_registry()
    found = []
    for name in registry.names("dataset"):
        try:
            pattern = getattr(registry.get("dataset", name).load(), "id_pattern", None)
        except Exception:  # a dataset plugin that fails to import is reported where it is used
            continue
        if pattern and all(re.fullmatch(pattern, i) for i in ids):
            found.append(name)
    return found[0] if len(found) == 1 else None


def media_warnings(utterances: list[Utterance], info: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Clips whose channels cancel in the mono mix, and audio read at several sample rates."""
    out = []
    rates: dict[int, int] = {}
    targets: set[int] = set()
    for utt in utterances:
        seen = info.get(utt.key, {})
        first = next(iter(seen.values()), None)
        if not first:
            continue
        rates[first["sample_rate"]] = rates.get(first["sample_rate"], 0) + 1
        targets.update(i["resampled_to"] or i["sample_rate"] for i in seen.values())
        if first.get("warning"):
            out.append(f"{utt.media('audio') if utt.audio else utt.key} (row {utt.row}): {first['warning']}")
    if len(rates) > 1:
        listed = ", ".join(f"{r} Hz: {n} clip(s)" for r, n in sorted(rates.items()))
        out.append(
            f"the audio clips have different sample rates ({listed}); each was resampled to "
            f"{', '.join(str(t) for t in sorted(targets))} Hz (recorded per clip in manifest.json), "
            "but features of clips recorded at a lower rate lack the higher frequencies"
        )
    return out
