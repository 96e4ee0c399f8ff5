"""MultimodalData.positions: order inside dialogues, validated, fingerprinted only when present."""

import numpy as np
import pytest

from mmbench.data import MultimodalData
from mmbench.errors import DataError


def _data(positions=None, dialogue=("a", "a", "b", "b", "b", "c")) -> MultimodalData:
    n = 6
    return MultimodalData(
        name="toy",
        modalities={"x": {"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}},
        labels=np.array([0, 1, 0, 1, 0, 1]),
        class_names=["a", "b"],
        splits={"train": np.array([0, 1]), "dev": np.array([2, 3, 4]), "test": np.array([5])},
        groups={"dialogue": np.array(dialogue, dtype=object)},
        positions=None if positions is None else np.array(positions),
    )


def test_positions_unique_within_a_dialogue_are_accepted():
    data = _data([0, 1, 0, 1, 2, 0]).validate()
    assert data.positions.dtype == np.int64


def test_two_utterances_at_one_position_are_refused_naming_the_rows():
    with pytest.raises(DataError, match=r"dialogue 'b' has two utterances at position 1 \(rows 3 and 4\)"):
        _data([0, 1, 0, 1, 1, 0]).validate()


def test_positions_need_dialogue_ids_and_one_row_per_utterance():
    data = _data([0, 1, 0, 1, 2, 0])
    data.groups = {}
    with pytest.raises(DataError, match="without dialogue ids"):
        data.validate()
    with pytest.raises(DataError, match="integer array of 6 rows"):
        _data([0, 1, 0]).validate()
    with pytest.raises(DataError, match="non-negative"):
        _data([0, -1, 0, 1, 2, 0]).validate()


def test_fingerprint_unchanged_without_positions_and_sensitive_to_them():
    without = _data().fingerprint
    assert _data().fingerprint == without
    a, b = _data([0, 1, 0, 1, 2, 0]).fingerprint, _data([1, 0, 0, 1, 2, 0]).fingerprint
    assert without not in (a, b) and a != b
