"""Shared pieces of the conformance kit: small example specs, batches and data, registry access."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbench.data import InputSpec, ModalitySpec, MultimodalData, StreamSpec, mask_key


def example_spec(num_classes: int = 4, sequence: bool = False, steps: int = 5) -> InputSpec:
    """A small three-modality :class:`InputSpec` (text 12, audio 8+3, visual 6), IEMOCAP-like."""
    t = steps if sequence else 1
    return InputSpec(
        modalities=(
            ModalitySpec("text", (StreamSpec("text", 12),), sequence, t),
            ModalitySpec("audio", (StreamSpec("V1", 8), StreamSpec("V3", 3)), sequence, t),
            ModalitySpec("visual", (StreamSpec("V1", 6),), sequence, t),
        ),
        num_outputs=num_classes,
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


def current_registry() -> Any:
    """The process-wide registry (as ``mmbench run`` sees it)."""
    from mmbench.registry import get_registry

    return get_registry()


def check_listed(kind: str, name: str, distribution: str | None) -> None:
    """Assert that ``name`` is registered (by ``distribution``, when given) and loaded cleanly."""
    registry = current_registry()
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
