"""Conformance checks of an encoder plugin (``EncoderConformance``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.data import MultimodalData
from mmbench.testing.examples import check_listed, current_registry, example_data


@dataclass
class EncoderCase:
    """What to test: a registered encoder, the modality of :func:`example_data` it encodes, options.

    ``identity_variants``: option changes (merged over ``options``) that change the output and so
    must change the cache key, e.g. ``[{"dim": 64}, {"model": "/other/weights"}]``.
    """

    name: str
    modality: str = "text"
    options: dict[str, Any] = field(default_factory=dict)
    identity_variants: list[dict[str, Any]] = field(default_factory=list)
    distribution: str | None = None
    n_samples: int = 30

    def plugin(self) -> Any:
        return current_registry().create("encoder", self.name)

    def data(self) -> MultimodalData:
        return example_data(self.n_samples)


class EncoderConformance:
    """Checks an encoder plugin against the EncoderPlugin contract.

    Set ``encoder_name``; optionally ``modality`` (``text``: raw strings, ``audio``: float
    features [N, 6] of :func:`example_data`), ``options``, ``identity_variants`` and ``distribution``.
    """

    encoder_name: ClassVar[str] = ""
    modality: ClassVar[str] = "text"
    options: ClassVar[dict[str, Any]] = {}
    identity_variants: ClassVar[list[dict[str, Any]]] = []
    distribution: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    @classmethod  # pytest 10 refuses class-scoped fixtures as instance methods
    def encoder_case(cls) -> EncoderCase:
        if not cls.encoder_name:
            pytest.fail(f"{cls.__name__} must set encoder_name (or override the encoder_case fixture)")
        return EncoderCase(
            cls.encoder_name,
            cls.modality,
            dict(cls.options),
            [dict(v) for v in cls.identity_variants],
            cls.distribution,
        )

    def test_registered(self, encoder_case: EncoderCase) -> None:
        check_listed("encoder", encoder_case.name, encoder_case.distribution)

    def test_identity_is_stable_json(self, encoder_case: EncoderCase) -> None:
        from mmbench.contracts import EncoderPlugin

        plugin = encoder_case.plugin()
        assert isinstance(plugin, EncoderPlugin), "the registered class must derive from EncoderPlugin"
        options = dict(encoder_case.options)
        first = plugin.identity(options)
        assert options == encoder_case.options, "identity() must not change the options it is given"
        assert isinstance(first, dict) and first, "identity() must return a non-empty dict"
        assert json.loads(json.dumps(first, sort_keys=True, default=str)) is not None
        assert encoder_case.plugin().identity(dict(encoder_case.options)) == first, "identity is not stable"

    def test_identity_changes_with_options(self, encoder_case: EncoderCase) -> None:
        """The cache key changes with the data, the modality and every declared identity variant."""
        from mmbench.runner.encoding_cache import cache_key

        plugin = encoder_case.plugin()
        identity = plugin.identity(dict(encoder_case.options))
        base = cache_key(identity, "fp", encoder_case.modality)
        assert cache_key(identity, "other-fp", encoder_case.modality) != base
        assert cache_key(identity, "fp", encoder_case.modality + "_other") != base
        keys = {base: "options"}
        for variant in encoder_case.identity_variants:
            key = cache_key(plugin.identity({**encoder_case.options, **variant}), "fp", encoder_case.modality)
            assert key not in keys, f"options {variant} give the same cache key as {keys[key]}"
            keys[key] = str(variant)

    def test_encode_output(self, encoder_case: EncoderCase) -> None:
        from mmbench.contracts import LENGTHS_KEY

        plugin, data = encoder_case.plugin(), encoder_case.data()
        if plugin.in_model(dict(encoder_case.options)):
            # Trained inside the model: what is computed ahead of training is tokenize()'s integer
            # arrays, one row per sample (the module itself: test_in_model_module).
            tokens = plugin.tokenize(data, encoder_case.modality, dict(encoder_case.options))
            assert isinstance(tokens, dict) and tokens, "tokenize() returned nothing"
            for name, arr in tokens.items():
                arr = np.asarray(arr)
                assert arr.ndim == 2 and arr.shape[0] == data.n, f"tokens {name!r} have shape {arr.shape}"
                assert np.issubdtype(arr.dtype, np.integer), f"tokens {name!r} are {arr.dtype}, not integers"
            return
        out = plugin.encode(data, encoder_case.modality, dict(encoder_case.options))
        assert isinstance(out, dict) and any(k != LENGTHS_KEY for k in out), "encode() returned no stream"
        for key, arr in out.items():
            arr = np.asarray(arr)
            if key == LENGTHS_KEY:
                assert arr.shape == (data.n,) and np.issubdtype(arr.dtype, np.integer)
                continue
            assert arr.dtype == np.float32, f"stream {key!r} is {arr.dtype}, expected float32"
            assert arr.ndim in (2, 3) and arr.shape[0] == data.n, f"stream {key!r} has shape {arr.shape}"
            assert np.isfinite(arr).all(), f"stream {key!r} holds NaN or inf"
            if arr.ndim == 3:
                assert LENGTHS_KEY in out, f"sequence stream {key!r} needs {LENGTHS_KEY!r} lengths"
                lengths = np.asarray(out[LENGTHS_KEY])
                assert lengths.min() >= 1 and lengths.max() <= arr.shape[1]

    def test_encode_deterministic(self, encoder_case: EncoderCase) -> None:
        """The cache serves one output per identity, so the same inputs must give the same output."""
        plugin, data = encoder_case.plugin(), encoder_case.data()
        if plugin.in_model(dict(encoder_case.options)):
            # Trained inside the model: the tokens are computed once per run and must be reproducible.
            first = plugin.tokenize(data, encoder_case.modality, dict(encoder_case.options))
            second = encoder_case.plugin().tokenize(
                encoder_case.data(), encoder_case.modality, dict(encoder_case.options)
            )
            assert first.keys() == second.keys()
            for key in first:
                np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(second[key]))
            return
        first = plugin.encode(data, encoder_case.modality, dict(encoder_case.options))
        second = encoder_case.plugin().encode(
            encoder_case.data(), encoder_case.modality, dict(encoder_case.options)
        )
        assert first.keys() == second.keys()
        for key in first:
            np.testing.assert_allclose(np.asarray(first[key]), np.asarray(second[key]), rtol=1e-5, atol=1e-6)

    def test_in_model_module(self, encoder_case: EncoderCase) -> None:
        plugin, data = encoder_case.plugin(), encoder_case.data()
        options = dict(encoder_case.options)
        in_model = plugin.in_model(options)
        assert isinstance(in_model, bool), f"in_model() returned {type(in_model).__name__}, not a bool"
        if not in_model:
            # Not applicable: a frozen encoder adds no module to the fusion model; its output is
            # encoded once and cached (test_encode_output, test_encode_deterministic).
            return
        tokens = plugin.tokenize(data, encoder_case.modality, options)
        assert tokens, "tokenize() returned nothing"
        for name, arr in tokens.items():
            arr = np.asarray(arr)
            assert arr.ndim == 2 and arr.shape[0] == data.n and np.issubdtype(arr.dtype, np.integer), name
        dim, sequence = plugin.module_output(options)
        module = plugin.build_module(options)
        assert isinstance(module, nn.Module)
        batch = {k: torch.from_numpy(np.asarray(v, dtype=np.int64)[:4]) for k, v in tokens.items()}
        with torch.no_grad():
            out = module(batch)
        if sequence:
            states, mask = out
            assert states.shape[0] == 4 and states.shape[-1] == dim and mask.dtype == torch.bool
        else:
            assert tuple(out.shape) == (4, dim), f"module output {tuple(out.shape)}, expected (4, {dim})"
            assert out.dtype == torch.float32
        assert math.isfinite(float(out[0].sum() if sequence else out.sum()))
