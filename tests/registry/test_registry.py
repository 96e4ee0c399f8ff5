"""Plugin discovery, lazy registration, broken plugins and did-you-mean."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmbench.errors import PluginError, UnknownNameError
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry


def test_builtins_come_from_entry_points():
    registry, _ = build_registry()
    entry = registry.get("fusion", "cross_attention")
    assert entry.plugin == "builtin-fusions"
    info = registry.plugin_of("fusion", "cross_attention")
    assert info.distribution == "mmbench"
    assert "mmbench_register_fusions" in info.hooks


def test_unknown_name_suggests_close_matches():
    registry, _ = build_registry()
    with pytest.raises(UnknownNameError) as exc:
        registry.get("fusion", "cross_atention")
    msg = str(exc.value)
    assert "Did you mean 'cross_attention'" in msg
    assert "concat" in msg and "late" in msg


def test_wildcards():
    registry, _ = build_registry()
    assert registry.names("fusion", "c*") == ["concat", "cross_attention"]


class _InProcessPlugin:
    @hookimpl
    def mmbench_register_fusions(self, registry: Registry) -> None:
        registry.add_fusion("my_fusion", "mmbench.plugins.fusions.concat:ConcatFusion", "test")


class _RaisingPlugin:
    @hookimpl
    def mmbench_register_fusions(self, registry: Registry) -> None:
        raise RuntimeError("boom")


def test_extra_plugin_and_raising_hook_isolated(monkeypatch):
    registry, _ = build_registry([("mine", _InProcessPlugin()), ("bad", _RaisingPlugin())])
    assert "my_fusion" in registry.names("fusion")
    assert "cross_attention" in registry.names("fusion")
    bad = next(p for p in registry.plugins if p.name == "bad")
    assert "boom" in bad.error
    monkeypatch.setenv("MMBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="boom"):
        build_registry([("bad", _RaisingPlugin())])


def _broken_distribution(root: Path) -> None:
    """A distribution whose `mmbench` entry point imports a module that raises."""
    (root / "broken_mmbench_plugin.py").write_text("raise ImportError('missing dependency xyz')\n")
    dist = root / "broken_mmbench_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-mmbench-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mmbench]\nbroken = broken_mmbench_plugin\n")


def test_broken_plugin_package_does_not_break_list(tmp_path):
    _broken_distribution(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("MMBENCH_STRICT_PLUGINS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert "cross_attention" in {e["name"] for e in listing["fusions"]}
    assert any("broken-mmbench-plugin" in p and "missing dependency xyz" in p for p in listing["problems"])

    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "plugins", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    plugins = {p["name"]: p for p in json.loads(proc.stdout)["plugins"]}
    assert plugins["broken"]["distribution"] == "broken-mmbench-plugin"
    assert "missing dependency xyz" in plugins["broken"]["error"]

    env["MMBENCH_STRICT_PLUGINS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert "broken-mmbench-plugin" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "body", ["import sys\nsys.exit(1)\n", "raise SystemExit('bye')\n", "import os\nraise GeneratorExit\n"]
)
def test_plugin_exiting_at_import_is_isolated(tmp_path, body):
    """A plugin module calling sys.exit() (or raising another BaseException) at import: every
    command still works; the plugin is listed with its error (issue 19, kind 8)."""
    (tmp_path / "exiting_mmbench_plugin.py").write_text(body)
    dist = tmp_path / "exiting_mmbench_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-mmbench-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mmbench]\nexiting = exiting_mmbench_plugin\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("MMBENCH_STRICT_PLUGINS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "plugins", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)["plugins"]}
    assert plugins["exiting"]["distribution"] == "exiting-mmbench-plugin"
    assert plugins["exiting"]["error"] and "failed to load" in plugins["exiting"]["error"]
    assert plugins["builtin-fusions"]["error"] is None


def test_third_party_fusion_package_is_runnable(tmp_path):
    """A fusion shipped by another distribution is listed and trains through `mmbench run`."""
    pkg = tmp_path / "thirdparty_fusion.py"
    pkg.write_text(
        textwrap.dedent("""
        from mmbench.registry import hookimpl

        @hookimpl
        def mmbench_register_fusions(registry):
            registry.add_fusion("third_concat", "thirdparty_fusion:Fusion", "a third-party fusion")

        def __getattr__(name):
            if name == "Fusion":
                from mmbench.plugins.fusions.concat import ConcatFusion
                return ConcatFusion
            raise AttributeError(name)
    """)
    )
    dist = tmp_path / "thirdparty_fusion-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-fusion\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mmbench]\nthird = thirdparty_fusion\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), MMBENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmbench",
            "run",
            "--fusion",
            "third_concat",
            "--seeds",
            "0",
            "--max-epochs",
            "1",
            "--set",
            "data.n_samples=300",
            "--out",
            str(tmp_path / "runs"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["results"][0]["fusion"] == "third_concat"
    record = next((tmp_path / "runs").glob("synthetic__third_concat__*seed0.json"))
    plugins = json.loads(record.read_text())["environment"]["plugins"]
    assert any(p["distribution"] == "thirdparty-fusion" and p["version"] == "1.0" for p in plugins)
