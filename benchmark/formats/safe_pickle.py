"""Load feature pickles (DialogueRNN layout) without letting them run code.

A pickle can name any importable callable and have the loader call it; that is how a malicious
file runs code. :func:`safe_load` uses an unpickler whose ``find_class`` hands out only plain
data types (containers, scalars, strings, bytes) and numpy's array/dtype/scalar reconstructors;
any other name is refused before it is imported. Python 2 pickles (protocol 0-2, byte strings
read as latin-1, as numpy requires) load too.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import codecs
import collections
import pickle
import struct
from pathlib import Path
from typing import Any

from mmbench.errors import DataError

_BUILTINS = (
    "list",
    "dict",
    "tuple",
    "set",
    "frozenset",
    "str",
    "int",
    "float",
    "bool",
    "complex",
    "bytes",
    "bytearray",
    "slice",
    "range",
)
# numpy <2 spells its core module ``numpy.core``, numpy >=2 ``numpy._core``; both resolve to the latter
_NUMPY = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
}
_LATIN1_LIKE = {"latin1", "latin_1", "iso8859_1", "iso_8859_1", "l1", "ascii", "utf8", "utf_8"}


def _bytes_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to text codecs: how protocol-2 pickles from Python 3 store bytes."""
    if codecs.lookup(encoding).name.replace("-", "_") not in _LATIN1_LIKE or not isinstance(obj, str):
        raise _Refused("_codecs.encode with codec " + repr(encoding))
    return codecs.encode(obj, encoding, errors)


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _resolve(module: str, name: str) -> Any:
    """The object a pickle may ask for under (module, name), or None when it is not allowed."""
    if module == "builtins" and name in _BUILTINS:
        return getattr(builtins, name)
    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        return getattr(collections, name)
    if module == "_codecs" and name == "encode":
        return _bytes_encode
    if module.startswith("numpy._core."):
        module = "numpy.core." + module[len("numpy._core.") :]
    if (module, name) in _NUMPY:
        import numpy as np

        if module == "numpy":
            return getattr(np, name)
        try:
            from numpy._core import multiarray, numeric  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray, numeric
        return getattr(multiarray if module.endswith("multiarray") else numeric, name)
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only data types and numpy array reconstruction (see module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__, copy_reg, ...) -> Python 3 names, as pickle itself does
        original = f"{module}.{name}"
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        found = _resolve(module, name)
        if found is None:
            raise _Refused(original)
        return found


def safe_load(path: Path) -> Any:
    """Load a feature pickle, refusing any pickle that would import code beyond data types and numpy."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", path=path)
    try:
        with path.open("rb") as fh:
            return RestrictedUnpickler(fh, encoding="latin1").load()
    except _Refused as exc:
        raise DataError(
            f"refused to load: the pickle wants to import {exc.what}, which a feature file never needs; "
            "it may try to run code",
            path=path,
        ) from None
    except MemoryError:
        raise DataError(
            "refused to load: the pickle asks for more memory than is available", path=path
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        LookupError,
        OverflowError,
        struct.error,
        UnicodeError,
    ) as exc:
        raise DataError(
            f"not a readable pickle (truncated or not a pickle file: {type(exc).__name__}: {exc})", path=path
        ) from None
