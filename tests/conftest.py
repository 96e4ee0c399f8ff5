"""Shared fixtures: an isolated cache folder and small, fast synthetic data."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache and no MMBENCH_DATA from the environment."""
    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("MMBENCH_DATA", raising=False)
    monkeypatch.delenv("MMBENCH_STRICT_PLUGINS", raising=False)


@pytest.fixture(scope="session")
def small_synthetic():
    from mmbench.plugins.datasets.synthetic import generate

    return generate(preset="mixed", n_samples=600, generator_seed=7)
