"""Resource bombs are refused, naming the file, with peak memory under 500 MB (issue 19, kind 6).

Every bomb is read in a fresh Python process whose peak resident memory (``VmHWM`` of
``/proc/self/status``, else ``ru_maxrss``) is checked; the bombs are written by
``tests/formats/bombs.py`` at test time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import DataError
from mmbench.formats import spreadsheet, xlsx
from mmbench.formats.safe_pickle import safe_load
from tests.formats import bombs

ROOT = Path(__file__).resolve().parents[2]
LIMIT_KB = 500 * 1024

PROBE = """
import resource, sys
from pathlib import Path
from mmbench.errors import MMBenchError


def peak_kb():
    # VmHWM belongs to this process image; ru_maxrss would also count the parent's memory copied
    # at fork (Linux keeps the larger of the two across exec).
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


kind, path = sys.argv[1], Path(sys.argv[2])
try:
    if kind == "xlsx":
        from mmbench.formats.spreadsheet import read_feature_table
        read_feature_table(path, ["V1"], ["Emotion"])
    elif kind == "pickle":
        from mmbench.formats.safe_pickle import safe_load
        safe_load(path)
    elif kind == "protocol":
        from mmbench.protocol import load_protocol
        load_protocol("synthetic", None, path, [])
    elif kind == "set":
        from mmbench.protocol import load_protocol
        load_protocol("synthetic", None, None, ["data.note=" + path.read_text()])
    elif kind == "prosody":
        from mmbench.plugins.extractors.audio import prosody_features
        import numpy as np
        seconds = int(path.name)
        t = np.arange(16000 * seconds) / 16000
        x = (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(3 * t))).astype(np.float32)
        del t
        base = peak_kb()
        prosody_features(x, 16000)
        print("GROWTH_KB", peak_kb() - base)
    print("ACCEPTED")
except MMBenchError as exc:
    print("REFUSED", exc)
print("PEAK_KB", peak_kb())
"""


def _probe(kind: str, path: Path) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        out[key] = rest
    return out


def _write(tmp_path: Path, name: str, payload: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
    return path


BOMBS = {
    "xlsx 35 million empty rows": (
        "xlsx",
        lambda d: bombs.empty_rows_xlsx(d / "rows.xlsx"),
        "decompression bomb",
    ),
    "xlsx 200 MB shared string": (
        "xlsx",
        lambda d: bombs.shared_strings_xlsx(d / "ss.xlsx"),
        "decompression bomb",
    ),
    "yaml billion laughs --protocol": (
        "protocol",
        lambda d: _write(d, "laughs.yaml", bombs.billion_laughs_yaml()),
        "expands to 490,329,064 values",
    ),
    "yaml billion laughs --set": (
        "set",
        lambda d: _write(d, "laughs.txt", bombs.billion_laughs_yaml(flow=True)),
        "--set data.note: refused: expands to",
    ),
    "pickle bytearray(2**30)": (
        "pickle",
        lambda d: _write(d, "b.pkl", bombs.pickle_bytearray()),
        "bytearray",
    ),
    "pickle list(range(10**9))": (
        "pickle",
        lambda d: _write(d, "r.pkl", bombs.pickle_list_of_range()),
        "range",
    ),
    "pickle object array 2**27": (
        "pickle",
        lambda d: _write(d, "o.pkl", bombs.pickle_object_array()),
        "object array",
    ),
    "pickle nested 5000 deep": (
        "pickle",
        lambda d: _write(d, "n.pkl", bombs.pickle_nested()),
        "nested deeper",
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused_naming_the_file_under_500_mb(name, tmp_path):
    kind, build, fragment = BOMBS[name]
    path = build(tmp_path)
    assert path.stat().st_size < 1 << 20, "a bomb is small"
    out = _probe(kind, path)
    assert "REFUSED" in out, out
    assert fragment in out["REFUSED"]
    if kind in ("xlsx", "pickle", "protocol"):
        assert str(path) in out["REFUSED"]
    assert int(out["PEAK_KB"]) < LIMIT_KB, f"{name}: peak {int(out['PEAK_KB']) // 1024} MB"


def test_row_limit_and_bounded_memory_without_the_ratio_check(tmp_path, monkeypatch):
    """With the compression check out of the way, 35 million empty rows still stop at Excel's
    1,048,576-row limit, in bounded memory (rows are dropped once read)."""
    path = bombs.empty_rows_xlsx(tmp_path / "rows.xlsx", 1_100_000)
    monkeypatch.setattr(xlsx, "RATIO_FROM_BYTES", 1 << 40)
    with pytest.raises(DataError, match="more than 1,048,576 rows") as err:
        spreadsheet.read_feature_table(path, ["V1"], ["Emotion"])
    assert str(path) in str(err.value)


def test_rows_above_the_limit_are_refused_by_number(tmp_path):
    body = b'<row r="2000000"><c r="A2000000" t="inlineStr"><is><t>[1.0]</t></is></c></row>'
    path = bombs._workbook(tmp_path / "far.xlsx", body)
    with pytest.raises(DataError, match="more than 1,048,576 rows"):
        spreadsheet.read_feature_table(path, ["V1"], ["Emotion"])


def test_a_real_pickle_still_loads_as_plain_arrays(tmp_path):
    import pickle

    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(["x", 1], dtype=object)}
    path = _write(tmp_path / "", "ok.pkl", pickle.dumps((value, [value["a"]]), protocol=2))
    loaded, listed = safe_load(path)
    assert type(loaded["a"]) is np.ndarray and type(listed[0]) is np.ndarray
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["b"].tolist() == ["x", 1]


def test_prosody_memory_does_not_grow_with_the_clip(tmp_path):
    """Prosody of 20 s and of 80 s of audio: extra working memory stays flat (the whole-clip
    version grew 3.4 MB per second of audio: 200 MB more for the longer clip)."""
    short = _probe("prosody", tmp_path / "20")
    long = _probe("prosody", tmp_path / "80")
    grow_short, grow_long = int(short["GROWTH_KB"]), int(long["GROWTH_KB"])
    assert grow_long - grow_short < 40 * 1024, (grow_short, grow_long)


def test_chunked_prosody_equals_the_whole_clip_computation():
    from mmbench.plugins.extractors.audio import prosody_features

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 5) / 16000
    x = (0.3 * np.sin(2 * np.pi * (150 + 30 * np.sin(t)) * t) + 0.05 * rng.normal(size=len(t))).astype(
        np.float32
    )
    x[16000:24000] = 0
    whole = prosody_features(x, 16000, chunk_frames=10**9)
    np.testing.assert_array_equal(prosody_features(x, 16000, chunk_frames=37), whole)
    np.testing.assert_array_equal(prosody_features(x, 16000), whole)
