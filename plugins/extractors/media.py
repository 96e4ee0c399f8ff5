"""Reading media for the extractors: audio (mono, resampled), video frames, local model folders.

WAV files with integer PCM samples are read with the standard library's ``wave`` module; every
other container (FLAC, MP3, float WAV, the audio track of an MP4) and all video go through PyAV
(FFmpeg bindings, ``pip install av``). Channels are averaged to mono and the signal is resampled
with a polyphase filter (``scipy.signal.resample_poly``) so the result does not depend on the
decoder that produced it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import wave
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError, UsageError

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


class MediaError(DataError):
    """A media file that cannot be decoded (listed in the extraction's error report, not fatal)."""


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise UsageError(
            "reading this media needs PyAV (FFmpeg bindings): pip install av "
            "(integer PCM .wav files are read without it)"
        ) from None
    return av


def _read_wav(path: Path) -> tuple[np.ndarray, int] | None:
    """Integer PCM WAV -> float32 ``[samples, channels]`` in [-1, 1]; ``None`` if not such a file."""
    try:
        with wave.open(str(path), "rb") as fh:
            channels, width, rate = fh.getnchannels(), fh.getsampwidth(), fh.getframerate()
            raw = fh.readframes(fh.getnframes())
    except (wave.Error, EOFError):
        return None  # e.g. float WAV (format 3): PyAV reads it
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        return None
    usable = len(data) - len(data) % channels
    return data[:usable].reshape(-1, channels), rate


def _read_av_audio(path: Path) -> tuple[np.ndarray, int]:
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError("has no audio stream", path=path)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")  # planar float, native layout and rate
            chunks: list[np.ndarray] = []
            rate = stream.rate
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    rate = out.sample_rate
    except MediaError:
        raise
    except Exception as exc:  # FFmpeg's errors (InvalidDataError, ...) name the problem
        raise MediaError(f"cannot decode audio: {exc}", path=path) from None
    if not chunks or not rate:
        raise MediaError("holds no audio samples", path=path)
    return np.concatenate(chunks, axis=1).T.astype(np.float32), int(rate)


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling of a 1-D signal from ``rate`` to ``target`` Hz."""
    if rate == target:
        return signal.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(signal.astype(np.float64), target // g, rate // g).astype(np.float32)


_LAST_INFO = threading.local()


def take_audio_info() -> dict[str, Any] | None:
    """What the last :func:`load_audio` of this thread read (then forgotten); ``None`` if nothing."""
    info = getattr(_LAST_INFO, "value", None)
    _LAST_INFO.value = None
    return info


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate`` Hz (channels averaged, then resampled).

    What was read is kept for :func:`take_audio_info` (per thread): the file's ``sample_rate``
    (Hz), ``channels``, ``duration_s``, ``resampled_to`` (Hz, ``None`` when the rate already
    matched) and a ``warning`` when the channels cancel out in the mono mix (an antiphase stereo
    file would otherwise give the features of near-silence unnoticed).
    """
    path = Path(path)
    found = _read_wav(path) if path.suffix.lower() == ".wav" else None
    data, rate = found if found is not None else _read_av_audio(path)
    if data.shape[0] == 0:
        raise MediaError("holds no audio samples", path=path)
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise MediaError("holds NaN or infinite samples", path=path)
    info: dict[str, Any] = {
        "sample_rate": int(rate),
        "channels": int(data.shape[1]),
        "duration_s": round(data.shape[0] / rate, 4),
        "resampled_to": int(sample_rate) if rate != sample_rate else None,
    }
    if data.shape[1] > 1:
        channel_rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
        mix_rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
        if channel_rms > 1e-4 and mix_rms < 0.1 * channel_rms:
            info["warning"] = (
                f"its {data.shape[1]} channels cancel out when mixed to mono (mix RMS {mix_rms:.3g}, "
                f"channel RMS {channel_rms:.3g}: channels in antiphase?); the features describe near-silence"
            )
    _LAST_INFO.value = info
    return resample(mono, rate, sample_rate)


def sample_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` RGB frames (``uint8 [H, W, 3]``) at evenly spaced positions of the first video stream.

    Short clips with fewer frames than ``count`` give all their frames. Only the chosen frames
    are converted to arrays, so long, large videos stay cheap in memory.
    """
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("has no video stream", path=path)
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            if total <= 0:  # container without a frame count: count by decoding once
                total = sum(1 for _ in container.decode(stream))
                container.seek(0)
            wanted = np.unique(np.linspace(0, max(total - 1, 0), num=count).round().astype(int))
            picks: list[np.ndarray] = []
            last = None
            targets = set(wanted.tolist())
            for i, frame in enumerate(container.decode(stream)):
                last = frame
                if i in targets:
                    picks.append(frame.to_ndarray(format="rgb24"))
                    if len(picks) == len(wanted):
                        break
            if len(picks) < len(wanted) and last is not None:  # the stated frame count was too high
                tail = last.to_ndarray(format="rgb24")
                picks.extend(tail for _ in range(len(wanted) - len(picks)))
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"cannot decode video: {exc}", path=path) from None
    if not picks:
        raise MediaError("holds no video frames", path=path)
    return picks


def resolve_model_dir(extractor: str, model: str | None) -> Path:
    """The local folder of a transformers model (``save_pretrained`` layout); never downloads."""
    if not model:
        raise UsageError(
            f"extractor {extractor!r} needs a model: --encoder ...={extractor}:model=/path/to/folder "
            "(a folder written by save_pretrained, or a name under $MMBENCH_MODELS or in the "
            "Hugging Face cache)"
        )
    path = Path(str(model)).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"model folder {path} has no config.json (save it with save_pretrained)")
        return path.resolve()
    root = os.environ.get("MMBENCH_MODELS")
    if root:
        for candidate in (Path(root) / str(model), Path(root) / str(model).replace("/", "--")):
            if (candidate / "config.json").is_file():
                return candidate.resolve()
    from mmbench.plugins.encoders.hf_text import from_hf_cache

    cached = from_hf_cache(str(model))
    if cached is not None:
        return cached
    raise UsageError(
        f"extractor {extractor!r}: model {model!r} is not available offline (mmbench never downloads "
        "weights); give a folder holding config.json and the weights, or put it under "
        f"$MMBENCH_MODELS/{model} or in the Hugging Face cache"
    )


def weights_digest(folder: Path) -> dict[str, Any]:
    """SHA-256 of a model folder's weights and config (weights hashed once, remembered by mtime)."""
    from mmbench.runner.encoding_cache import file_sha256

    files: list[Path] = []
    for pattern in WEIGHT_PATTERNS:
        files = sorted(folder.glob(pattern))
        if files:
            break
    if not files:
        raise UsageError(f"model folder {folder} holds no weights (*.safetensors or pytorch_model*.bin)")
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    extra = {}
    for name in ("config.json", "preprocessor_config.json"):
        if (folder / name).is_file():
            extra[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return {"folder": str(folder), "weights_sha256": h.hexdigest(), "files": [f.name for f in files], **extra}


def offline_transformers() -> None:
    """Make sure no Hugging Face call reaches the network (before transformers loads a model)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
