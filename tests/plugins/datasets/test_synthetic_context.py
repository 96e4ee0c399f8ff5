"""The synthetic `context` preset: conversations whose labels only the dialogue reveals."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.errors import UsageError
from mmbench.plugins.datasets.synthetic import SyntheticDataset, generate, generate_context


@pytest.fixture(scope="module")
def conv():
    return generate_context(n_samples=1500, generator_seed=3)


def test_dialogues_are_ordered_two_party_conversations_inside_one_split(conv):
    conv.validate()
    dialogue = conv.groups["dialogue"]
    split_of = np.empty(conv.n, dtype=object)
    for name, idx in conv.splits.items():
        split_of[idx] = name
    for d in np.unique(dialogue):
        rows = np.flatnonzero(dialogue == d)
        assert np.array_equal(conv.positions[rows], np.arange(len(rows)))
        assert len(set(split_of[rows])) == 1  # split by session = split by dialogue
        assert len(set(conv.groups["speaker"][rows])) <= 2


def test_context_dependent_utterances_repeat_the_previous_label(conv):
    dep = conv.meta["context_dependent"]
    assert 0.2 < dep.mean() < 0.4
    rows = np.flatnonzero(dep)
    assert np.all(conv.positions[rows] > 0)
    assert np.array_equal(conv.labels[rows], conv.labels[rows - 1])
    assert not dep[rows - 1].any()  # the previous utterance shows its own label
    inertia = conv.meta["inertia"]
    assert 0 < inertia.sum() < dep.sum()  # both inertia (same speaker) and contagion occur
    assert np.array_equal(inertia[rows], conv.groups["speaker"][rows] == conv.groups["speaker"][rows - 1])


def test_same_arguments_same_bytes_and_other_presets_untouched(conv):
    again = generate_context(n_samples=1500, generator_seed=3)
    assert again.fingerprint == conv.fingerprint
    via_generate = generate(preset="context", n_samples=1500, generator_seed=3)
    assert via_generate.fingerprint == conv.fingerprint
    loaded = SyntheticDataset().load(None, {"preset": "context", "n_samples": 1500, "generator_seed": 3})
    assert loaded.fingerprint == conv.fingerprint
    mixed = generate(preset="mixed", n_samples=300)
    assert mixed.positions is None and "dialogue" not in mixed.groups  # utterance-level presets


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"context_rate": 1.5}, "context_rate"),
        ({"min_turns": 5, "max_turns": 3}, "min_turns"),
        ({"dim": 4}, "data.dim"),
        ({"seq_len": 4}, "unknown option"),
    ],
)
def test_bad_options_name_the_option(options, fragment):
    with pytest.raises(UsageError, match=fragment):
        SyntheticDataset().load(None, {"preset": "context", "n_samples": 300, **options})
