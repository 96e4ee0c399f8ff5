"""mmbench.formats.safe_pickle: feature pickles load; pickles that would import code are refused unrun."""

from __future__ import annotations

import collections
import functools
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

from mmbench.errors import DataError
from mmbench.formats.safe_pickle import safe_load


def _features() -> dict:
    return {
        "videoIDs": {"Ses01F_impro01": ["Ses01F_impro01_F000", "Ses01F_impro01_M001"]},
        "videoText": {"Ses01F_impro01": [np.arange(4, dtype=np.float32), np.ones(4, dtype=np.float32)]},
        "videoAudio": {"Ses01F_impro01": np.linspace(0, 1, 6).reshape(2, 3)},
        "videoLabels": {"Ses01F_impro01": [np.int64(2), 3]},
        "trainVid": {"Ses01F_impro01"},
        "testVid": frozenset(),
        "meta": (1.5, complex(1, 2), b"raw", bytearray(b"x"), None, True, slice(1, 3)),
        "ordered": collections.OrderedDict(a=1),
        "grouped": collections.defaultdict(list, {"k": [1]}),
        "scalar": np.float32(0.25),
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_feature_pickle_loads(tmp_path, protocol):
    path = tmp_path / "features.pkl"
    original = _features()
    path.write_bytes(pickle.dumps(original, protocol=protocol))
    loaded = safe_load(path)
    assert set(loaded) == set(original)
    text = loaded["videoText"]["Ses01F_impro01"]
    assert text[0].dtype == np.float32 and np.array_equal(text[0], np.arange(4))
    assert np.array_equal(loaded["videoAudio"]["Ses01F_impro01"], original["videoAudio"]["Ses01F_impro01"])
    assert loaded["trainVid"] == {"Ses01F_impro01"} and loaded["meta"] == original["meta"]
    assert loaded["grouped"]["k"] == [1] and loaded["grouped"].default_factory is list
    assert loaded["scalar"] == np.float32(0.25)


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    command = f"touch {marker}"
    return {
        "os.system": _Payload(os.system, command),
        "subprocess": _Payload(subprocess.call, ["touch", str(marker)]),
        "eval": _Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        "partial": _Payload(functools.partial(os.system, command)),
        "exec in a list": [1, 2, _Payload(exec, f"open({str(marker)!r}, 'w').close()")],
        "getattr": _Payload(getattr, "text", "upper"),
    }


@pytest.mark.parametrize("kind", ["os.system", "subprocess", "eval", "partial", "exec in a list", "getattr"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_code_payload_is_refused_and_does_not_run(tmp_path, kind, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "IEMOCAP_features.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)[kind], protocol=protocol))
    with pytest.raises(DataError) as err:
        safe_load(path)
    message = str(err.value)
    assert str(path) in message and "refused to load" in message and "may try to run code" in message
    assert not marker.exists()


def test_refusal_names_the_import(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload(os.system, "true"), protocol=2))
    with pytest.raises(DataError, match=r"wants to import (posix|nt|os)\.system"):
        safe_load(path)


def test_codecs_encode_only_for_text_codecs(tmp_path):
    # protocol-2 pickles store bytes as _codecs.encode(text, "latin1"); other codecs are refused
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(DataError, match="refused to load"):
        safe_load(path)


def _py2_array_pickle(values: np.ndarray) -> bytes:
    """A protocol-2 pickle as Python 2 + numpy 1.x wrote it: py2 module names, byte strings as 'U'/'T'."""

    def glob(module: str, name: str) -> bytes:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def pystr(raw: bytes) -> bytes:  # py2 str: SHORT_BINSTRING / BINSTRING
        return b"U" + bytes([len(raw)]) + raw if len(raw) < 256 else b"T" + struct.pack("<i", len(raw)) + raw

    descr = values.dtype.str  # e.g. '<f4'
    array = (
        glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray")
        + b"K\x00\x85"
        + pystr(b"b")
        + b"\x87R("  # _reconstruct(ndarray, (0,), 'b'), then MARK for the state tuple
        + b"K\x01"
        + b"K"
        + bytes([values.shape[0]])
        + b"\x85"  # version 1, shape (n,)
        + glob("numpy", "dtype")
        + pystr(descr[1:].encode())
        + b"K\x00K\x01\x87R("  # dtype('f4', 0, 1) + MARK for its state
        + b"K\x03"
        + pystr(descr[:1].encode())
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state
        + b"\x89"  # not Fortran order
        + pystr(values.tobytes())
        + b"tb"
    )
    return (
        b"\x80\x02}("  # dict
        + pystr(b"videoAudio")
        + array
        + pystr(b"trainVid")
        + glob("__builtin__", "set")
        + b"]"
        + pystr(b"Ses01")
        + b"a\x85R"
        + b"u."
    )


def test_python2_latin1_numpy_pickle_loads(tmp_path):
    values = np.array([0.5, -1.25, 3.0, 1e-3, 128.0], dtype=np.float32)  # bytes above 0x7f included
    path = tmp_path / "IEMOCAP_features_py2.pkl"
    path.write_bytes(_py2_array_pickle(values))
    loaded = safe_load(path)
    assert loaded["trainVid"] == {"Ses01"}
    assert loaded["videoAudio"].dtype == np.float32
    assert np.array_equal(loaded["videoAudio"], values)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a pickle at all\n", b"Utterance,Emotion\nhi,neu\n", None],
    ids=["empty", "text", "csv", "truncated"],
)
def test_garbage_is_a_data_error(tmp_path, content):
    path = tmp_path / "features.pkl"
    if content is None:
        content = pickle.dumps(_features(), protocol=4)[:-40]
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        safe_load(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        safe_load(tmp_path / "nope.pkl")
