"""Conformance test kit for mmbench plugins (``mmbench.testing``).

The kit is split by plugin kind (``fusion``, ``dataset``, ``encoder``, ``context``) with shared ``examples``;
import from ``mmbench.testing`` itself, which re-exports the public names below.

A plugin's own tests subclass one class per plugin and name what to test; pytest then runs every
check of the contract (see ``docs/plugins.md``)::

    from mmbench.testing import FusionConformance

    class TestMyFusion(FusionConformance):
        fusion_name = "my-fusion"
        distribution = "my-fusion"   # optional: also check the installed package registers it

The built-in plugins run through the same classes
(``tests/plugins/fusions/test_conformance_builtin.py``). Each class reads its configuration from
a class-scoped fixture (``fusion_case``, ``dataset_case``, ``encoder_case``) built from the class
attributes; override the fixture to compute it (a data file written to a temporary folder, a
parametrised list of plugins).

Plugins are looked up in the process-wide registry, exactly as ``mmbench run`` finds them, so
the package must be installed (``pip install -e .``); :func:`plugin_registry` adds in-process
plugin objects for tests that do not install anything.
"""

from mmbench.robustness.analysis import missing_key
from mmbench.testing.context import (
    ContextConformance,
    check_causal,
    check_long_dialogue,
    check_padding_invariance,
    check_uses_context,
)
from mmbench.testing.dataset import (
    DatasetCase,
    DatasetConformance,
    check_package_data_in_wheel,
    load_dataset,
)
from mmbench.testing.encoder import EncoderCase, EncoderConformance
from mmbench.testing.examples import example_batch, example_data, example_spec, plugin_registry
from mmbench.testing.fusion import FusionCase, FusionConformance, assert_batch_independent
from mmbench.testing.mmsa import write_mmsa_pickle

__all__ = [
    "ContextConformance",
    "DatasetCase",
    "DatasetConformance",
    "EncoderCase",
    "EncoderConformance",
    "FusionCase",
    "FusionConformance",
    "assert_batch_independent",
    "check_causal",
    "check_long_dialogue",
    "check_package_data_in_wheel",
    "check_padding_invariance",
    "check_uses_context",
    "example_batch",
    "example_data",
    "example_spec",
    "load_dataset",
    "missing_key",
    "plugin_registry",
    "write_mmsa_pickle",
]
