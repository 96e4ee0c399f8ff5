"""Conformance checks of a dataset plugin (``DatasetConformance``) and ``load_dataset``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from mmbench.data import SPLITS, MultimodalData
from mmbench.testing.examples import check_listed, current_registry


@dataclass
class DatasetCase:
    """What to test: a registered dataset, its ``--data`` path and ``--set`` overrides.

    Args:
        name: the dataset's registered name (``mmbench list datasets``).
        path: what ``--data`` would be (a file or folder), or None for datasets that need no files.
        overrides: ``--set`` style protocol overrides, e.g. ``("data.n_samples=300",)``.
        distribution: the pip distribution expected to register it (checked by ``test_registered``),
            or None to skip that check.

    Example: ``DatasetCase("meld", path="data/meld", overrides=("data.classes=sentiment",))``; in a
    ``DatasetConformance`` subclass, set the class attributes of the same names instead.
    """

    name: str
    path: str | Path | None = None
    overrides: Sequence[str] = ()
    distribution: str | None = None

    def plugin(self) -> Any:
        return current_registry().create("dataset", self.name)


def load_dataset(name: str, path: str | Path | None = None, overrides: Sequence[str] = ()) -> MultimodalData:
    """Load a registered dataset as ``mmbench run`` does (its protocol's ``data`` options), unvalidated."""
    from mmbench.protocol import load_protocol

    plugin = current_registry().create("dataset", name)
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
    @classmethod  # pytest 10 refuses class-scoped fixtures as instance methods
    def dataset_case(cls) -> DatasetCase:
        if not cls.dataset_name:
            pytest.fail(f"{cls.__name__} must set dataset_name (or override the dataset_case fixture)")
        return DatasetCase(cls.dataset_name, cls.data_path, tuple(cls.overrides), cls.distribution)

    @pytest.fixture(scope="class")
    @classmethod  # pytest 10 refuses class-scoped fixtures as instance methods
    def loaded(cls, dataset_case: DatasetCase) -> tuple[MultimodalData, MultimodalData]:
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
        check_listed("dataset", dataset_case.name, dataset_case.distribution)

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
        if data.task == "regression":  # a real-valued target inside its declared range
            assert labels.shape == (data.n,) and np.issubdtype(labels.dtype, np.floating)
            assert np.isfinite(labels).all() and data.class_names == []
            if data.target_range is not None:
                low, high = data.target_range
                assert low <= labels.min() and labels.max() <= high, f"labels outside {data.target_range}"
            return
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
        assert spec.num_outputs == data.num_outputs
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


# ----------------------------------------------------------------------------------- packaging
def check_package_data_in_wheel(
    project_dir: str | Path, out_dir: str | Path, suffix: str = ".yaml"
) -> list[str]:
    """Build the plugin project's wheel and fail, naming the fix, when a ``*.yaml`` file (a default
    protocol) under ``src/`` is not inside it; return the wheel's file names.

    The wheel is built by ``pip wheel --no-deps --no-build-isolation`` (nothing downloaded; needs
    setuptools >= 70.1 in the environment). Without package data a protocol works from an editable
    install and goes missing from every real one (``pip install mmbench-...``)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    project_dir, out_dir = Path(project_dir), Path(out_dir)
    # Built from a clean copy: a build/ or *.egg-info left by an earlier build would hide the problem
    # (and the project stays as it was).
    source = out_dir / "source"
    shutil.copytree(
        project_dir, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", ".*", "__pycache__")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out_dir),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    wheels = sorted(out_dir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"cannot build a wheel of {project_dir} here (setuptools >= 70.1?): {proc.stderr[-500:]}")
    names = zipfile.ZipFile(wheels[-1]).namelist()
    src = project_dir / "src"
    for data_file in sorted(src.rglob(f"*{suffix}")):
        rel = data_file.relative_to(src).as_posix()
        package = data_file.parent.relative_to(src).as_posix().replace("/", ".")
        assert rel in names, (
            f"{rel} is not inside the built wheel {wheels[-1].name}: declare it as package data in "
            f'pyproject.toml:\n[tool.setuptools.package-data]\n{package} = ["{data_file.name}"]'
        )
    return names
