"""Every built-in context model through the public conformance kit (padding, causal leak, ...)."""

from __future__ import annotations

import pytest

from mmbench.testing import ContextConformance


class TestBiGRU(ContextConformance):
    context_name = "bigru"
    params = {"hidden": 8, "utterance_dim": 8}


class TestBiLSTMWithSpeakers(ContextConformance):
    context_name = "bigru"
    params = {"hidden": 8, "cell": "lstm", "layers": 2, "speaker_embedding": True}


class TestTransformer(ContextConformance):
    context_name = "transformer"
    params = {"hidden": 8, "heads": 2}


class TestTransformerWithSpeakers(ContextConformance):
    context_name = "transformer"
    params = {"hidden": 8, "heads": 2, "layers": 2, "speaker_embedding": True}


class TestDialogueRNN(ContextConformance):
    context_name = "dialoguernn"
    params = {"hidden": 8}


class TestDialogueRNNWithSpeakers(ContextConformance):
    context_name = "dialoguernn"
    params = {"hidden": 8, "speaker_embedding": True}


def test_none_builds_nothing_and_keeps_utterance_batches() -> None:
    from mmbench.errors import UsageError
    from mmbench.registry import get_registry

    plugin = get_registry().create("context", "none")
    assert plugin.uses_dialogues is False
    with pytest.raises(UsageError):
        plugin.build(8, {})


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("bigru", {"cell": "rnn"}, "context.cell"),
        ("bigru", {"hidden": 0}, "context.hidden"),
        ("transformer", {"hidden": 10, "heads": 4}, "divisible"),
        ("dialoguernn", {"causal": "yes"}, "context.causal"),
        ("dialoguernn", {"dropout": 1.5}, "context.dropout"),
    ],
)
def test_bad_parameters_name_the_option(name: str, params: dict, fragment: str) -> None:
    from mmbench.errors import UsageError
    from mmbench.registry import get_registry

    plugin = get_registry().create("context", name)
    with pytest.raises(UsageError, match=fragment):
        plugin.validate(plugin.resolve_params(params))
