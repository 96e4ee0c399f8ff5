"""tfidf: fitted on the train split only, fixed output width, options checked."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mmbench.errors import UsageError
from mmbench.plugins.encoders.tfidf import TfidfEncoder
from mmbench.registry.manager import build_registry
from mmbench.runner.encoding_cache import encode_dataset
from tests.plugins.encoders.encoder_fixtures import text_data


def with_test_text(data, text: str, row: int = -1):
    texts = list(data.raw["text"])
    texts[int(data.splits["test"][row])] = text
    return replace(data, raw={"text": texts}, _fingerprint=None)


def test_vocabulary_is_fitted_on_train_only():
    data = with_test_text(text_data(30), "zebra zebra quokka")
    enc = TfidfEncoder()
    out = enc.encode(data, "text", {"n_components": 8})["tfidf"]
    vocab = enc.vectorizer_.vocabulary_
    assert "zebra" not in vocab and "quokka" not in vocab and "zebra quokka" not in vocab
    train_words = {w for i in data.splits["train"] for w in data.raw["text"][i].split()}
    assert train_words - {w for w in train_words if len(w) < 2} <= set(vocab)  # default token pattern
    # A test text made only of words train never saw has no features at all.
    assert not out[data.splits["test"][-1]].any()


def test_dev_and_test_text_do_not_change_any_feature_of_train():
    data = text_data(30)
    a = TfidfEncoder().encode(data, "text", {"n_components": 8})["tfidf"]
    changed = with_test_text(data, "great great great terrible day day")
    b = TfidfEncoder().encode(changed, "text", {"n_components": 8})["tfidf"]
    train = data.splits["train"]
    np.testing.assert_array_equal(a[train], b[train])
    assert not np.array_equal(a[data.splits["test"][-1]], b[data.splits["test"][-1]])


def test_width_is_n_components_even_for_a_small_vocabulary():
    data = text_data(30)
    out = TfidfEncoder().encode(data, "text", {"n_components": 500})["tfidf"]
    assert out.shape == (30, 500) and out.dtype == np.float32
    assert out[:, :10].any() and not out[:, 400:].any()  # SVD rank is bounded by 18 train rows
    again = TfidfEncoder().encode(data, "text", {"n_components": 500})["tfidf"]
    np.testing.assert_array_equal(out, again)


def test_default_width_and_registry_name():
    registry, _ = build_registry()
    data = text_data(24)
    encoded, used = encode_dataset(data, {"encoders": {"text": "tfidf"}}, registry)
    assert encoded.input_spec()["text"].dim == 256
    assert used["text"]["identity"]["n_components"] == 256 and used["text"]["cache"] == "miss"
    assert used["text"]["mode"] == "frozen"


def test_options_are_checked():
    enc = TfidfEncoder()
    with pytest.raises(UsageError, match="unknown option"):
        enc.identity({"components": 3})
    with pytest.raises(UsageError, match="ngram_range"):
        enc.identity({"ngram_range": [2, 1]})
    with pytest.raises(UsageError, match="n_components"):
        enc.identity({"n_components": 0})
    with pytest.raises(UsageError, match="raw text"):
        enc.encode(text_data(24), "audio", {})
