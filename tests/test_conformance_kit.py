"""The conformance kit catches broken plugins: each broken plugin here fails exactly its check."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from mmbench.contracts import DatasetPlugin, EncoderPlugin, FusionPlugin
from mmbench.data import InputSpec, MultimodalData, mask_key
from mmbench.registry import Registry, hookimpl
from mmbench.robustness.analysis import missing_key
from mmbench.testing import (
    DatasetCase,
    DatasetConformance,
    EncoderCase,
    EncoderConformance,
    FusionCase,
    FusionConformance,
    example_data,
    plugin_registry,
)


class _Namespace(dict):
    """``name -> (plugin class, expected failures)``; ``Entry.load`` reaches a class as an attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name][0]
        except KeyError:
            raise AttributeError(name) from None


def _failing_checks(kit: Any, checks: list[str], **fixtures: Any) -> set[str]:
    """Run the kit's checks with the given fixture values; the names of those that fail."""
    failed = set()
    for check in checks:
        method = getattr(kit, check)
        wanted = inspect.signature(method).parameters
        try:
            method(**{k: v for k, v in fixtures.items() if k in wanted})
        except AssertionError:
            failed.add(check)
    return failed


# ------------------------------------------------------------------------- broken fusions


def _pool(batch: dict[str, Tensor], m: str) -> Tensor:
    x = batch[m]
    if x.dim() == 3:
        mask = batch[mask_key(m)].unsqueeze(-1).float()
        return (x * mask).sum(1) / mask.sum(1).clamp_min(1)
    return x


class GoodModel(nn.Module):
    def __init__(self, spec: InputSpec, params: dict[str, Any]) -> None:
        super().__init__()
        self.names = spec.names
        self.proj = nn.ModuleDict({m: nn.Linear(spec[m].dim, params["hidden"]) for m in self.names})
        self.head = nn.Linear(params["hidden"], spec.num_classes)
        self.drop = nn.Dropout(0.2)

    def features(self, batch: dict[str, Tensor], m: str) -> Tensor:
        return _pool(batch, m)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        h = sum(torch.relu(self.proj[m](self.features(batch, m))) for m in self.names)
        return self.head(self.drop(h))


class GoodFusion(FusionPlugin):
    default_params = {"hidden": 8}

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {"hidden": trial.suggest_categorical("hidden", [4, 8])}

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return GoodModel(spec, params)


class DropsVisual(GoodModel):
    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(sum(torch.relu(self.proj[m](self.features(batch, m))) for m in ("text", "audio")))


class BatchStatistics(GoodModel):
    def features(self, batch: dict[str, Tensor], m: str) -> Tensor:
        x = _pool(batch, m)
        return x - x.mean(0, keepdim=True)  # depends on the other samples, even in eval mode


class IgnoresMasks(GoodModel):
    def features(self, batch: dict[str, Tensor], m: str) -> Tensor:
        x = batch[m]
        return x.mean(1) if x.dim() == 3 else x


class WrongShape(GoodModel):
    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return super().forward(batch)[:, :-1]


class Unseeded(GoodModel):
    def __init__(self, spec: InputSpec, params: dict[str, Any]) -> None:
        super().__init__(spec, params)
        g = torch.Generator()
        g.seed()  # a fresh random seed: not reproducible under torch.manual_seed
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=g))


class UsesMissingFlags(GoodModel):
    """Drops a modality's branch for samples flagged missing (all-False flags change nothing)."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        h = 0
        for m in self.names:
            keep = ~batch.get(missing_key(m), torch.zeros(batch[m].shape[0], dtype=torch.bool))
            h = h + torch.relu(self.proj[m](self.features(batch, m))) * keep.unsqueeze(-1).float()
        return self.head(self.drop(h))


class FlagsShiftOutput(GoodModel):
    """Reacts to the presence of flags even when they are all False."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return super().forward(batch) + float(any(k.startswith("missing:") for k in batch))


def _fusion(
    model_cls: type[nn.Module], space: dict | None = None, supports_missing: bool = False
) -> type[FusionPlugin]:
    class Fusion(GoodFusion):
        def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
            return model_cls(spec, params)

    Fusion.supports_missing = supports_missing
    if space is not None:
        Fusion.search_space = lambda self, trial: dict(space)  # type: ignore[method-assign]
    return Fusion


BROKEN_FUSIONS = _Namespace(
    {
        "good": (GoodFusion, None),
        "drops_visual": (_fusion(DropsVisual), "test_gradients_reach_every_modality"),
        "batch_stats": (_fusion(BatchStatistics), "test_batch_of_one_in_eval_mode"),
        "ignores_masks": (_fusion(IgnoresMasks), "test_sequences_with_masks"),
        # Wrong logits break every check that runs the model; output_shape is the one that names it.
        "wrong_shape": (_fusion(WrongShape), "test_output_shape+"),
        "unseeded": (_fusion(Unseeded), "test_deterministic_under_seed"),
        "bad_space": (_fusion(GoodModel, {"width": 3}), "test_search_space"),
        "uses_flags": (_fusion(UsesMissingFlags, supports_missing=True), None),
        "flags_shift": (_fusion(FlagsShiftOutput, supports_missing=True), "test_missing_modality_flags"),
    }
)


class _Fusions:
    @hookimpl
    def mmbench_register_fusions(self, registry: Registry) -> None:
        for name in BROKEN_FUSIONS:
            registry.add_fusion(f"kit_{name}", f"{__name__}:BROKEN_FUSIONS.{name}", "kit test")


FUSION_CHECKS = [n for n in dir(FusionConformance) if n.startswith("test_")]


@pytest.fixture(scope="module")
def kit_registry():
    with plugin_registry(
        ("kit-fusions", _Fusions()), ("kit-datasets", _Datasets()), ("kit-encoders", _Encoders())
    ) as reg:
        yield reg


@pytest.mark.parametrize("name", list(BROKEN_FUSIONS))
def test_kit_fails_broken_fusions(kit_registry, name):
    expected = BROKEN_FUSIONS[name][1]
    failed = _failing_checks(FusionConformance(), FUSION_CHECKS, fusion_case=FusionCase(f"kit_{name}"))
    if expected and expected.endswith("+"):
        runs_model = {"test_output_shape", "test_batch_of_one_in_eval_mode", "test_zeroed_modality"}
        assert runs_model <= failed
        assert not failed & {"test_registered", "test_default_params"}
    else:
        assert failed == ({expected} if expected else set())


def test_unused_modality_declaration_must_be_true(kit_registry):
    kit = FusionConformance()
    kit.test_gradients_reach_every_modality(FusionCase("kit_drops_visual", unused_modalities=("visual",)))
    with pytest.raises(AssertionError, match="declared unused"):
        kit.test_gradients_reach_every_modality(FusionCase("kit_good", unused_modalities=("visual",)))


def test_unknown_fusion_is_reported_with_what_exists(kit_registry):
    with pytest.raises(AssertionError, match="kit_good"):
        FusionConformance().test_registered(FusionCase("kit_nope"))


# ------------------------------------------------------------------------ broken datasets


def _good_data(name: str, seed: int = 0) -> MultimodalData:
    data = example_data(30, seed=seed)
    data.name = name
    return data


class GoodDataset(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        return _good_data("kit_good")


class Overlapping(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        data = _good_data("kit_overlapping")
        data.splits["test"] = np.concatenate([data.splits["test"], data.splits["train"][:1]])
        return data


class NotCovering(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        data = _good_data("kit_not_covering")
        data.splits["train"] = data.splits["train"][1:]
        return data


class Unstable(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        data = _good_data("kit_unstable")
        data.modalities["audio"]["A"] = np.random.default_rng().normal(size=(data.n, 6)).astype(np.float32)
        return data


class Float64(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        data = _good_data("kit_float64")
        data.modalities["audio"]["A"] = data.modalities["audio"]["A"].astype(np.float64)
        return data


class WrongName(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        return _good_data("something_else")


class Leaky(DatasetPlugin):
    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        data = _good_data("kit_leaky")
        first_test = data.splits["test"][0]
        data.modalities["audio"]["A"][first_test] = data.modalities["audio"]["A"][0]
        data.raw["text"][first_test] = data.raw["text"][0]
        return data


BROKEN_DATASETS = _Namespace(
    {
        "good": (GoodDataset, set()),
        "overlapping": (Overlapping, {"validate"}),
        "not_covering": (NotCovering, {"test_splits_disjoint_and_covering"}),
        "unstable": (Unstable, {"test_fingerprint_stable"}),
        "float64": (Float64, {"test_features"}),
        "wrong_name": (WrongName, {"test_name_is_the_registered_name"}),
        "leaky": (Leaky, {"test_no_rows_shared_across_splits"}),
    }
)
DATASET_CHECKS = [n for n in dir(DatasetConformance) if n.startswith("test_")]


class _Datasets:
    @hookimpl
    def mmbench_register_datasets(self, registry: Registry) -> None:
        for name in BROKEN_DATASETS:
            registry.add_dataset(f"kit_{name}", f"{__name__}:BROKEN_DATASETS.{name}", "kit test")


@pytest.mark.parametrize("name", list(BROKEN_DATASETS))
def test_kit_fails_broken_datasets(kit_registry, name):
    from mmbench.errors import DataError
    from mmbench.testing import load_dataset

    expected = BROKEN_DATASETS[name][1]
    case = DatasetCase(f"kit_{name}")
    kit = DatasetConformance()
    if expected == {"validate"}:  # the kit validates while loading, as `mmbench run` does
        with pytest.raises(DataError, match="overlaps"):
            load_dataset(case.name).validate()
        return
    loaded = (load_dataset(case.name).validate(), load_dataset(case.name))
    assert _failing_checks(kit, DATASET_CHECKS, dataset_case=case, loaded=loaded) == expected


# ------------------------------------------------------------------------ broken encoders


class GoodEncoder(EncoderPlugin):
    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"name": "kit", "dim": options.get("dim", 4)}

    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        dim = options.get("dim", 4)
        lengths = np.array([len(t) for t in data.raw[modality]], dtype=np.float32)
        return {"hashed": np.stack([lengths * (i + 1) for i in range(dim)], axis=1).astype(np.float32)}


class IdentityIgnoresDim(GoodEncoder):
    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"name": "kit"}


class Float64Encoder(GoodEncoder):
    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        return {k: v.astype(np.float64) for k, v in super().encode(data, modality, options).items()}


class RowsDropped(GoodEncoder):
    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        return {k: v[1:] for k, v in super().encode(data, modality, options).items()}


class Noisy(GoodEncoder):
    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        out = super().encode(data, modality, options)
        return {
            k: v + np.random.default_rng().normal(size=v.shape).astype(np.float32) for k, v in out.items()
        }


BROKEN_ENCODERS = _Namespace(
    {
        "good": (GoodEncoder, set()),
        "identity_ignores_dim": (IdentityIgnoresDim, {"test_identity_changes_with_options"}),
        "float64": (Float64Encoder, {"test_encode_output"}),
        "rows_dropped": (RowsDropped, {"test_encode_output"}),
        "noisy": (Noisy, {"test_encode_deterministic"}),
    }
)
ENCODER_CHECKS = [n for n in dir(EncoderConformance) if n.startswith("test_")]


class _Encoders:
    @hookimpl
    def mmbench_register_encoders(self, registry: Registry) -> None:
        for name in BROKEN_ENCODERS:
            registry.add_encoder(f"kit_{name}", f"{__name__}:BROKEN_ENCODERS.{name}", "kit test")


@pytest.mark.parametrize("name", list(BROKEN_ENCODERS))
def test_kit_fails_broken_encoders(kit_registry, name):
    case = EncoderCase(f"kit_{name}", options={"dim": 4}, identity_variants=[{"dim": 6}])
    failed = _failing_checks(EncoderConformance(), ENCODER_CHECKS, encoder_case=case)
    assert failed == BROKEN_ENCODERS[name][1]
