"""``MultimodalData``'s documented constructor and optional fields; the kit's batch-independence
message in words."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import mmbench.data
from mmbench.data import MultimodalData
from mmbench.testing import assert_batch_independent


def test_the_docstring_example_builds_and_validates():
    doc = mmbench.data.MultimodalData.__doc__
    code = re.search(r"::\n\n(.*?)\n\n", doc, flags=re.S).group(1)
    data = eval(code.strip().removesuffix(".validate()"), {"MultimodalData": MultimodalData, "np": np})
    assert data.validate() is data
    assert data.n == 6 and data.raw["text"][0] == "so good"


@pytest.mark.parametrize("field", ["groups", "raw", "lengths", "meta", "in_model"])
def test_optional_mappings_may_be_none(field):
    data = MultimodalData(
        name="x",
        modalities={"a": {"s": np.zeros((6, 3), np.float32)}},
        labels=np.array([0, 1, 2, 0, 1, 2]),
        class_names=["a", "b", "c"],
        splits={"train": np.arange(4), "dev": np.array([4]), "test": np.array([5])},
        **{field: None},
    )
    data.validate()
    assert getattr(data, field) == {} and len(data.fingerprint) > 8


def test_batch_dependence_is_explained_in_words():
    assert_batch_independent(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    with pytest.raises(AssertionError, match="mixes information across the items of a batch") as err:
        assert_batch_independent(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert "largest difference 0.5" in str(err.value) and "Tensor-likes" not in str(err.value)
