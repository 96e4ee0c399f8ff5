"""``precomputed``: pass-through for modalities whose features are already numeric."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.contracts import EncoderPlugin
from mmbench.data import MultimodalData
from mmbench.errors import UsageError


class PrecomputedEncoder(EncoderPlugin):
    """Returns the modality's feature streams unchanged (nothing to cache)."""

    cacheable = False

    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"name": "precomputed"}

    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, np.ndarray]:
        if modality not in data.modalities:
            raise UsageError(
                f"modality {modality!r} holds raw values, not features; choose an encoder for it, "
                f"e.g. --encoder {modality}=hf-text or --encoder {modality}=tfidf"
            )
        return data.modalities[modality]
