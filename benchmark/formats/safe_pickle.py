"""Load feature pickles (DialogueRNN layout) without letting them run code.

A pickle can name any importable callable and have the loader call it; that is how a malicious
file runs code. :func:`safe_load` uses an unpickler whose ``find_class`` hands out only plain
data types (containers, scalars, strings, bytes) and numpy's array/dtype/scalar reconstructors;
any other name is refused before it is imported. Python 2 pickles (protocol 0-2, byte strings
read as latin-1, as numpy requires) load too.

Allocation and nesting are bounded as well: a 30-byte pickle can ask for ``bytearray(2**30)``,
``list(range(10**9))`` or an object array of a billion elements (numpy allocates it, then may
crash), and a 5,000-deep nesting breaks any recursive reader. The allowed constructors refuse a
size argument, ``range`` longer than :data:`MAX_ITEMS`, array states whose element count does not
match their data, and a loaded object nested deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import codecs
import collections
import functools
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
#: Longest ``range`` a pickle may build (``list(range(n))`` is the cheap way to ask for memory).
MAX_ITEMS = 10_000_000
#: Deepest nesting of containers in a loaded pickle (feature pickles nest three or four levels).
MAX_DEPTH = 100
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


class _TooLarge(_Refused):
    """A pickle asking for memory or nesting beyond the bounds (not for code)."""


def _sized(kind: type) -> Any:
    """``bytes``/``bytearray`` without the ``bytes(n)`` form (n zero bytes: memory on request)."""

    def build(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise _TooLarge(f"{kind.__name__}({args[0]}) (a size, not data)")
        return kind(*args)

    return build


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise _TooLarge(f"range of {len(r):,} items (limit {MAX_ITEMS:,})")
    return r


@functools.cache
def _guarded_array_type() -> type:
    import numpy as np

    class GuardedArray(np.ndarray):
        """An ndarray whose pickle state is checked before numpy allocates for it."""

        def __setstate__(self, state: Any) -> None:
            check_array_state(state)
            super().__setstate__(state)

    return GuardedArray


def check_array_state(state: Any) -> None:
    """Refuse an ndarray pickle state whose shape does not match its data (before allocating).

    numpy allocates ``prod(shape)`` elements for an object array before it looks at the data, and
    may crash when they do not match; a plain array's data must hold exactly its bytes.
    """
    import numpy as np

    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise _TooLarge("an array state of unexpected form")
    shape, dtype, data = state[-4], state[-3], state[-1]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _TooLarge(f"an array of shape {shape!r}")
    n = 1
    for d in shape:
        n *= d
    if not isinstance(dtype, np.dtype):
        raise _TooLarge("an array state without a dtype")
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != n:
            raise _TooLarge(
                f"an object array of shape {shape} with {len(data) if isinstance(data, list) else 0:,} items"
            )
    elif not isinstance(data, (bytes, bytearray, str)) or len(data) != n * dtype.itemsize:
        raise _TooLarge(f"an array of shape {shape} and dtype {dtype} whose data has another size")


def _resolve(module: str, name: str) -> Any:
    """The object a pickle may ask for under (module, name), or None when it is not allowed."""
    if module == "builtins" and name in ("bytes", "bytearray"):
        return _sized(getattr(builtins, name))
    if module == "builtins" and name == "range":
        return _range
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
            return _guarded_array_type() if name == "ndarray" else getattr(np, name)
        try:
            from numpy._core import multiarray, numeric  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray, numeric
        if name == "_reconstruct":
            return _reconstruct
        return getattr(multiarray if module.endswith("multiarray") else numeric, name)
    return None


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """numpy's ``_reconstruct`` building a :class:`GuardedArray` (empty; the state fills it)."""
    import numpy as np

    if not isinstance(subtype, type) or not issubclass(subtype, np.ndarray):
        raise _Refused(f"_reconstruct of {subtype!r}")
    if not isinstance(shape, tuple) or any(not isinstance(d, int) or d != 0 for d in shape[:1]):
        raise _TooLarge(f"_reconstruct with shape {shape!r}")
    return np.ndarray.__new__(_guarded_array_type(), shape, dtype)


def _finish(obj: Any) -> Any:
    """Check the nesting depth (iteratively) and turn guarded arrays back into plain ndarrays."""
    import numpy as np

    stack = [(obj, 0)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _TooLarge(f"data nested deeper than {MAX_DEPTH} levels")
        if id(node) in seen:
            continue
        if isinstance(node, (list, tuple, set, frozenset)):
            seen.add(id(node))
            stack.extend((c, depth + 1) for c in node)
        elif isinstance(node, dict):
            seen.add(id(node))
            stack.extend((c, depth + 1) for c in node.values())
        elif isinstance(node, np.ndarray) and node.dtype.hasobject:
            seen.add(id(node))
            stack.extend((c, depth + 1) for c in node.flat)
    return _plain(obj, np)


def _plain(node: Any, np: Any) -> Any:
    """``node`` with every guarded array viewed as a plain ndarray (depth already bounded)."""
    if isinstance(node, np.ndarray):
        if node.dtype.hasobject:
            flat = node.reshape(-1)
            for i in range(flat.size):
                flat[i] = _plain(flat[i], np)
        return node.view(np.ndarray) if type(node) is not np.ndarray else node
    if isinstance(node, list):
        node[:] = [_plain(c, np) for c in node]
        return node
    if isinstance(node, dict):
        for k in list(node):
            node[k] = _plain(node[k], np)
        return node
    if isinstance(node, tuple):
        return tuple(_plain(c, np) for c in node)
    return node


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
            return _finish(RestrictedUnpickler(fh, encoding="latin1").load())
    except _TooLarge as exc:
        raise DataError(f"refused to load: the pickle asks for {exc.what}", path=path) from None
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
        RecursionError,
    ) as exc:
        raise DataError(
            f"not a readable pickle (truncated or not a pickle file: {type(exc).__name__}: {exc})", path=path
        ) from None
