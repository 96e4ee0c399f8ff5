"""Feature extractors for ``mmbench extract``: raw media (audio, video) -> one vector per utterance.

Extractors are plugins like datasets and fusions: registered through the
``mmbench_register_extractors`` hook with their modality and the default output column of the
reference spreadsheet layout (a third-party package adds its own the same way). Importing this
package is cheap; numpy, torch, transformers and PyAV are imported only when an extractor is
built or run.

An extractor is a class deriving from :class:`Extractor`: typed options with defaults, an
:meth:`Extractor.identity` naming everything that changes its output (options, weight hashes,
library versions), :meth:`Extractor.setup` (load a model once) and :meth:`Extractor.extract`
(one media file -> float32 array).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mmbench.errors import UsageError
from mmbench.registry import Registry, hookimpl

if TYPE_CHECKING:
    import numpy as np

    from mmbench.registry.registry import Entry

_PKG = "mmbench.plugins.extractors"


_BUILTIN = (
    # name, modality, target, default column, summary
    (
        "wav2vec2",
        "audio",
        f"{_PKG}.audio:Wav2Vec2Extractor",
        "V1",
        "wav2vec2-style speech model from a local folder, mean-pooled last hidden state",
    ),
    (
        "mfcc",
        "audio",
        f"{_PKG}.audio:MfccExtractor",
        "V2",
        "25 MFCCs (25 ms / 10 ms frames, 40 mel bands, dB), mean over time",
    ),
    (
        "prosody",
        "audio",
        f"{_PKG}.audio:ProsodyExtractor",
        "V3",
        "25 prosodic statistics: pitch, voicing, RMS, zero-crossing rate, spectral shape, tempo",
    ),
    (
        "frames",
        "visual",
        f"{_PKG}.visual:FramesExtractor",
        "A2",
        "N frames sampled uniformly, an image backbone from a local folder, mean over frames",
    ),
)


@hookimpl
def mmbench_register_extractors(registry: Registry) -> None:
    for name, modality, target, column, summary in _BUILTIN:
        registry.add_extractor(name, target, summary, modality=modality, column=column)


def get_entry(name: str, modality: str | None = None) -> Entry:
    """The registry entry of extractor ``name`` (``entry.extra`` holds modality and column).

    Unknown names and modality mismatches are usage errors.
    """
    from mmbench.registry import get_registry

    entry = get_registry().get("extractor", name)
    if modality is not None and modality != entry.extra["modality"]:
        raise UsageError(
            f"extractor {name!r} reads {entry.extra['modality']} media, not {modality!r}: "
            f"use --encoder {entry.extra['modality']}={name}"
        )
    return entry


def create_extractor(
    name: str, options: dict[str, Any] | None = None, modality: str | None = None
) -> Extractor:
    """Build the extractor ``name`` with ``options`` (strings are converted to the options' types)."""
    return get_entry(name, modality).load()(options or {})


def library_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of the distributions that shape an extractor's numbers."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _coerce(name: str, option: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return low in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise UsageError(
            f"extractor {name!r}: option {option}={value!r} must be a {type(default).__name__}"
        ) from None
    return value


class Extractor:
    """Base class: one media file in, one float32 array out (``[D]``, or ``[T, D]`` for sequences)."""

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: bumped whenever the algorithm changes its numbers, so old shards are not reused
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    libraries: ClassVar[tuple[str, ...]] = ("numpy",)

    def __init__(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise UsageError(
                f"extractor {self.name!r} has no option {unknown[0]!r}; "
                f"options: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        self.options = {
            k: _coerce(self.name, k, options[k], d) if k in options else d for k, d in self.defaults.items()
        }
        for key, allowed in self.choices.items():
            if self.options[key] not in allowed:
                raise UsageError(
                    f"extractor {self.name!r}: {key}={self.options[key]!r} is not one of {', '.join(allowed)}"
                )
        self._ready = False

    def identity(self) -> dict[str, Any]:
        """Everything that determines the output; computable without loading a model."""
        return {
            "name": self.name,
            "version": self.version,
            "modality": self.modality,
            "options": dict(self.options),
            "libraries": library_versions(*self.libraries),
        }

    def setup(self) -> None:
        """Load models or tables once before the first :meth:`extract` (no-op by default)."""

    def ensure_ready(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def extract(self, path: Path) -> np.ndarray:
        """Features of one media file as float32 ``[D]`` (or ``[T, D]``)."""
        raise NotImplementedError
