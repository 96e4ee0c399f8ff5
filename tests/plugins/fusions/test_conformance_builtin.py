"""Every built-in (and every installed) fusion, dataset and encoder through ``mmbench.testing``.

The lists come from the registry, so a plugin added later is checked without editing this file.
Datasets that need user files (``needs_data``) run on small sample files written to a temporary
folder; a test fails when such a dataset has no sample here, so none is silently left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmbench.errors import UsageError
from mmbench.registry.manager import build_registry
from mmbench.testing import (
    DatasetCase,
    DatasetConformance,
    EncoderCase,
    EncoderConformance,
    FusionCase,
    FusionConformance,
    load_dataset,
)

REGISTRY, _ = build_registry()
FUSIONS = REGISTRY.names("fusion")
DATASETS = REGISTRY.names("dataset")
ENCODERS = REGISTRY.names("encoder")

#: Fusions that ignore modalities by design (the kit checks they really get no gradient).
FUSION_CASES: dict[str, dict[str, Any]] = {"unimodal": {"unused_modalities": ("audio", "visual")}}


def _needs_data(name: str) -> bool:
    return bool(getattr(REGISTRY.get("dataset", name).load(), "needs_data", False))


SELF_CONTAINED = [d for d in DATASETS if not _needs_data(d)]
NEEDS_DATA = [d for d in DATASETS if _needs_data(d)]


def _iemocap_xlsx(tmp: Path) -> Path:
    from tests.plugins.datasets.sheet_fixtures import write_seed_sheet

    return write_seed_sheet(tmp / "iemocap.xlsx", n_rows=320)


def _meld_csvs(tmp: Path) -> Path:
    from tests.plugins.datasets.test_datasets_iemocap_meld import meld_csv_folder

    return meld_csv_folder(tmp / "MELD.Raw")


def _meld_pickle(tmp: Path) -> Path:
    from tests.plugins.datasets.test_datasets_iemocap_meld import meld_pickle

    # 1,153 train dialogues keep MELD's official dev split (no fallback warning); one utterance each.
    return meld_pickle(tmp / "MELD_features_raw.pkl")


def _emorynlp_csvs(tmp: Path) -> Path:
    from tests.plugins.datasets.test_table import emorynlp_folder

    return emorynlp_folder(tmp / "emorynlp")


def _mmsa(name: str, aligned: bool = False, kind: str = "mosi") -> Any:
    """A writer of a small MMSA feature pickle (``mmbench.testing.write_mmsa_pickle``)."""
    from mmbench.testing import write_mmsa_pickle

    return lambda tmp: write_mmsa_pickle(tmp / name, n=(40, 10, 12), aligned=aligned, kind=kind)


#: Small sample files for the datasets that read user files: dataset -> format -> writer(folder).
SAMPLE_FILES: dict[str, dict[str, Any]] = {
    "iemocap": {"xlsx": _iemocap_xlsx},
    "meld": {"csvs": _meld_csvs, "pickle": _meld_pickle},
    "table": {"emorynlp": _emorynlp_csvs},
    "mosi": {"unaligned": _mmsa("unaligned_50.pkl"), "aligned": _mmsa("aligned_50.pkl", aligned=True)},
    "mosei": {"unaligned": _mmsa("unaligned_50.pkl")},
    "sims": {"unaligned": _mmsa("unaligned_39.pkl", kind="sims")},
}
#: ``--set`` options a dataset needs for its sample files (dataset -> overrides).
SAMPLE_OVERRIDES: dict[str, list[str]] = {
    "table": ["data.label_column=Emotion", "data.text_columns=[Utterance]", "data.speaker_column=Speaker"],
}
FILE_CASES = [f"{name}:{fmt}" for name in NEEDS_DATA for fmt in SAMPLE_FILES.get(name, {"missing": None})]


def _tiny_bert(root: Path, seed: int) -> str:
    from tests.plugins.encoders.encoder_fixtures import tiny_bert

    return str(tiny_bert(root / f"bert{seed}", seed=seed))


def _encoder_case(name: str, tmp: Path) -> EncoderCase:
    """Options that keep each built-in encoder fast and offline, and what must change its identity."""
    if name == "precomputed":
        return EncoderCase(name, modality="audio")  # no options: its identity is constant
    if name == "tfidf":
        return EncoderCase(
            name,
            options={"n_components": 8},
            identity_variants=[{"n_components": 4}, {"ngram_range": [1, 1]}],
        )
    if name in ("hf-text", "hf-text-finetune"):
        a, b = _tiny_bert(tmp, 0), _tiny_bert(tmp, 1)
        return EncoderCase(
            name,
            options={"model": a, "max_length": 16},
            identity_variants=[{"model": b}, {"max_length": 24}, {"pooling": "cls"}],
        )
    return EncoderCase(name)  # a plugin installed later: the defaults on raw text


def test_registry_lists_plugins_of_every_kind():
    assert {"concat", "cross_attention", "late", "unimodal"} <= set(FUSIONS)
    assert "synthetic" in SELF_CONTAINED
    assert {"precomputed", "tfidf"} <= set(ENCODERS)


class TestBuiltinFusions(FusionConformance):
    @pytest.fixture(scope="class", params=FUSIONS)
    def fusion_case(self, request: pytest.FixtureRequest) -> FusionCase:
        return FusionCase(request.param, **FUSION_CASES.get(request.param, {}))


class TestBuiltinDatasets(DatasetConformance):
    @pytest.fixture(scope="class", params=SELF_CONTAINED)
    def dataset_case(self, request: pytest.FixtureRequest) -> DatasetCase:
        return DatasetCase(request.param)


class TestBuiltinFileDatasets(DatasetConformance):
    """The datasets that read user files, each on sample files in its formats written to tmp."""

    @pytest.fixture(scope="class", params=FILE_CASES)
    def dataset_case(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> DatasetCase:
        name, fmt = request.param.split(":")
        writer = SAMPLE_FILES.get(name, {}).get(fmt)
        if writer is None:
            pytest.fail(f"dataset {name!r} needs data: add a sample-file writer to SAMPLE_FILES")
        return DatasetCase(name, writer(tmp_path_factory.mktemp(name)), SAMPLE_OVERRIDES.get(name, ()))


class TestBuiltinEncoders(EncoderConformance):
    @pytest.fixture(scope="class", params=ENCODERS)
    def encoder_case(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> EncoderCase:
        return _encoder_case(request.param, tmp_path_factory.mktemp("encoder"))


def test_datasets_needing_data_are_checked_on_sample_files() -> None:
    """Every dataset runs through the kit: built in, or on sample files because it declares needs_data."""
    assert sorted(SELF_CONTAINED + NEEDS_DATA) == sorted(DATASETS)
    assert {"iemocap", "meld"} <= set(NEEDS_DATA)
    assert set(SAMPLE_FILES) <= set(NEEDS_DATA), "a sample file is written for a dataset that needs none"
    for name in NEEDS_DATA:
        plugin = REGISTRY.create("dataset", name)
        assert plugin.needs_data is True
        assert plugin.data_help.strip(), f"{name} needs data but its data_help says nothing about it"
        with pytest.raises(UsageError):
            load_dataset(name, None)


def test_unimodal_exception_is_still_true():
    """The declared exception above is checked by the kit; make sure it stays a real exception."""
    assert REGISTRY.get("fusion", "unimodal").load().default_params["modality"] == "auto"
