"""mmbench: a benchmark framework for multimodal fusion methods.

The import is deliberately light: nothing here imports torch, so ``mmbench --help`` and
``mmbench list`` start fast. Heavy modules are imported where a model is built or trained.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
