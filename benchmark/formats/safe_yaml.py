"""YAML from users (``--protocol``, ``--set``, ``--params``, ``--space``) read with bounded size.

``yaml.safe_load`` runs no code, but YAML aliases let a few hundred bytes stand for billions of
values ("billion laughs"): PyYAML builds them as shared references, and the first ``json.dumps``
or deep copy expands them (5.5 GB from a 582-byte protocol). :func:`load_yaml` counts the values
the document expands to, sharing included, without expanding it, and refuses more than
``max_values`` or a nesting deeper than ``max_depth``.
"""

from __future__ import annotations

from typing import Any

import yaml

from mmbench.errors import UsageError

#: Values (scalars, lists, mappings) a user document may expand to; a protocol holds a few hundred.
MAX_VALUES = 100_000
#: Nesting depth; a protocol nests four levels.
MAX_DEPTH = 64


def expanded_size(doc: Any, max_depth: int = MAX_DEPTH) -> int:
    """Number of values ``doc`` holds once every shared reference is expanded (linear time).

    Raises ``ValueError`` for a nesting deeper than ``max_depth`` or a self-referencing document.
    """
    sizes: dict[int, int] = {}
    # Iterative post-order walk: deep documents cannot exhaust Python's recursion limit.
    stack: list[tuple[Any, int, bool]] = [(doc, 0, False)]
    active: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        key = id(node)
        children = list(node.values()) + list(node.keys()) if isinstance(node, dict) else node
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) if isinstance(c, (list, dict)) else 1 for c in children)
            continue
        if key in sizes:
            continue
        if key in active:
            raise ValueError("the document refers to itself")
        if depth > max_depth:
            raise ValueError(f"it nests deeper than {max_depth} levels")
        active.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, (list, dict)))
    return sizes.get(id(doc), 1)


def load_yaml(text: str, source: str, max_values: int = MAX_VALUES) -> Any:
    """``yaml.safe_load(text)`` with its expansion bounded; a UsageError naming ``source`` otherwise.

    ``yaml.YAMLError`` is left to the caller (each reports bad syntax in its own words).
    """
    try:
        doc = yaml.safe_load(text)
    except RecursionError:
        raise UsageError(f"{source}: nests too deeply to be read") from None
    try:
        size = expanded_size(doc)
    except ValueError as exc:
        raise UsageError(f"{source}: refused: {exc}") from None
    if size > max_values:
        raise UsageError(
            f"{source}: refused: expands to {size:,} values through YAML aliases (limit {max_values:,})"
        )
    return doc
