"""``mmbench extract``: audio/visual extractors on media the tests make, resumability, bad input."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.plugins.extractors import create_extractor
from mmbench.plugins.extractors.audio import (
    PROSODY_FEATURES,
    MfccExtractor,
    estimate_tempo,
    mfcc,
    onset_envelope,
    prosody_features,
)
from mmbench.plugins.extractors.media import load_audio, sample_frames
from mmbench.records import load_records

SR = 16000
runner = CliRunner()


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def clicks(bpm: float, seconds: float = 4.0, sr: int = SR) -> np.ndarray:
    """Short noise bursts every 60/bpm seconds."""
    x = np.zeros(int(seconds * sr))
    rng = np.random.default_rng(0)
    for start in np.arange(0, seconds, 60.0 / bpm):
        s = int(start * sr)
        x[s : s + 160] = rng.normal(scale=0.5, size=len(x[s : s + 160]))
    return x


def write_wav(path: Path, signal: np.ndarray, sr: int = SR, width: int = 2) -> Path:
    """Integer PCM WAV; a 2-D signal ``[samples, channels]`` gives a multi-channel file."""
    data = signal if signal.ndim == 2 else signal[:, None]
    scaled = np.clip(data, -1, 1 - 1e-9)
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(data.shape[1])
        fh.setsampwidth(width)
        fh.setframerate(sr)
        if width == 2:
            fh.writeframes((scaled * 32768).astype("<i2").tobytes())
        else:  # 24-bit little endian
            ints = (scaled * (1 << 23)).astype(np.int32).reshape(-1)
            fh.writeframes(
                np.stack([ints & 255, (ints >> 8) & 255, (ints >> 16) & 255], 1).astype(np.uint8).tobytes()
            )
    return path


def write_video(path: Path, n_frames: int = 12, audio_freq: float | None = 220.0) -> Path:
    """A tiny MPEG-4 clip whose frame ``i`` is flat grey ``20 * i`` (plus an AAC tone if asked)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream("aac", rate=SR) if audio_freq else None
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            samples = tone(audio_freq, 1.0, 0.3).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = SR
            for packet in [*sound.encode(frame), *sound.encode()]:
                out.mux(packet)
    return path


@pytest.fixture(scope="module")
def wav2vec2_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8, 8),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 4, 4),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    folder = tmp_path_factory.mktemp("w2v")
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    folder = tmp_path_factory.mktemp("resnet")
    ResNetModel(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(folder)
    return folder


def reference_mfcc(x: np.ndarray, sr: int, n_mfcc: int = 25, n_mels: int = 40) -> np.ndarray:
    """An independent, loop-based MFCC: explicit frames, full FFT, hand-built filters and DCT."""
    win, hop, n_fft = 400, 160, 512
    padded = np.concatenate([np.zeros(win // 2), x, np.zeros(win // 2)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    points = [700 * (10 ** (m / 2595) - 1) for m in np.linspace(0, mel(sr / 2), n_mels + 2)]
    out = []
    for start in range(0, len(padded) - win + 1, hop):
        frame = np.zeros(n_fft)
        frame[:win] = padded[start : start + win] * window
        power = np.abs(np.fft.fft(frame))[: n_fft // 2 + 1] ** 2
        energies = []
        for m in range(1, n_mels + 1):
            lo, mid, hi = points[m - 1], points[m], points[m + 1]
            weight = 0.0
            for k, p in enumerate(power):
                f = k * sr / n_fft
                if lo <= f <= mid:
                    weight += p * (f - lo) / (mid - lo)
                elif mid < f <= hi:
                    weight += p * (hi - f) / (hi - mid)
            energies.append(10 * np.log10(max(weight, 1e-10)))
        e = np.array(energies)
        coeffs = [
            np.sqrt((1 if k == 0 else 2) / n_mels)
            * np.sum(e * np.cos(np.pi * k * (2 * np.arange(n_mels) + 1) / (2 * n_mels)))
            for k in range(n_mfcc)
        ]
        out.append(coeffs)
    return np.array(out)


def test_mfcc_matches_an_independent_implementation_on_a_tone() -> None:
    x = tone(440, 0.2) + 0.01 * np.random.default_rng(1).normal(size=int(0.2 * SR))
    ours = mfcc(x, SR)
    ref = reference_mfcc(x, SR)
    assert ours.shape == ref.shape == (21, 25)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-2)


def test_mfcc_extractor_shapes_and_determinism(tmp_path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(300, 1.0))
    ex = create_extractor("mfcc", {}, "audio")
    first, second = ex.extract(path), ex.extract(path)
    assert first.shape == (25,) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    assert create_extractor("mfcc", {"pooling": "mean_std"}).extract(path).shape == (50,)
    frames = create_extractor("mfcc", {"pooling": "frames", "n_mfcc": "13"}).extract(path)
    assert frames.shape == (1 + SR // 160, 13)
    other = ex.extract(write_wav(tmp_path / "b.wav", tone(2000, 1.0)))
    assert not np.allclose(first, other)


def test_audio_loading_mixes_down_and_resamples(tmp_path) -> None:
    left = tone(220, 1.0, sr=44100)
    stereo = np.stack([left, left], axis=1)
    x = load_audio(write_wav(tmp_path / "s.wav", stereo, sr=44100), SR)
    assert abs(len(x) - SR) <= 1
    f0 = prosody_features(x, SR)[PROSODY_FEATURES.index("pitch_mean_hz")]
    assert abs(f0 - 220) < 2
    # one silent channel halves the amplitude of the mono mix
    half = load_audio(write_wav(tmp_path / "h.wav", np.stack([left, 0 * left], 1), sr=44100), SR)
    assert np.sqrt(np.mean(half**2)) == pytest.approx(0.5 * np.sqrt(np.mean(x**2)), rel=0.02)
    deep = load_audio(write_wav(tmp_path / "d.wav", tone(220, 0.5), width=3), SR)
    np.testing.assert_allclose(deep, tone(220, 0.5), atol=1e-5)


@pytest.mark.parametrize("freq", [110.0, 233.0, 420.0])
def test_prosody_pitch_matches_the_tone(freq: float) -> None:
    values = dict(zip(PROSODY_FEATURES, prosody_features(tone(freq, 0.8), SR), strict=True))
    assert values["pitch_mean_hz"] == pytest.approx(freq, rel=0.01)
    assert values["voiced_fraction"] > 0.8
    assert values["centroid_mean_hz"] == pytest.approx(freq, rel=0.1)
    assert values["zcr_mean"] == pytest.approx(2 * freq / SR, rel=0.1)


def test_prosody_energy_zcr_and_tempo_orderings() -> None:
    idx = PROSODY_FEATURES.index
    quiet, loud = prosody_features(tone(200, 1, 0.1), SR), prosody_features(tone(200, 1, 0.6), SR)
    assert loud[idx("rms_mean")] > 5 * quiet[idx("rms_mean")]
    assert loud[idx("rms_mean")] == pytest.approx(0.6 / np.sqrt(2), rel=0.05)
    low, high = prosody_features(tone(200, 1), SR), prosody_features(tone(2000, 1), SR)
    assert high[idx("zcr_mean")] > 5 * low[idx("zcr_mean")]
    assert high[idx("centroid_mean_hz")] > low[idx("centroid_mean_hz")]
    noise = prosody_features(np.random.default_rng(0).normal(scale=0.3, size=SR), SR)
    assert noise[idx("voiced_fraction")] < 0.2
    assert noise[idx("flatness_mean")] > 10 * low[idx("flatness_mean")]
    for bpm in (90.0, 120.0):
        env = onset_envelope(clicks(bpm, 6.0), SR)
        assert estimate_tempo(env, 100.0) == pytest.approx(bpm, rel=0.03)
    assert prosody_features(tone(200, 2), SR)[idx("tempo_bpm")] == 0.0  # a steady tone has no beat
    assert prosody_features(tone(200, 2), SR)[idx("duration_s")] == pytest.approx(2.0)


def test_wav2vec2_extractor_on_a_tiny_model(tmp_path, wav2vec2_dir) -> None:
    import torch
    from transformers import AutoModel

    path = write_wav(tmp_path / "a.wav", tone(180, 1.0))
    ex = create_extractor("wav2vec2", {"model": str(wav2vec2_dir)}, "audio")
    ident = ex.identity()
    assert len(ident["weights"]["weights_sha256"]) == 64 and "device" not in ident["options"]
    ex.ensure_ready()
    pooled = ex.extract(path)
    assert pooled.shape == (16,)
    seq = create_extractor("wav2vec2", {"model": str(wav2vec2_dir), "output": "sequence"})
    seq.ensure_ready()
    frames = seq.extract(path)
    assert frames.ndim == 2 and frames.shape[1] == 16 and frames.shape[0] > 10
    x = load_audio(path, SR)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    model = AutoModel.from_pretrained(str(wav2vec2_dir)).eval()
    with torch.inference_mode():
        direct = model(torch.from_numpy(x)[None]).last_hidden_state[0].mean(0).numpy()
    np.testing.assert_allclose(pooled, direct, atol=1e-5)


def test_sample_frames_picks_evenly_spaced_frames(tmp_path) -> None:
    video = write_video(tmp_path / "v.mp4", n_frames=12, audio_freq=None)
    frames = sample_frames(video, 4)
    levels = [float(f.mean()) for f in frames]
    np.testing.assert_allclose(levels, [0, 80, 140, 220], atol=6)  # frames 0, 4, 7, 11
    assert len(sample_frames(video, 30)) == 12  # a short clip gives all its frames


def test_frames_extractor_equals_the_backbone_mean(tmp_path, resnet_dir) -> None:
    import torch
    from transformers import AutoImageProcessor, AutoModel

    video = write_video(tmp_path / "v.mp4", audio_freq=None)
    ex = create_extractor("frames", {"model": str(resnet_dir), "num_frames": "3"}, "visual")
    ex.ensure_ready()
    got = ex.extract(video)
    assert got.shape == (16,)
    processor = AutoImageProcessor.from_pretrained(str(resnet_dir))
    model = AutoModel.from_pretrained(str(resnet_dir)).eval()
    with torch.inference_mode():
        pixels = processor(images=sample_frames(video, 3), return_tensors="pt")["pixel_values"]
        want = model(pixel_values=pixels).pooler_output.flatten(1).mean(0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def make_corpus(tmp_path: Path, n: int = 5) -> tuple[Path, Path]:
    wav = tmp_path / "wav"
    wav.mkdir()
    rows = []
    for i in range(n):
        write_wav(wav / f"Ses01F_u{i}.wav", tone(120 + 40 * i, 0.5, amp=0.2 + 0.1 * i))
        rows.append(
            {
                "File Name": f"Ses01F_u{i}",
                "Utterance": f"words {i}",
                "Emotion": ["ang", "hap"][i % 2],
                "Split": "test" if i == 4 else "train",
            }
        )
    manifest = tmp_path / "utterances.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, wav


def cells(series: pd.Series) -> np.ndarray:
    return np.stack([np.fromstring(c.strip("[]"), sep=",") for c in series])


def test_cli_extract_writes_table_and_manifest_and_a_rerun_does_no_work(tmp_path, wav2vec2_dir) -> None:
    manifest, wav = make_corpus(tmp_path)
    out = tmp_path / "features"
    args = [
        "extract", "--manifest", str(manifest), "--audio-dir", str(wav), "--output", str(out),
        "--encoder", "audio=mfcc", "--encoder", "audio=prosody",
        "--encoder", f"audio=wav2vec2:model={wav2vec2_dir}", "--workers", "2", "--format", "json",
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["computed"] == {"V2": 5, "V3": 5, "V1": 5} and summary["errors"] == []
    table = pd.read_csv(out / "features.csv")
    assert list(table.columns) == ["File Name", "Utterance", "V2", "V3", "V1", "Emotion", "Split"]
    assert cells(table["V2"]).shape == (5, 25) and cells(table["V3"]).shape == (5, 25)
    assert cells(table["V1"]).shape == (5, 16)
    direct = MfccExtractor({}).extract(wav / "Ses01F_u2.wav")
    np.testing.assert_allclose(cells(table["V2"])[2], direct, rtol=1e-6, atol=1e-6)
    pitch = cells(table["V3"])[:, PROSODY_FEATURES.index("pitch_mean_hz")]
    np.testing.assert_allclose(pitch, 120 + 40 * np.arange(5), rtol=0.01)
    meta = json.loads((out / "manifest.json").read_text())
    assert set(meta["encoders"]) == {"V1", "V2", "V3"}
    assert meta["encoders"]["V1"]["identity"]["weights"]["weights_sha256"]
    assert meta["encoders"]["V3"]["identity"]["dimensions"] == list(PROSODY_FEATURES)
    assert meta["encoders"]["V2"]["shape"] == [25]
    import hashlib

    want = hashlib.sha256((wav / "Ses01F_u0.wav").read_bytes()).hexdigest()
    assert meta["inputs"]["Ses01F_u0"]["audio"]["sha256"] == want
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["computed"] == {"V2": 0, "V3": 0, "V1": 0}
    assert summary["reused"] == {"V2": 5, "V3": 5, "V1": 5}


def test_killed_extraction_resumes_with_only_the_missing_parts(tmp_path, monkeypatch) -> None:
    manifest, wav = make_corpus(tmp_path)
    out = tmp_path / "features"
    args = ["extract", "-m", str(manifest), "--audio-dir", str(wav), "-o", str(out), "-e", "audio=mfcc@MF"]
    calls: list[str] = []
    real = MfccExtractor.extract

    def dying(self, path):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped after three files
        calls.append(Path(path).stem)
        return real(self, path)

    monkeypatch.setattr(MfccExtractor, "extract", dying)
    assert runner.invoke(app, args).exit_code == 130
    assert not (out / "features.csv").exists()
    assert len(list(out.glob(".parts/mfcc-*/*.npz"))) == 3
    monkeypatch.setattr(MfccExtractor, "extract", lambda self, p: calls.append(Path(p).stem) or real(self, p))
    calls.clear()
    assert runner.invoke(app, args).exit_code == 0
    assert sorted(calls) == ["Ses01F_u3", "Ses01F_u4"]
    # delete the table and two parts: only those two are recomputed
    (out / "features.csv").unlink()
    for part in sorted(out.glob(".parts/mfcc-*/*.npz"))[:2]:
        part.unlink()
    calls.clear()
    assert runner.invoke(app, args).exit_code == 0
    assert sorted(calls) == ["Ses01F_u0", "Ses01F_u1"]
    assert len(pd.read_csv(out / "features.csv")) == 5
    # a changed input file is recomputed, an unchanged one is not
    write_wav(wav / "Ses01F_u4.wav", tone(500, 0.5))
    calls.clear()
    assert runner.invoke(app, args).exit_code == 0
    assert calls == ["Ses01F_u4"]
    # other options are another encoder identity: everything is computed again
    calls.clear()
    assert runner.invoke(app, [*args[:-1], "audio=mfcc:n_mels=30@MF"]).exit_code == 0
    assert len(calls) == 5


def test_corrupt_clip_is_reported_and_skipped(tmp_path) -> None:
    manifest, wav = make_corpus(tmp_path)
    (wav / "Ses01F_u1.wav").write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "features"
    args = ["extract", "-m", str(manifest), "--audio-dir", str(wav), "-o", str(out), "-e", "audio=prosody"]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    errors = json.loads(res.stdout)["errors"]
    assert [(e["id"], e["row"]) for e in errors] == [("Ses01F_u1", 3)]
    assert "Ses01F_u1.wav" in errors[0]["file"]
    table = pd.read_csv(out / "features.csv")
    assert "Ses01F_u1" not in set(table["File Name"]) and len(table) == 4
    assert json.loads((out / "manifest.json").read_text())["errors"][0]["id"] == "Ses01F_u1"
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 2
    assert "Ses01F_u1.wav" in strict.output and "row 3" in strict.output


def test_bad_input_exits_2_with_one_message(tmp_path) -> None:
    manifest, wav = make_corpus(tmp_path)
    (wav / "Ses01F_u3.wav").unlink()
    base = ["extract", "-m", str(manifest), "--audio-dir", str(wav), "-o", str(tmp_path / "o")]
    res = runner.invoke(app, [*base, "-e", "audio=mfcc"])
    assert res.exit_code == 2
    assert "Ses01F_u3.wav" in res.output and "row 5" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, [*base, "-e", "audio=mfc"])
    assert res.exit_code == 2 and "mfcc" in res.output
    res = runner.invoke(app, [*base, "-e", "visual=mfcc"])
    assert res.exit_code == 2 and "audio=mfcc" in res.output
    res = runner.invoke(app, [*base, "-e", "audio=mfcc:n_mfc=3"])
    assert res.exit_code == 2 and "n_mfc" in res.output
    res = runner.invoke(app, [*base, "-e", "audio=wav2vec2"])
    assert res.exit_code == 2 and "model=" in res.output
    res = runner.invoke(app, [*base, "-e", "audio=wav2vec2:model=no-such-model-xyz"])
    assert res.exit_code == 2 and "not available offline" in res.output
    pd.read_csv(manifest).drop(columns=["Emotion"]).to_csv(tmp_path / "m2.csv", index=False)
    res = runner.invoke(
        app, ["extract", "-m", str(tmp_path / "m2.csv"), "--audio-dir", str(wav), "-e", "audio=mfcc"]
    )
    assert res.exit_code == 2 and "Emotion" in res.output and "m2.csv" in res.output
    res = runner.invoke(app, [*base, "-e", "audio=mfcc", "-e", "audio=mfcc:n_mfcc=13"])
    assert res.exit_code == 2 and "V2" in res.output


def test_cli_video_frames_and_sound_track(tmp_path, resnet_dir) -> None:
    mp4 = tmp_path / "mp4"
    mp4.mkdir()
    for i in range(2):
        write_video(mp4 / f"dia0_utt{i}.mp4", audio_freq=200.0 + 100 * i)
    manifest = tmp_path / "meld.csv"
    pd.DataFrame(
        {"id": ["dia0_utt0", "dia0_utt1"], "Utterance": ["hi", "yo"], "Emotion": ["joy", "anger"]}
    ).to_csv(manifest, index=False)
    out = tmp_path / "features"
    res = runner.invoke(
        app,
        [
            "extract", "-m", str(manifest), "--video-dir", str(mp4), "-o", str(out),
            "-e", "audio=prosody", "-e", f"visual=frames:model={resnet_dir},num_frames=4",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "features.csv")
    assert list(table.columns) == ["File Name", "Utterance", "V3", "A2", "Emotion"]
    assert cells(table["A2"]).shape == (2, 16)
    pitch = cells(table["V3"])[:, PROSODY_FEATURES.index("pitch_median_hz")]
    np.testing.assert_allclose(pitch, [200, 300], rtol=0.02)
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["encoders"]["A2"]["identity"]["options"]["num_frames"] == 4
    assert meta["inputs"]["dia0_utt1"]["video"]["sha256"]


def test_extract_then_run_gives_a_record(tmp_path) -> None:
    """The acceptance path: generated clips + manifest -> extract -> mmbench run on the table."""
    rng = np.random.default_rng(0)
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    rows = []
    # Six sessions' worth of ids (the iemocap plugin takes session 5 as test); the label sets the pitch.
    for session in range(1, 6):
        for i in range(16):
            label = ["neu", "ang", "sad"][i % 3]
            freq = {"neu": 180.0, "ang": 320.0, "sad": 120.0}[label] * (1 + 0.03 * rng.standard_normal())
            ident = f"Ses0{session}F_impro0{i // 4 + 1}_F{i:03d}"
            write_wav(wav_dir / f"{ident}.wav", tone(freq, seconds=0.5, amp=0.3 + 0.2 * rng.random()))
            rows.append(
                {"File Name": ident, "Utterance": f"utterance {i} of session {session}", "Emotion": label}
            )
    manifest = tmp_path / "utterances.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    out = tmp_path / "features"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "extract",
            "-m",
            str(manifest),
            "--audio-dir",
            str(wav_dir),
            "-e",
            "audio=mfcc",
            "-e",
            "audio=prosody",
            "-o",
            str(out),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["columns"] == {"audio": ["V2", "V3"]}
    command = summary["run_command"].split()
    assert command[:2] == ["mmbench", "run"]
    runs = tmp_path / "runs"
    res = runner.invoke(
        app,
        [
            *command[1:],
            "--fusion",
            "concat",
            "--seeds",
            "0",
            "--max-epochs",
            "3",
            "--out",
            str(runs),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    records = load_records(runs)
    assert len(records) == 1 and records[0]["status"] == "ok"
    assert records[0]["n_test"] == 16  # session 5


def test_sequence_columns_are_left_out_of_the_run_command(tmp_path) -> None:
    manifest, wav = make_corpus(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "extract",
            "-m",
            str(manifest),
            "--audio-dir",
            str(wav),
            "-e",
            "audio=mfcc:pooling=frames",
            "-e",
            "audio=prosody",
            "-o",
            str(tmp_path / "f"),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["sequence_columns"] == ["V2"]
    assert "data.audio_columns=[V3]" in summary["run_command"]
