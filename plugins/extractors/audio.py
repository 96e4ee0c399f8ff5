"""Audio extractors: ``mfcc``, ``prosody`` (numpy/scipy) and ``wav2vec2`` (transformers).

All three read the file as mono at ``sample_rate`` (default 16 kHz, see
:func:`mmbench.plugins.extractors.media.load_audio`).

``mfcc``: 25 ms Hann frames every 10 ms (``n_fft`` 512, centred, zero padded), power spectrum,
40 triangular mel filters (HTK mel scale, 0 Hz to Nyquist), ``10 * log10(max(mel, 1e-10))``,
orthonormal DCT-II, first ``n_mfcc`` (25) coefficients; ``pooling=mean`` averages over frames
(``[25]``), ``mean_std`` appends the standard deviation (``[50]``), ``frames`` keeps ``[T, 25]``.

``prosody``: 25 statistics of one utterance, in the order of :data:`PROSODY_FEATURES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.plugins.extractors import Extractor
from mmbench.plugins.extractors.media import (
    load_audio,
    offline_transformers,
    resolve_model_dir,
    take_audio_info,
    weights_digest,
)

#: names (and units) of the 25 ``prosody`` dimensions, in order
PROSODY_FEATURES: tuple[str, ...] = (
    "pitch_mean_hz",  # YIN-style F0 over voiced frames (0 when no frame is voiced)
    "pitch_std_hz",
    "pitch_min_hz",
    "pitch_max_hz",
    "pitch_median_hz",
    "pitch_slope_hz_per_s",  # least-squares slope of F0 over time (intonation)
    "voiced_fraction",  # voiced frames / frames
    "rms_mean",  # frame RMS energy (full scale = 1)
    "rms_std",
    "rms_max",
    "rms_range_db",  # 20 log10(p95 / p5) of frame RMS: dynamic range
    "zcr_mean",  # zero crossings per sample, per frame
    "zcr_std",
    "zcr_max",
    "centroid_mean_hz",  # magnitude-weighted mean frequency, per frame
    "centroid_std_hz",
    "centroid_max_hz",
    "bandwidth_mean_hz",  # magnitude-weighted spread around the centroid
    "bandwidth_std_hz",
    "rolloff85_mean_hz",  # frequency below which 85% of the magnitude lies
    "flatness_mean",  # geometric / arithmetic mean of the power spectrum (0 tonal .. 1 noise)
    "tempo_bpm",  # onset-envelope autocorrelation peak in 40..240 BPM (0 if below 10% of lag 0)
    "onset_strength_mean",  # mean positive log-mel flux (dB per frame)
    "onset_rate_per_s",  # onset-envelope peaks per second
    "duration_s",
)


def frame_signal(x: np.ndarray, frame_length: int, hop: int, center: bool = True) -> np.ndarray:
    """Overlapping frames ``[T, frame_length]`` (a view); centred frames pad ``frame_length // 2`` zeros."""
    if center:
        x = np.pad(x, frame_length // 2)
    if len(x) < frame_length:
        x = np.pad(x, (0, frame_length - len(x)))
    return np.lib.stride_tricks.sliding_window_view(x, frame_length)[::hop]


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular filters ``[n_mels, n_fft // 2 + 1]`` equally spaced on the HTK mel scale (peak 1)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def power_spectrogram(
    x: np.ndarray, sample_rate: int, win_ms: float = 25.0, hop_ms: float = 10.0, n_fft: int = 512
) -> np.ndarray:
    """``|rfft(hann * frame)|^2`` per frame, ``[T, n_fft // 2 + 1]``."""
    from scipy.signal import get_window

    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    n_fft = max(n_fft, win)
    frames = frame_signal(x.astype(np.float64), win, hop)
    spec = np.fft.rfft(frames * get_window("hann", win, fftbins=True), n=n_fft, axis=-1)
    return spec.real**2 + spec.imag**2


def mfcc(
    x: np.ndarray,
    sample_rate: int,
    n_mfcc: int = 25,
    n_mels: int = 40,
    n_fft: int = 512,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
) -> np.ndarray:
    """MFCC frames ``[T, n_mfcc]`` (see the module docstring for every step)."""
    from scipy.fft import dct

    power = power_spectrogram(x, sample_rate, win_ms, hop_ms, n_fft)
    mel = power @ mel_filterbank(sample_rate, (power.shape[1] - 1) * 2, n_mels).T
    log_mel = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return dct(log_mel, type=2, norm="ortho", axis=-1)[:, :n_mfcc].astype(np.float32)


#: Frames processed at once by ``yin_pitch`` and ``prosody_features`` (10 s at a 10 ms hop): their
#: working memory is bounded by this, whatever the clip's length (a 10-minute clip used 2.2 GB).
CHUNK_FRAMES = 1024


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, max(size, 1))]


def _yin_chunk(frames: np.ndarray, win: int, tmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative-mean-normalised difference ``[F, tmax + 1]`` and frame energy ``[F]`` of float64 frames."""
    length = frames.shape[1]
    n = 1 << int(np.ceil(np.log2(length + win)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :win], n)) * np.fft.rfft(frames, n), n)[:, : tmax + 1]
    cum = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tmax + 1)
    energy0 = cum[:, win]
    diff = np.maximum(energy0[:, None] + cum[:, taus + win] - cum[:, taus] - 2.0 * corr, 0.0)
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tmax + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = np.where(running > 0, diff[:, 1:] / np.maximum(running, 1e-300), 1.0)
    return cmnd, energy0


def yin_pitch(
    x: np.ndarray,
    sample_rate: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    hop: int = 160,
    win: int = 512,
    threshold: float = 0.15,
    chunk_frames: int = CHUNK_FRAMES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YIN F0 per frame: ``(f0_hz, voiced, frame_rms)``, each ``[T]`` (f0 is 0 where unvoiced).

    The difference function is computed with FFT cross-correlation, ``chunk_frames`` frames at a
    time (memory bounded whatever the clip's length; the result does not depend on it); a frame
    is voiced when its cumulative-mean-normalised difference dips below ``threshold`` and its RMS
    is above 5% of the loudest frame's.
    """
    tmin, tmax = int(sample_rate / fmax), int(np.ceil(sample_rate / fmin))
    length = win + tmax
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    view = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]  # no copy
    parts = _chunks(len(view), chunk_frames)
    energy0 = np.empty(len(view))
    for part in parts:  # pass 1: the loudest frame sets the voicing threshold
        frames = view[part].astype(np.float64)
        cum = np.cumsum(frames[:, :win] ** 2, axis=1)
        energy0[part] = cum[:, -1]
    rms = np.sqrt(energy0 / win)
    loud = rms > max(0.05 * float(rms.max(initial=0.0)), 1e-5)
    f0 = np.zeros(len(view))
    voiced = np.zeros(len(view), dtype=bool)
    for part in parts:
        if not loud[part].any():
            continue
        cmnd, _ = _yin_chunk(view[part].astype(np.float64), win, tmax)
        for t in np.flatnonzero(loud[part]):
            row = cmnd[t]
            below = np.flatnonzero(row[tmin : tmax + 1] < threshold)
            if len(below) == 0:
                continue
            tau = tmin + int(below[0])
            while tau < tmax and row[tau + 1] < row[tau]:
                tau += 1
            shift = 0.0
            if 0 < tau < tmax:
                a, b, c = row[tau - 1], row[tau], row[tau + 1]
                denom = a - 2 * b + c
                shift = 0.5 * (a - c) / denom if denom > 0 else 0.0
            f0[part.start + t] = sample_rate / (tau + shift)
            voiced[part.start + t] = True
    return f0, voiced, rms


def onset_envelope(x: np.ndarray, sample_rate: int, hop_ms: float = 10.0) -> np.ndarray:
    """Positive log-mel spectral flux per frame (summed over 40 bands, in dB)."""
    power = power_spectrogram(x, sample_rate, hop_ms=hop_ms)
    mel = power @ mel_filterbank(sample_rate, (power.shape[1] - 1) * 2, 40).T
    log_mel = 10.0 * np.log10(np.maximum(mel, 1e-10))
    flux = np.maximum(np.diff(log_mel, axis=0), 0.0).sum(axis=1)
    return np.concatenate([[0.0], flux])


def estimate_tempo(
    envelope: np.ndarray, frame_rate: float, lo_bpm: float = 40.0, hi_bpm: float = 240.0
) -> float:
    """Tempo in BPM from the autocorrelation peak of an onset envelope (0 when the clip is too short)."""
    env = envelope - envelope.mean()
    min_lag = int(np.floor(60.0 * frame_rate / hi_bpm))
    max_lag = int(np.ceil(60.0 * frame_rate / lo_bpm))
    if len(env) < 2 * min_lag + 2 or not np.any(env):
        return 0.0
    n = 1 << int(np.ceil(np.log2(2 * len(env))))
    spec = np.fft.rfft(env, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: len(env)]
    max_lag = min(max_lag, len(env) - 2)
    if max_lag <= min_lag:
        return 0.0
    lag = min_lag + int(np.argmax(ac[min_lag : max_lag + 1]))
    if ac[lag] <= 0.1 * ac[0]:  # no periodicity worth the name (a steady tone, a single event)
        return 0.0
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(60.0 * frame_rate / (lag + shift))


def _stats(values: np.ndarray, *fns: str) -> list[float]:
    if len(values) == 0:
        return [0.0] * len(fns)
    table = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max, "median": np.median}
    return [float(table[f](values)) for f in fns]


def _spectral_chunks(
    x: np.ndarray, sample_rate: int, chunk_frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame ``rms, zcr`` (25 ms frames) and, from the power spectrum, ``centroid, bandwidth,
    rolloff, flatness`` (frames that are not digital silence) and the onset envelope,
    ``chunk_frames`` frames at a time.

    Row by row this is :func:`power_spectrogram`, :func:`onset_envelope` and the frame statistics
    of the whole signal; only the working memory differs.
    """
    from scipy.signal import get_window

    hop = int(round(sample_rate * 0.01))
    win = int(round(sample_rate * 0.025))
    n_fft = max(512, win)
    window = get_window("hann", win, fftbins=True)
    frames_view = frame_signal(x, win, hop)  # a view of the padded signal
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_fb = mel_filterbank(sample_rate, n_fft, 40).T
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("rms", "zcr", "c", "bw", "ro", "fl", "env")}
    previous = None
    for part in _chunks(len(frames_view), chunk_frames):
        frames = frames_view[part].astype(np.float64)
        out["rms"].append(np.sqrt(np.mean(frames**2, axis=1)))
        signs = np.signbit(frames)
        out["zcr"].append(np.mean(signs[:, 1:] != signs[:, :-1], axis=1))
        spec = np.fft.rfft(frames * window, n=n_fft, axis=-1)
        power = spec.real**2 + spec.imag**2
        mag = np.sqrt(power)
        total = mag.sum(axis=1)
        active = total > 1e-8  # spectral shape is undefined for digital silence
        m, p = mag[active], power[active]
        centroid = (m @ freqs) / total[active]
        out["c"].append(centroid)
        out["bw"].append(
            np.sqrt(np.sum(m * (freqs[None, :] - centroid[:, None]) ** 2, axis=1) / total[active])
        )
        cumulative = np.cumsum(m, axis=1)
        out["ro"].append(freqs[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)])
        out["fl"].append(np.exp(np.mean(np.log(p + 1e-12), axis=1)) / (np.mean(p, axis=1) + 1e-12))
        log_mel = 10.0 * np.log10(np.maximum(power @ mel_fb, 1e-10))
        joined = log_mel if previous is None else np.concatenate([previous, log_mel])
        flux = np.maximum(np.diff(joined, axis=0), 0.0).sum(axis=1)
        out["env"].append(np.concatenate([[0.0], flux]) if previous is None else flux)
        previous = log_mel[-1:]
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    return cat["rms"], cat["zcr"], cat["c"], cat["bw"], cat["ro"], cat["fl"], cat["env"]


def prosody_features(
    x: np.ndarray,
    sample_rate: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    chunk_frames: int = CHUNK_FRAMES,
) -> np.ndarray:
    """The 25 statistics of :data:`PROSODY_FEATURES` for one mono signal.

    Frames are processed ``chunk_frames`` at a time: beyond the signal itself and one value per
    10 ms frame, memory does not grow with the clip's length (the result does not depend on it).
    """
    hop = int(round(sample_rate * 0.01))
    f0, voiced, _ = yin_pitch(x, sample_rate, fmin=fmin, fmax=fmax, hop=hop, chunk_frames=chunk_frames)
    pitch = f0[voiced]
    slope = 0.0
    if len(pitch) >= 2:
        times = np.flatnonzero(voiced) * hop / sample_rate
        slope = float(np.polyfit(times, pitch, 1)[0]) if np.ptp(times) > 0 else 0.0
    rms, zcr, centroid, bandwidth, rolloff, flatness, envelope = _spectral_chunks(
        x, sample_rate, chunk_frames
    )
    frame_rate = sample_rate / hop
    peaks = 0
    if len(envelope) >= 3 and envelope.std() > 0:
        e = envelope
        level = e.mean() + e.std()
        peaks = int(np.sum((e[1:-1] > e[:-2]) & (e[1:-1] >= e[2:]) & (e[1:-1] > level)))
    duration = len(x) / sample_rate
    loud = rms[rms > 0]
    dyn = float(20 * np.log10(np.percentile(loud, 95) / np.percentile(loud, 5))) if len(loud) else 0.0
    values = [
        *_stats(pitch, "mean", "std", "min", "max", "median"),
        slope,
        float(voiced.mean()) if len(voiced) else 0.0,
        *_stats(rms, "mean", "std", "max"),
        dyn,
        *_stats(zcr, "mean", "std", "max"),
        *_stats(centroid, "mean", "std", "max"),
        *_stats(bandwidth, "mean", "std"),
        *_stats(rolloff, "mean"),
        *_stats(flatness, "mean"),
        estimate_tempo(envelope, frame_rate),
        float(envelope.mean()),
        peaks / duration if duration > 0 else 0.0,
        duration,
    ]
    return np.asarray(values, dtype=np.float32)


class _AudioExtractor(Extractor):
    modality = "audio"
    thread_safe: ClassVar[bool] = True  # pure numpy/scipy: files may run in parallel threads
    libraries: ClassVar[tuple[str, ...]] = ("numpy", "scipy", "av")

    def extract_with_info(self, path: Path) -> tuple[np.ndarray, dict[str, Any] | None]:
        """:meth:`extract` and what :func:`load_audio` read (sample rate, channels, duration,
        resampling, a warning for channels that cancel in the mono mix)."""
        take_audio_info()  # nothing left over from an earlier file of this thread
        value = self.extract(path)
        return value, take_audio_info()


class MfccExtractor(_AudioExtractor):
    """``mfcc``: MFCC frames pooled over time (``[n_mfcc]``, ``[2 n_mfcc]`` or ``[T, n_mfcc]``)."""

    name = "mfcc"
    defaults: ClassVar[dict[str, Any]] = {
        "sample_rate": 16000,
        "n_mfcc": 25,
        "n_mels": 40,
        "n_fft": 512,
        "win_ms": 25.0,
        "hop_ms": 10.0,
        "pooling": "mean",
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"pooling": ("mean", "mean_std", "frames")}

    def extract(self, path: Path) -> np.ndarray:
        o = self.options
        x = load_audio(path, o["sample_rate"])
        coeffs = mfcc(x, o["sample_rate"], o["n_mfcc"], o["n_mels"], o["n_fft"], o["win_ms"], o["hop_ms"])
        if o["pooling"] == "frames":
            return coeffs
        if o["pooling"] == "mean_std":
            return np.concatenate([coeffs.mean(0), coeffs.std(0)]).astype(np.float32)
        return coeffs.mean(0).astype(np.float32)


class ProsodyExtractor(_AudioExtractor):
    """``prosody``: the 25 statistics of :data:`PROSODY_FEATURES`."""

    name = "prosody"
    defaults: ClassVar[dict[str, Any]] = {"sample_rate": 16000, "fmin": 60.0, "fmax": 500.0}

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "dimensions": list(PROSODY_FEATURES)}

    def extract(self, path: Path) -> np.ndarray:
        o = self.options
        return prosody_features(load_audio(path, o["sample_rate"]), o["sample_rate"], o["fmin"], o["fmax"])


class Wav2Vec2Extractor(_AudioExtractor):
    """``wav2vec2``: a speech model (``AutoModel``: wav2vec 2.0, HuBERT, WavLM...) from a local folder.

    Each file runs alone (no padding, so the numbers do not depend on the batch) under
    ``torch.inference_mode``; the chosen layer's hidden states are mean-pooled over time
    (``output=pooled``, ``[D]``) or kept (``output=sequence``, ``[T, D]``). ``normalize``: ``auto``
    follows the folder's ``preprocessor_config.json`` (``do_normalize``; true without one).
    """

    name = "wav2vec2"
    thread_safe: ClassVar[bool] = False
    libraries: ClassVar[tuple[str, ...]] = ("numpy", "scipy", "av", "torch", "transformers")
    defaults: ClassVar[dict[str, Any]] = {
        "model": None,
        "sample_rate": 16000,
        "layer": -1,
        "output": "pooled",
        "normalize": "auto",
        "device": "auto",
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "output": ("pooled", "sequence"),
        "normalize": ("auto", "true", "false"),
    }

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.folder = resolve_model_dir(self.name, self.options["model"])
        self.weights = weights_digest(self.folder)
        self.options["model"] = str(self.options["model"])

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["options"].pop("device")  # where it runs does not name the features
        return {**ident, "weights": self.weights}

    def setup(self) -> None:
        import json

        offline_transformers()
        import torch
        from transformers import AutoModel

        from mmbench.errors import UsageError
        from mmbench.plugins.encoders.hf_text import resolve_device

        normalize = self.options["normalize"]
        if normalize == "auto":
            pre = self.folder / "preprocessor_config.json"
            config = json.loads(pre.read_text()) if pre.is_file() else {}
            normalize = "true" if config.get("do_normalize", True) else "false"
        self.do_normalize = normalize == "true"
        try:
            self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load the speech model from {self.folder}: {exc}") from None
        self.device = resolve_device(self.options["device"])
        self.model.to(self.device).eval()
        self.torch = torch

    def extract(self, path: Path) -> np.ndarray:
        torch = self.torch
        x = load_audio(path, self.options["sample_rate"]).astype(np.float32)
        if len(x) < 400:  # the convolutional front end needs one 25 ms receptive field
            x = np.pad(x, (0, 400 - len(x)))
        if self.do_normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        layer = int(self.options["layer"])
        with torch.inference_mode():
            inputs = torch.from_numpy(x)[None, :].to(self.device)
            out = self.model(input_values=inputs, output_hidden_states=layer != -1)
            hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
            hidden = hidden[0].float().cpu().numpy()
        if self.options["output"] == "sequence":
            return hidden.astype(np.float32)
        return hidden.mean(0).astype(np.float32)
