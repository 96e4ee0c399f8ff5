"""Feature extractors for ``mmbench extract``: raw media (audio, video) -> one vector per utterance.

Extractors are plugins like datasets and fusions: registered through the
``mmbench_register_extractors`` hook with their modality and the default output column of the
reference spreadsheet layout (a third-party package adds its own the same way). Importing this
package is cheap; numpy, torch, transformers and PyAV are imported only when an extractor is
built or run.

An extractor is a class deriving from :class:`mmbench.contracts.Extractor` (re-exported here):
typed options with defaults, an :meth:`Extractor.identity` naming everything that changes its
output (options, weight hashes, library versions), :meth:`Extractor.setup` (load a model once)
and :meth:`Extractor.extract` (one media file -> float32 array).
"""

from __future__ import annotations

from mmbench.contracts import (
    Extractor,
    coerce_option,
    create_extractor,
    library_versions,
)
from mmbench.contracts import extractor_entry as get_entry
from mmbench.registry import Registry, hookimpl

__all__ = ["Extractor", "coerce_option", "create_extractor", "get_entry", "library_versions"]

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
