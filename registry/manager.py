"""Plugin discovery: load the ``mmbench`` entry points with pluggy, one failure at a time.

pluggy's own ``load_setuptools_entrypoints`` stops at the first broken plugin. Here each entry
point is loaded on its own: a plugin that fails to import (any exception, ``SystemExit`` from
``sys.exit()`` included; only ``KeyboardInterrupt`` passes) is recorded (name, distribution,
error) and skipped, so the rest keep working. ``MMBENCH_STRICT_PLUGINS=1`` turns any such
failure into an error. ``MMBENCH_DISABLE_PLUGINS=a,b`` skips the named entry points.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import pluggy

from mmbench.errors import PluginError
from mmbench.registry import hookspecs
from mmbench.registry.registry import PluginInfo, Registry

ENTRY_POINT_GROUP = "mmbench"
PROJECT = "mmbench"

_cached: tuple[Registry, pluggy.PluginManager] | None = None


def _strict() -> bool:
    return os.environ.get("MMBENCH_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def _disabled() -> set[str]:
    raw = os.environ.get("MMBENCH_DISABLE_PLUGINS", "")
    return {p.strip() for p in raw.split(",") if p.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points()
    selected = (
        eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    )
    # The same distribution can be visible twice (e.g. an editable install plus a build dir).
    seen, out = set(), []
    for ep in selected:
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return out


def _fail(info: PluginInfo, registry: Registry, message: str, exc: BaseException) -> None:
    info.error = message
    registry.problems.append(message)
    if _strict():
        raise PluginError(message + " (MMBENCH_STRICT_PLUGINS=1)") from exc


def _hook_names(plugin: object) -> list[str]:
    return sorted(n for n in dir(plugin) if n.startswith("mmbench_") and callable(getattr(plugin, n, None)))


def build_registry(
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> tuple[Registry, pluggy.PluginManager]:
    """Load every entry-point plugin (plus ``extra_plugins``) and collect their registrations."""
    registry = Registry()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    disabled = _disabled()
    candidates: list[tuple[PluginInfo, Any]] = []

    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        if ep.name in disabled:
            info.error = "disabled by MMBENCH_DISABLE_PLUGINS"
            registry.plugins.append(info)
            continue
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit or any other exception at import: isolated too
            registry.plugins.append(info)
            _fail(
                info,
                registry,
                f"plugin {ep.name!r} from distribution {info.distribution!r} failed to load: "
                f"{type(exc).__name__}: {exc}",
                exc,
            )
            continue
        info.location = getattr(plugin, "__file__", None)
        candidates.append((info, plugin))

    for name, plugin in extra_plugins:
        candidates.append((PluginInfo(name=name, location=getattr(plugin, "__file__", None)), plugin))

    for info, plugin in candidates:
        registry.plugins.append(info)
        try:
            pm.register(plugin, name=info.name)
        except Exception as exc:
            _fail(info, registry, f"plugin {info.name!r} could not be registered: {exc}", exc)
            continue
        info.hooks = _hook_names(plugin)

    for hook_name in hookspecs.REGISTRATION_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = next(p for p in registry.plugins if p.name == impl.plugin_name)
            registry._current = info
            try:
                impl.function(registry=registry)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                _fail(
                    info,
                    registry,
                    f"plugin {info.name!r} (distribution {info.distribution!r}) raised in "
                    f"{hook_name}: {type(exc).__name__}: {exc}",
                    exc,
                )
            finally:
                registry._current = None
    return registry, pm


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    return _get(refresh)[0]


def get_plugin_manager(refresh: bool = False) -> pluggy.PluginManager:
    return _get(refresh)[1]


def _get(refresh: bool) -> tuple[Registry, pluggy.PluginManager]:
    global _cached
    if _cached is None or refresh:
        _cached = build_registry()
    return _cached


def set_registry(registry: Registry, pm: pluggy.PluginManager) -> None:
    """Install a registry built elsewhere (tests use this to add in-process plugins)."""
    global _cached
    _cached = (registry, pm)


def registry_state() -> tuple[Registry, pluggy.PluginManager] | None:
    """The installed ``(registry, plugin manager)``, or None before the first lookup (for
    :func:`restore_registry` after a temporary :func:`set_registry`)."""
    return _cached


def restore_registry(state: tuple[Registry, pluggy.PluginManager] | None) -> None:
    """Put back what :func:`registry_state` returned (None: rebuild from entry points when next used)."""
    global _cached
    _cached = state


def call_lifecycle(hook_name: str, **kwargs: Any) -> None:
    """Call a lifecycle hook on every plugin; a plugin that raises fails with its name."""
    pm = get_plugin_manager()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames})
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a hook calling sys.exit() fails its run, not the process
            raise PluginError(
                f"plugin {impl.plugin_name!r} raised in {hook_name}: {type(exc).__name__}: {exc}"
            ).with_traceback(sys.exc_info()[2]) from exc
