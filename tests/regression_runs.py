"""A tiny regression dataset plugin (sentiment-like target in [-3, 3], two sequence modalities) and
helpers to make real run records with it, for the tests of everything downstream of the task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry, set_registry

DATASET = "toy-sentiment"
#: Protocol overrides a regression run on the toy dataset needs (it ships no protocol file).
REGRESSION_SET = ["metric=mae", "train.loss=l1", "train.imbalance=none", "train.max_epochs=3"]


def toy_sentiment(n: int = 120, steps: int = 5, seed: int = 0) -> MultimodalData:
    """``n`` utterances; the target (rounded to thirds, some exact zeros) depends mostly on audio."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(n, steps, 6)).astype(np.float32)
    visual = rng.normal(size=(n, steps, 4)).astype(np.float32)
    y = 1.6 * audio[:, :, 0].mean(1) * np.sqrt(steps) + 0.4 * visual[:, 0, 1]
    y = np.clip(np.round(y * 3) / 3, -3, 3).astype(np.float32)
    y[::15] = 0.0
    n_train, n_dev = int(n * 0.6), int(n * 0.2)
    return MultimodalData(
        name=DATASET,
        modalities={"audio": {"a": audio}, "visual": {"v": visual}},
        labels=y,
        class_names=[],
        splits={
            "train": np.arange(n_train),
            "dev": np.arange(n_train, n_train + n_dev),
            "test": np.arange(n_train + n_dev, n),
        },
        lengths={"audio": rng.integers(2, steps + 1, size=n), "visual": np.full(n, steps)},
        groups={"speaker": np.array([f"s{i % 9}" for i in range(n)])},
        task="regression",
        target_range=(-3.0, 3.0),
    )


class ToySentiment(DatasetPlugin):
    cluster_unit = "speaker"

    def load(self, path: Path | None, options: dict) -> MultimodalData:
        return toy_sentiment()


class ToyPlugins:
    @hookimpl
    def mmbench_register_datasets(self, registry: Registry) -> None:
        registry.add_dataset(DATASET, "tests.regression_runs:ToySentiment", "regression toy")


@contextmanager
def toy_registry() -> Iterator[Registry]:
    """The built-in plugins plus ``toy-sentiment``, installed as the process registry."""
    reg, pm = build_registry([("toy-datasets", ToyPlugins())])
    set_registry(reg, pm)
    try:
        yield reg
    finally:
        set_registry(*build_registry())


def make_runs(out: Path, fusions: list[str], seeds: list[int], extra: list[str] = ()) -> list[dict]:
    """Train ``fusions`` x ``seeds`` on the toy dataset (3 epochs) into ``out``; their records."""
    import mmbench

    result = mmbench.run(fusions, DATASET, seeds=seeds, overrides=[*REGRESSION_SET, *extra], out=out)
    return result.records
