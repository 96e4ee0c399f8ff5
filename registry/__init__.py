"""mmbench's plugin system: hook specs, the registry and entry-point discovery.

Plugin authors need two names from here: ``hookimpl`` to mark their hook functions and
``Registry`` for type hints.
"""

import pluggy

from mmbench.registry.registry import Entry, PluginInfo, Registry

hookimpl = pluggy.HookimplMarker("mmbench")

__all__ = ["Entry", "PluginInfo", "Registry", "get_registry", "hookimpl"]


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry of datasets, encoders and fusions."""
    from mmbench.registry.manager import get_registry as _get

    return _get(refresh)
