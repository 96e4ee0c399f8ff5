"""The registry of datasets, encoders and fusions: lazy entries looked up by name.

An entry is a name, a one-line summary and an ``"module:attr"`` import path; the module is
imported only when the entry is built, so listing plugins never imports torch.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Any

from mmbench.errors import PluginError, UnknownNameError

KINDS = ("dataset", "encoder", "fusion", "extractor", "tracker", "executor", "context")


@dataclass
class PluginInfo:
    """One loaded plugin: the entry point (or in-process object) and what it registered."""

    name: str
    distribution: str | None = None
    version: str | None = None
    location: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "location": self.location,
            "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items()},
            "error": self.error,
        }


@dataclass
class Entry:
    """A lazily imported plugin object."""

    kind: str
    name: str
    target: str
    summary: str = ""
    plugin: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """Import and return the object the target names."""
        module_name, _, attr = self.target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # report the plugin, not a bare ImportError (or a sys.exit())
            raise PluginError(
                f"{self.kind} {self.name!r} (plugin {self.plugin}) cannot be imported from "
                f"{self.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return obj

    def create(self, **kwargs: Any) -> Any:
        """Instantiate the target class (or call the factory)."""
        return self.load()(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "summary": self.summary,
            "target": self.target,
            "plugin": self.plugin,
        }


class Registry:
    """Named datasets, encoders and fusions, pushed in by plugins' registration hooks."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.plugins: list[PluginInfo] = []
        self.problems: list[str] = []
        self._current: PluginInfo | None = None

    # -------------------------------------------------------------- registering
    def _add(self, kind: str, name: str, target: str, summary: str, extra: dict) -> None:
        if ":" not in target:
            raise ValueError(f"target {target!r} must look like 'package.module:attr'")
        plugin = self._current.name if self._current else None
        existing = self._entries[kind].get(name)
        if existing is not None:
            self.problems.append(
                f"{kind} {name!r} from plugin {plugin} ignored: already registered by plugin "
                f"{existing.plugin}"
            )
            return
        self._entries[kind][name] = Entry(kind, name, target, summary, plugin, dict(extra))
        if self._current is not None:
            self._current.registered.setdefault(kind, []).append(name)

    def add_dataset(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register a dataset. ``extra`` may hold ``protocol`` (path of a default protocol)."""
        self._add("dataset", name, target, summary, extra)

    def add_encoder(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register an encoder."""
        self._add("encoder", name, target, summary, extra)

    def add_fusion(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register a fusion method."""
        self._add("fusion", name, target, summary, extra)

    def add_extractor(
        self, name: str, target: str, summary: str = "", *, modality: str, column: str, **extra: Any
    ) -> None:
        """Register a raw-media feature extractor for ``mmbench extract``.

        ``modality`` is the media it reads (``audio`` or ``visual``); ``column`` the default output
        column of the reference table layout (``V1``, ``A2``, ...).
        """
        self._add("extractor", name, target, summary, dict(extra, modality=modality, column=column))

    def add_tracker(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register an experiment tracker (``--track NAME``): a ``mmbench.contracts.Tracker``."""
        self._add("tracker", name, target, summary, extra)

    def add_executor(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register an executor (where sweep cells and tuning workers run)."""
        self._add("executor", name, target, summary, extra)

    def add_context_model(self, name: str, target: str, summary: str = "", **extra: Any) -> None:
        """Register a dialogue context model (kind ``context``; see ``docs/context.md``)."""
        self._add("context", name, target, summary, extra)

    # ----------------------------------------------------------------- lookups
    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        """Registered names of a kind, optionally filtered by a shell-style wildcard."""
        names = sorted(self._entries[kind])
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def entries(self, kind: str) -> list[Entry]:
        return [self._entries[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Entry:
        """The entry of that name, or ``UnknownNameError`` with suggestions."""
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self.names(kind)) from None

    def create(self, kind: str, name: str, **kwargs: Any) -> Any:
        return self.get(kind, name).create(**kwargs)

    def plugin_of(self, kind: str, name: str) -> PluginInfo | None:
        entry = self.get(kind, name)
        return next((p for p in self.plugins if p.name == entry.plugin), None)
