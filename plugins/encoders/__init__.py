"""Built-in encoder plugins (registered lazily)."""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.encoders"


@hookimpl
def mmbench_register_encoders(registry: Registry) -> None:
    registry.add_encoder(
        "precomputed",
        f"{_PKG}.precomputed:PrecomputedEncoder",
        "Pass-through for feature vectors already in the data",
    )
