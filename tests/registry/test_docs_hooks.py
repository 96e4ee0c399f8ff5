"""docs/plugins.md stays true: every hook with its exact signature, every kit check, a working example."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

from mmbench.registry import hookspecs
from mmbench.testing import (
    DatasetConformance,
    EncoderConformance,
    FusionCase,
    FusionConformance,
    plugin_registry,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
TEXT = DOC.read_text()


def _hookspecs() -> list[str]:
    """Names of the functions marked as hook specifications in ``mmbench.registry.hookspecs``."""
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, marker, None) is not None
    )


def _signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in the source (annotations are strings)."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_hookspecs_are_found():
    names = _hookspecs()
    assert set(hookspecs.REGISTRATION_HOOKS) | set(hookspecs.LIFECYCLE_HOOKS) <= set(names)
    assert _signature("mmbench_register_fusions") == "mmbench_register_fusions(registry: Registry) -> None"


@pytest.mark.parametrize("name", _hookspecs())
def test_hook_documented_with_exact_signature(name):
    assert f"`{_signature(name)}`" in TEXT, f"docs/plugins.md must document `{_signature(name)}`"


CHECKS = [
    (kit.__name__, check)
    for kit in (FusionConformance, DatasetConformance, EncoderConformance)
    for check in sorted(n for n in dir(kit) if n.startswith("test_"))
]


@pytest.mark.parametrize("kit,check", CHECKS)
def test_kit_check_listed(kit, check):
    section = TEXT.split(f"### {kit} checks", 1)
    assert len(section) == 2, f"docs/plugins.md has no '### {kit} checks' section"
    body = section[1].split("\n### ", 1)[0]
    assert f"- `{check}`:" in body, f"{kit}.{check} is not listed under '### {kit} checks'"


def _code_block(after: str) -> str:
    """The first fenced code block following the line that mentions ``after``."""
    tail = TEXT.split(after, 1)[1]
    match = re.search(r"```\w*\n(.*?)```", tail, re.S)
    assert match, f"no code block after {after!r}"
    return match.group(1)


def test_hand_written_fusion_example_passes_the_kit(tmp_path, monkeypatch):
    """The worked example, copied from the docs as a user would, passes every fusion check."""
    pkg = tmp_path / "src" / "mmbench_gated_sum"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(_code_block("`src/mmbench_gated_sum/__init__.py`"))
    (pkg / "model.py").write_text(_code_block("`src/mmbench_gated_sum/model.py`"))
    assert 'gated-sum = "mmbench_gated_sum"' in _code_block("`pyproject.toml`:")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    try:
        module = importlib.import_module("mmbench_gated_sum")
        with plugin_registry(("gated-sum", module)):
            kit, case = FusionConformance(), FusionCase("gated-sum")
            for check in sorted(n for n in dir(kit) if n.startswith("test_")):
                method = getattr(kit, check)
                method(
                    **({"fusion_case": case} if "fusion_case" in inspect.signature(method).parameters else {})
                )
    finally:
        for key in [k for k in sys.modules if k.startswith("mmbench_gated_sum")]:
            del sys.modules[key]
