"""Visual extractor ``frames``: sampled video frames through a pretrained image backbone.

``num_frames`` frames are taken at evenly spaced positions of the clip (PyAV), prepared by the
model folder's own image processor (``AutoImageProcessor``: resize, crop, normalise) and run
through ``AutoModel`` (ResNet, ViT, ConvNeXt, ...) under ``torch.inference_mode``. A frame's
vector is the model's ``pooler_output`` when the backbone has a parameter-free or trained
pooler, otherwise the mean of its last hidden state over positions. ``pooling=mean`` averages
the frames (``[D]``), ``mean_std`` appends their standard deviation (``[2D]``), ``frames``
keeps ``[N, D]``. The model must be a trained checkpoint: nothing here is trained or random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.errors import UsageError
from mmbench.plugins.extractors import Extractor
from mmbench.plugins.extractors.media import (
    offline_transformers,
    resolve_model_dir,
    sample_frames,
    weights_digest,
)


class FramesExtractor(Extractor):
    """``frames``: an image backbone over ``num_frames`` uniformly sampled frames, pooled."""

    name = "frames"
    modality = "visual"
    libraries: ClassVar[tuple[str, ...]] = ("numpy", "av", "torch", "transformers", "pillow")
    defaults: ClassVar[dict[str, Any]] = {
        "model": None,
        "num_frames": 8,
        "pooling": "mean",
        "batch_size": 16,
        "device": "auto",
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"pooling": ("mean", "mean_std", "frames")}

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        if int(self.options["num_frames"]) < 1:
            raise UsageError("extractor 'frames': num_frames must be at least 1")
        self.folder = resolve_model_dir(self.name, self.options["model"])
        if not (self.folder / "preprocessor_config.json").is_file():
            raise UsageError(
                f"model folder {self.folder} has no preprocessor_config.json: save the image processor "
                "beside the model (AutoImageProcessor.save_pretrained) so frames are prepared as in training"
            )
        self.weights = weights_digest(self.folder)
        self.options["model"] = str(self.options["model"])

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        for key in ("device", "batch_size"):  # how it runs does not name the features
            ident["options"].pop(key)
        return {**ident, "weights": self.weights}

    def setup(self) -> None:
        offline_transformers()
        import torch
        from transformers import AutoImageProcessor, AutoModel

        from mmbench.plugins.encoders.hf_text import resolve_device

        try:
            self.processor = AutoImageProcessor.from_pretrained(str(self.folder), local_files_only=True)
            self.model, info = AutoModel.from_pretrained(
                str(self.folder), local_files_only=True, output_loading_info=True
            )
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load the image model from {self.folder}: {exc}") from None
        missing = info.get("missing_keys", ())
        # a pooler with untrained weights would be a random summary: use the hidden states then
        self.use_pooler = not any(k.startswith("pooler.") or ".pooler." in k for k in missing)
        self.device = resolve_device(self.options["device"])
        self.model.to(self.device).eval()
        self.torch = torch

    def _embed(self, frames: list[np.ndarray]) -> np.ndarray:
        torch = self.torch
        pixels = self.processor(images=frames, return_tensors="pt")["pixel_values"]
        out = []
        with torch.inference_mode():
            for start in range(0, len(pixels), int(self.options["batch_size"])):
                result = self.model(
                    pixel_values=pixels[start : start + int(self.options["batch_size"])].to(self.device)
                )
                pooled = getattr(result, "pooler_output", None) if self.use_pooler else None
                if pooled is None:
                    hidden = result.last_hidden_state
                    pooled = hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden.mean(dim=1)
                out.append(pooled.reshape(pooled.shape[0], -1).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def extract(self, path: Path) -> np.ndarray:
        vectors = self._embed(sample_frames(path, int(self.options["num_frames"])))
        if self.options["pooling"] == "frames":
            return vectors.astype(np.float32)
        if self.options["pooling"] == "mean_std":
            return np.concatenate([vectors.mean(0), vectors.std(0)]).astype(np.float32)
        return vectors.mean(0).astype(np.float32)
