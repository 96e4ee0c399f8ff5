"""Conformance test kit for mmbench plugins (``mmbench.testing``).

A plugin's own tests subclass one class per plugin and name what to test; pytest then runs every
check of the contract (see ``docs/plugins.md``)::

    from mmbench.testing import FusionConformance

    class TestMyFusion(FusionConformance):
        fusion_name = "my-fusion"
        distribution = "my-fusion"   # optional: also check the installed package registers it

The built-in plugins run through the same classes (``tests/test_conformance_builtin.py``). Each
class reads its configuration from a class-scoped fixture (``fusion_case``, ``dataset_case``,
``encoder_case``) built from the class attributes; override the fixture to compute it (a data
file written to a temporary folder, a parametrised list of plugins).

Plugins are looked up in the process-wide registry, exactly as ``mmbench run`` finds them, so
the package must be installed (``pip install -e .``); :func:`plugin_registry` adds in-process
plugin objects for tests that do not install anything.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from mmbench.data import SPLITS, InputSpec, ModalitySpec, MultimodalData, StreamSpec, mask_key
from mmbench.errors import UsageError
from mmbench.robustness.analysis import missing_key

__all__ = [
    "DatasetCase",
    "DatasetConformance",
    "EncoderCase",
    "EncoderConformance",
    "FusionCase",
    "FusionConformance",
    "example_batch",
    "example_data",
    "example_spec",
    "load_dataset",
    "missing_key",
    "plugin_registry",
]

# ----------------------------------------------------------------------------- shared helpers


def example_spec(num_classes: int = 4, sequence: bool = False, steps: int = 5) -> InputSpec:
    """A small three-modality :class:`InputSpec` (text 12, audio 8+3, visual 6), IEMOCAP-like."""
    t = steps if sequence else 1
    return InputSpec(
        modalities=(
            ModalitySpec("text", (StreamSpec("text", 12),), sequence, t),
            ModalitySpec("audio", (StreamSpec("V1", 8), StreamSpec("V3", 3)), sequence, t),
            ModalitySpec("visual", (StreamSpec("V1", 6),), sequence, t),
        ),
        num_classes=num_classes,
    )


def example_batch(spec: InputSpec, batch_size: int = 8, seed: int = 0) -> dict[str, Tensor]:
    """A random batch for ``spec``; sequences get masks whose first sample has only 2 real steps."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for m in spec.modalities:
        if m.sequence:
            out[m.name] = torch.randn(batch_size, m.max_len, m.dim, generator=g)
            mask = torch.ones(batch_size, m.max_len, dtype=torch.bool)
            mask[0, 2:] = False
            out[m.name][0, 2:] = 0.0  # padded steps are zeros, as the runner pads them
            out[mask_key(m.name)] = mask
        else:
            out[m.name] = torch.randn(batch_size, m.dim, generator=g)
    return out


_WORDS = {
    0: ["calm", "fine", "okay", "steady"],
    1: ["great", "happy", "lovely", "glad"],
    2: ["awful", "sad", "gloomy", "angry"],
}
_FILLER = ["the", "day", "was", "really", "quite", "and", "it", "felt", "so", "today", "we"]


def example_data(n: int = 30, seed: int = 0) -> MultimodalData:
    """Tiny labelled data with raw ``text`` and numeric ``audio`` [N, 6], split 60/20/20 in order."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 3).astype(np.int64)
    texts = []
    for i, label in enumerate(labels):
        words = list(rng.choice(_FILLER, size=int(rng.integers(2, 10))))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(_WORDS[int(label)])))
        texts.append(" ".join(words) + f" n{i}")
    audio = rng.normal(size=(n, 6)).astype(np.float32)
    audio[:, 0] += labels
    idx = np.arange(n)
    cut1, cut2 = int(n * 0.6), int(n * 0.8)
    return MultimodalData(
        name="example",
        modalities={"audio": {"A": audio}},
        labels=labels,
        class_names=["neutral", "positive", "negative"],
        splits={"train": idx[:cut1], "dev": idx[cut1:cut2], "test": idx[cut2:]},
        raw={"text": texts},
        meta={"source": "mmbench.testing.example_data"},
    ).validate()


@contextlib.contextmanager
def plugin_registry(*plugins: tuple[str, object]) -> Iterator[Any]:
    """Make the process-wide registry hold the installed plugins plus ``(name, object)`` plugins.

    For tests of plugin objects that are not installed; the previous registry is restored after.
    """
    from mmbench.registry import manager

    previous = manager.registry_state()
    registry, pm = manager.build_registry(plugins)
    manager.set_registry(registry, pm)
    try:
        yield registry
    finally:
        manager.restore_registry(previous)


def _registry() -> Any:
    from mmbench.registry import get_registry

    return get_registry()


def _check_listed(kind: str, name: str, distribution: str | None) -> None:
    registry = _registry()
    assert name in registry.names(kind), (
        f"{kind} {name!r} is not registered; registered {kind}s: {registry.names(kind)}. "
        f"Problems while loading plugins: {registry.problems or 'none'}"
    )
    if distribution is not None:
        info = registry.plugin_of(kind, name)
        assert info is not None and info.distribution is not None, (
            f"{kind} {name!r} comes from no distribution"
        )
        norm = distribution.lower().replace("_", "-")
        assert info.distribution.lower().replace("_", "-") == norm, (
            f"{kind} {name!r} is registered by distribution {info.distribution!r}, expected {distribution!r}"
        )
        assert info.error is None, info.error


# ----------------------------------------------------------------------------------- fusions


@dataclass
class FusionCase:
    """What to test: a registered fusion, its parameter overrides, modalities it ignores by design."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    #: Modalities the fusion is meant to ignore (a unimodal baseline); they must get no gradient.
    unused_modalities: tuple[str, ...] = ()
    distribution: str | None = None
    num_classes: int = 4
    batch_size: int = 8

    def plugin(self) -> Any:
        return _registry().create("fusion", self.name)

    def spec(self, sequence: bool = False) -> InputSpec:
        return example_spec(self.num_classes, sequence=sequence)


def _build(plugin: Any, spec: InputSpec, params: dict[str, Any], seed: int = 0) -> nn.Module:
    plugin.validate(spec, params)
    torch.manual_seed(seed)
    model = plugin.build(spec, params)
    assert isinstance(model, nn.Module), f"build() returned {type(model).__name__}, not an nn.Module"
    return model


def _check_logits(out: Any, batch_size: int, num_classes: int) -> Tensor:
    assert isinstance(out, Tensor), f"forward returned {type(out).__name__}, expected a Tensor of logits"
    assert tuple(out.shape) == (batch_size, num_classes), (
        f"logits have shape {tuple(out.shape)}, expected {(batch_size, num_classes)}"
    )
    assert out.is_floating_point(), f"logits have dtype {out.dtype}"
    assert torch.isfinite(out).all(), "logits hold NaN or inf"
    return out


class FusionConformance:
    """Checks a fusion plugin against the FusionPlugin contract.

    Set ``fusion_name`` (the registered name); optionally ``params`` (overrides of
    ``default_params``), ``unused_modalities`` and ``distribution``.
    """

    fusion_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    unused_modalities: ClassVar[tuple[str, ...]] = ()
    distribution: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    def fusion_case(self) -> FusionCase:
        if not self.fusion_name:
            pytest.fail(f"{type(self).__name__} must set fusion_name (or override the fusion_case fixture)")
        return FusionCase(
            self.fusion_name, dict(self.params), tuple(self.unused_modalities), self.distribution
        )

    def _setup(self, case: FusionCase, sequence: bool = False) -> tuple[Any, InputSpec, dict[str, Any]]:
        plugin = case.plugin()
        return plugin, case.spec(sequence), plugin.resolve_params(case.params)

    def test_registered(self, fusion_case: FusionCase) -> None:
        _check_listed("fusion", fusion_case.name, fusion_case.distribution)

    def test_default_params(self, fusion_case: FusionCase) -> None:
        from mmbench.contracts import FusionPlugin

        plugin = fusion_case.plugin()
        assert isinstance(plugin, FusionPlugin), "the registered class must derive from FusionPlugin"
        assert isinstance(plugin.default_params, dict)
        json.dumps(plugin.default_params)  # recorded in every run record: plain JSON values only
        with pytest.raises(UsageError):
            plugin.resolve_params({"__no_such_parameter__": 1})

    def test_output_shape(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).train()
        _check_logits(
            model(example_batch(spec, fusion_case.batch_size)), fusion_case.batch_size, spec.num_classes
        )

    def test_gradients_reach_every_modality(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).train()
        batch = example_batch(spec, fusion_case.batch_size)
        for m in spec.names:
            batch[m].requires_grad_(True)
        target = torch.arange(fusion_case.batch_size) % spec.num_classes
        logits = _check_logits(model(batch), fusion_case.batch_size, spec.num_classes)
        nn.functional.cross_entropy(logits, target).backward()
        for m in spec.names:
            grad = batch[m].grad
            flows = grad is not None and bool(grad.abs().sum() > 0)
            if m in fusion_case.unused_modalities:
                assert not flows, f"modality {m!r} is declared unused but the loss depends on it"
            else:
                assert flows, f"no gradient reaches modality {m!r}: its branch is disconnected"
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable, "the model has no trainable parameters"

    def test_batch_of_one_in_eval_mode(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            full = _check_logits(model(batch), fusion_case.batch_size, spec.num_classes)
            one = _check_logits(model({k: v[:1] for k, v in batch.items()}), 1, spec.num_classes)
        # In eval mode a sample's logits must not depend on the rest of its batch.
        torch.testing.assert_close(one[0], full[0], rtol=1e-4, atol=1e-5)

    def test_zeroed_modality(self, fusion_case: FusionCase) -> None:
        """A modality replaced by zeros (how robustness analysis removes it) still gives logits."""
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            for m in spec.names:
                zeroed = dict(batch, **{m: torch.zeros_like(batch[m])})
                _check_logits(model(zeroed), fusion_case.batch_size, spec.num_classes)

    def test_missing_modality_flags(self, fusion_case: FusionCase) -> None:
        """Each modality removed as robustness analysis removes it (``mmbench.robustness.analysis.without``).

        The removed modality is zeros; only a fusion that declares ``supports_missing`` also gets
        ``missing:<modality>`` flags, and all-False flags must then leave its output unchanged.
        """
        from mmbench.robustness.analysis import without
        from mmbench.training.tensors import TensorSplit

        plugin, spec, params = self._setup(fusion_case)
        flags = bool(getattr(plugin, "supports_missing", False))
        model = _build(plugin, spec, params).eval()
        b = fusion_case.batch_size
        batch = example_batch(spec, b)
        split = TensorSplit(batch, torch.arange(b) % spec.num_classes)
        with torch.no_grad():
            present = without(split, (), flags).inputs
            sent_flags = sorted(k for k in present if k.startswith("missing:"))
            if flags:
                assert sent_flags == sorted(missing_key(m) for m in spec.names)
                full = _check_logits(model(present), b, spec.num_classes)
                torch.testing.assert_close(
                    full, model(batch), msg="all-False missing flags changed the output"
                )
            else:
                assert not sent_flags, "a fusion without supports_missing must never receive missing flags"
            for m in spec.names:
                absent = without(split, (m,), flags).inputs
                assert torch.count_nonzero(absent[m]) == 0
                if flags:
                    assert bool(absent[missing_key(m)].all())
                _check_logits(model(absent), b, spec.num_classes)

    def test_deterministic_under_seed(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        a, b = _build(plugin, spec, params, seed=3), _build(plugin, spec, params, seed=3)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{key} differs between two builds under the same seed"
        batch = example_batch(spec, fusion_case.batch_size)
        outs = []
        for model in (a.train(), b.train()):
            torch.manual_seed(11)  # dropout draws from the global generator
            outs.append(model(batch))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)

    def test_checkpoint_round_trip(self, fusion_case: FusionCase) -> None:
        """Weights saved as safetensors (as runs save them) load into a fresh build unchanged."""
        from safetensors.torch import load, save

        plugin, spec, params = self._setup(fusion_case)
        trained, fresh = _build(plugin, spec, params, seed=1), _build(plugin, spec, params, seed=2)
        state = {k: v.detach().cpu().contiguous() for k, v in trained.state_dict().items()}
        fresh.load_state_dict(load(save(state)))
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(batch), trained.eval()(batch))

    def test_search_space(self, fusion_case: FusionCase) -> None:
        """Sampled trials give known parameters that build and run; FixedTrial replays them."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        plugin, spec, _ = self._setup(fusion_case)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(2):
            trial = study.ask()
            values = plugin.search_space(trial)
            assert isinstance(values, dict), "search_space must return a dict of parameters"
            unknown = sorted(set(values) - set(plugin.default_params))
            assert not unknown, f"search_space suggests {unknown}, which default_params does not have"
            params = plugin.resolve_params({**fusion_case.params, **values})
            model = _build(plugin, spec, params).train()
            _check_logits(
                model(example_batch(spec, fusion_case.batch_size)), fusion_case.batch_size, spec.num_classes
            )
            replay = plugin.search_space(optuna.trial.FixedTrial(dict(trial.params)))
            assert replay == values, "search_space is not a function of the trial's suggestions"
            study.tell(trial, 0.0)

    def test_sequences_with_masks(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case, sequence=True)
        try:
            plugin.validate(spec, params)
        except UsageError as exc:
            # Not applicable: the fusion refuses sequences up front, which `mmbench run` reports as a
            # usage error (exit 2) before any training; the refusal must say why.
            assert str(exc).strip(), "validate() refused sequence inputs without a message"
            return
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            out = _check_logits(model(batch), fusion_case.batch_size, spec.num_classes)
            noisy = {k: v.clone() for k, v in batch.items()}
            for m in spec.names:
                noisy[m][0, 2:] = 1e3  # sample 0 has 2 real steps: the rest is padding
            torch.testing.assert_close(
                model(noisy), out, rtol=1e-4, atol=1e-4, msg="padded time steps changed the output"
            )


# ----------------------------------------------------------------------------------- datasets


@dataclass
class DatasetCase:
    """What to test: a registered dataset, its ``--data`` path and ``--set`` overrides."""

    name: str
    path: str | Path | None = None
    overrides: Sequence[str] = ()
    distribution: str | None = None

    def plugin(self) -> Any:
        return _registry().create("dataset", self.name)


def load_dataset(name: str, path: str | Path | None = None, overrides: Sequence[str] = ()) -> MultimodalData:
    """Load a registered dataset as ``mmbench run`` does (its protocol's ``data`` options), unvalidated."""
    from mmbench.protocol import load_protocol

    plugin = _registry().create("dataset", name)
    protocol = load_protocol(name, getattr(plugin, "protocol_path", None), None, list(overrides))
    options = dict(protocol["data"])
    options.pop("allow_duplicates", None)
    if protocol.get("classes") is not None:
        options["classes"] = protocol["classes"]
    return plugin.load(Path(path) if path is not None else None, options)


class DatasetConformance:
    """Checks a dataset plugin against the DatasetPlugin contract and ``MultimodalData``'s rules.

    Set ``dataset_name``; optionally ``data_path`` (for datasets that read user files),
    ``overrides`` (``--set`` style, e.g. ``["data.n_samples=600"]``) and ``distribution``.
    """

    dataset_name: ClassVar[str] = ""
    data_path: ClassVar[str | Path | None] = None
    overrides: ClassVar[Sequence[str]] = ()
    distribution: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    def dataset_case(self) -> DatasetCase:
        if not self.dataset_name:
            pytest.fail(f"{type(self).__name__} must set dataset_name (or override the dataset_case fixture)")
        return DatasetCase(self.dataset_name, self.data_path, tuple(self.overrides), self.distribution)

    @pytest.fixture(scope="class")
    def loaded(self, dataset_case: DatasetCase) -> tuple[MultimodalData, MultimodalData]:
        """The dataset loaded twice (fingerprint stability), the first copy validated."""
        plugin = dataset_case.plugin()
        if dataset_case.path is None and getattr(plugin, "needs_data", False):
            pytest.fail(
                f"dataset {dataset_case.name!r} needs user files (needs_data): set data_path to a small "
                "sample file (e.g. one written by a fixture) so the contract can be checked"
            )
        first = load_dataset(dataset_case.name, dataset_case.path, dataset_case.overrides)
        second = load_dataset(dataset_case.name, dataset_case.path, dataset_case.overrides)
        assert isinstance(first, MultimodalData), (
            f"load() returned {type(first).__name__}, not MultimodalData"
        )
        return first.validate(), second

    def test_registered(self, dataset_case: DatasetCase) -> None:
        _check_listed("dataset", dataset_case.name, dataset_case.distribution)

    def test_validate_passes(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        data = loaded[0]
        assert data.validate() is data

    def test_name_is_the_registered_name(self, dataset_case: DatasetCase, loaded: tuple) -> None:
        assert loaded[0].name == dataset_case.name, (
            f"MultimodalData.name is {loaded[0].name!r}; records and leaderboards need {dataset_case.name!r}"
        )

    def test_splits_disjoint_and_covering(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        data = loaded[0]
        seen = np.zeros(data.n, dtype=np.int64)
        for split in SPLITS:
            idx = np.asarray(data.splits[split])
            assert len(idx) > 0, f"the {split} split is empty"
            assert np.issubdtype(idx.dtype, np.integer), f"the {split} split holds {idx.dtype}, not indices"
            np.add.at(seen, idx, 1)
        assert (seen <= 1).all(), f"{int((seen > 1).sum())} rows belong to more than one split"
        assert (seen == 1).all(), f"{int((seen == 0).sum())} rows belong to no split"
        assert set(data.splits) <= set(SPLITS), (
            f"unknown split names {sorted(set(data.splits) - set(SPLITS))}"
        )

    def test_labels_in_range(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        data = loaded[0]
        labels = np.asarray(data.labels)
        assert labels.shape == (data.n,) and np.issubdtype(labels.dtype, np.integer)
        assert labels.min() >= 0 and labels.max() < data.num_classes
        names = data.class_names
        assert all(isinstance(c, str) and c for c in names), "class names must be non-empty strings"
        assert len(set(names)) == len(names), f"duplicate class names: {names}"
        assert data.num_classes >= 2

    def test_features(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        """Streams are float32 with N rows, sequences come with lengths, the spec builds."""
        data = loaded[0]
        for mod, streams in data.modalities.items():
            for stream, arr in streams.items():
                assert arr.dtype == np.float32, f"{mod}/{stream} is {arr.dtype}, expected float32"
                assert arr.shape[0] == data.n
            if next(iter(streams.values())).ndim == 3:
                steps = next(iter(streams.values())).shape[1]
                lengths = data.lengths.get(mod)
                if lengths is not None:
                    assert lengths.shape == (data.n,) and lengths.min() >= 1 and lengths.max() <= steps
        for mod, texts in data.raw.items():
            assert all(isinstance(t, str) for t in texts), f"raw modality {mod!r} must hold strings"
        spec = data.input_spec()
        assert spec.num_classes == data.num_classes
        if data.ids is not None:
            assert len(data.ids) == data.n and len(set(data.ids)) == data.n, "ids must be unique, one per row"

    def test_fingerprint_stable(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        first, second = loaded
        assert first.fingerprint == second.fingerprint, "two loads of the same data differ"
        assert first.compute_fingerprint() == first.fingerprint

    def test_no_rows_shared_across_splits(self, loaded: tuple[MultimodalData, MultimodalData]) -> None:
        """`mmbench run` refuses data whose identical rows sit in two splits (leakage guard)."""
        from mmbench.runner.leakage import find_duplicates

        report = find_duplicates(loaded[0])
        assert not report.total, report.describe()


# ----------------------------------------------------------------------------------- encoders


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
        return _registry().create("encoder", self.name)

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
    def encoder_case(self) -> EncoderCase:
        if not self.encoder_name:
            pytest.fail(f"{type(self).__name__} must set encoder_name (or override the encoder_case fixture)")
        return EncoderCase(
            self.encoder_name,
            self.modality,
            dict(self.options),
            [dict(v) for v in self.identity_variants],
            self.distribution,
        )

    def test_registered(self, encoder_case: EncoderCase) -> None:
        _check_listed("encoder", encoder_case.name, encoder_case.distribution)

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
