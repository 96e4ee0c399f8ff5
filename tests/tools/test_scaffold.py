"""`mmbench new-plugin`: names, refusals, and generated packages that work as generated.

Nothing is pip-installed (that would change the test environment). In process, the generated
module is imported from its ``src/`` and registered through ``mmbench.testing.plugin_registry``,
then the conformance kit runs on it (and a fusion or dataset trains for one epoch and lands in a
leaderboard beside a built-in). In a subprocess, ``src/`` plus a ``.dist-info`` folder written
from the generated ``pyproject.toml`` stand in for an installation, so entry-point discovery,
``mmbench list plugins`` and the generated tests run exactly as after ``pip install -e``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.registry.manager import build_registry
from mmbench.testing import (
    DatasetCase,
    DatasetConformance,
    EncoderCase,
    EncoderConformance,
    FusionCase,
    FusionConformance,
    check_package_data_in_wheel,
    load_dataset,
    plugin_registry,
)
from mmbench.tools.scaffold import KINDS, generate, plugin_names

NAMES = {"fusion": "scaf-fusion", "dataset": "scaf-data", "encoder": "scaf_encoder"}
runner = CliRunner()


# ------------------------------------------------------------------------------------ names


def test_names_derived_from_the_plugin_name():
    n = plugin_names("my-fusion", "fusion")
    assert (n.name, n.distribution, n.module, n.class_name) == (
        "my-fusion",
        "mmbench-my-fusion",
        "mmbench_my_fusion",
        "MyFusion",
    )
    d = plugin_names("audio_set2", "dataset")
    assert (d.distribution, d.module, d.class_name) == (
        "mmbench-audio-set2",
        "mmbench_audio_set2",
        "AudioSet2Dataset",
    )
    assert d.test_file == "tests/test_mmbench_audio_set2.py"


@pytest.mark.parametrize(
    "name", ["", "My-Fusion", "1fusion", "my fusion", "my--fusion", "my-", "-x", "a.b", "x" * 41, "mmbench-x"]
)
def test_bad_names_are_refused(name):
    with pytest.raises(UsageError, match="invalid plugin name"):
        plugin_names(name, "fusion")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["new-plugin", "Bad_Name"], "invalid plugin name 'Bad_Name'"),
        (["new-plugin", "ok-name", "--kind", "model"], "--kind must be one of fusion, dataset, encoder"),
        (["new-plugin", "concat", "--kind", "fusion"], "a fusion named 'concat' is already registered"),
        (
            ["new-plugin", "synthetic", "--kind", "dataset"],
            "a dataset named 'synthetic' is already registered",
        ),
    ],
)
def test_cli_refusals_exit_2(tmp_path, args, fragment):
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_non_empty_folder_needs_force(tmp_path):
    target = tmp_path / "pkg"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["new-plugin", "my-fusion", "--output", str(target)])
    assert result.exit_code == 2
    assert "not empty" in result.output and "--force" in result.output
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]

    result = runner.invoke(
        app, ["new-plugin", "my-fusion", "--output", str(target), "--force", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["distribution"] == "mmbench-my-fusion"
    assert "src/mmbench_my_fusion/fusion.py" in listing["files"]
    assert (target / "notes.txt").read_text() == "mine"  # --force leaves other files alone
    assert (target / "pyproject.toml").is_file()


def test_default_folder_is_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["new-plugin", "my-encoder", "--kind", "encoder"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "my-encoder" / "src" / "mmbench_my_encoder" / "encoder.py").is_file()


# ------------------------------------------------------------------------- generated files


@pytest.fixture(params=[*KINDS, "dataset --text"])
def generated(request, tmp_path) -> tuple[str, Path]:
    kind, _, flag = request.param.partition(" ")
    target, names, files = generate(NAMES[kind], kind, tmp_path / NAMES[kind], text=bool(flag))
    assert target == tmp_path / NAMES[kind] and all(f.is_file() for f in files)
    return kind, target


def test_pyproject_declares_the_entry_point(generated):
    kind, target = generated
    names = plugin_names(NAMES[kind], kind)
    meta = tomllib.loads((target / "pyproject.toml").read_text())
    assert meta["project"]["name"] == names.distribution
    assert any(dep.startswith("mmbench") for dep in meta["project"]["dependencies"])
    assert meta["project"]["entry-points"]["mmbench"] == {names.name: names.module}
    assert meta["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    if kind == "dataset":  # its default protocol ships with the package
        assert meta["tool"]["setuptools"]["package-data"][names.module] == ["protocol.yaml"]
        assert (target / "src" / names.module / "protocol.yaml").is_file()
    readme = (target / "README.md").read_text()
    assert names.distribution in readme and f"mmbench new-plugin {names.name}" in readme
    test_text = (target / names.test_file).read_text()
    assert names.conformance in test_text and "test_listed_by_mmbench" in test_text


def test_generated_code_is_lint_clean(generated):
    """The generated package passes ruff with the project's rules (what a user starts from)."""
    _, target = generated
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "110",
         "--select", "E,F,W,I,UP,B,SIM", str(target)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------- in process, not installed


@pytest.fixture
def imported(generated, monkeypatch) -> tuple[str, Path, Any]:
    """The generated hookimpl module imported from ``src/`` (removed from sys.modules after)."""
    kind, target = generated
    names = plugin_names(NAMES[kind], kind)
    monkeypatch.syspath_prepend(str(target / "src"))
    module = importlib.import_module(names.module)
    yield kind, target, module
    for key in [k for k in sys.modules if k == names.module or k.startswith(names.module + ".")]:
        del sys.modules[key]


def _run_checks(kit: Any, **fixtures: Any) -> list[str]:
    """Call every check of a conformance class with the given fixture values; the names run."""
    ran = []
    for check in sorted(n for n in dir(kit) if n.startswith("test_")):
        method = getattr(kit, check)
        wanted = inspect.signature(method).parameters
        method(**{k: v for k, v in fixtures.items() if k in wanted})
        ran.append(check)
    return ran


def test_generated_plugin_passes_the_conformance_kit(imported):
    kind, _, module = imported
    name = NAMES[kind]
    with plugin_registry((name, module)) as registry:
        assert registry.names(kind, name) == [name]
        info = registry.plugin_of(kind, name)
        assert info.error is None and info.hooks == [f"mmbench_register_{kind}s"]
        if kind == "fusion":
            ran = _run_checks(FusionConformance(), fusion_case=FusionCase(name, params={"hidden": 16}))
            expected = FusionConformance
        elif kind == "dataset":
            case = DatasetCase(name, overrides=("data.n_samples=200",))
            loaded = (
                load_dataset(name, None, case.overrides).validate(),
                load_dataset(name, None, case.overrides),
            )
            assert loaded[0].n == 200 and loaded[0].name == name
            ran = _run_checks(DatasetConformance(), dataset_case=case, loaded=loaded)
            expected = DatasetConformance
        else:
            case = EncoderCase(
                name, options={"dim": 32}, identity_variants=[{"dim": 16}, {"lowercase": False}]
            )
            ran = _run_checks(EncoderConformance(), encoder_case=case)
            expected = EncoderConformance
    assert ran == sorted(n for n in dir(expected) if n.startswith("test_"))


def test_generated_plugin_trains_beside_a_builtin(imported, tmp_path):
    """One epoch through `mmbench run`'s code path; both records land in one leaderboard table."""
    from mmbench.leaderboard.build import build_leaderboard
    from mmbench.records import load_records
    from mmbench.runner.run import RunRequest, run_benchmark

    kind, _, module = imported
    if kind == "encoder":
        return  # covered by the conformance kit: no built-in dataset has raw text to encode offline
    name = NAMES[kind]
    runs = tmp_path / "runs"
    if kind == "fusion":
        request = RunRequest(fusions=[name, "late"], overrides=["data.n_samples=300"])
    else:
        request = RunRequest(dataset=name, fusions=["late"], overrides=["data.n_samples=150"])
    request.seeds, request.max_epochs, request.device, request.out_dir = [0], 1, "cpu", runs
    with plugin_registry((name, module)) as registry:
        _, records = run_benchmark(request, registry)
    assert [r["status"] for r in records] == ["ok"] * len(request.fusions)
    assert all(0 <= r["metrics"]["test"]["accuracy"] <= 1 for r in records)
    board = build_leaderboard(load_records(runs), runs, include_budget_cut=True, n_resamples=50)
    assert len(board.groups) == 1
    assert board.groups[0].dataset == ("synthetic" if kind == "fusion" else name)
    assert sorted(row.fusion for row in board.groups[0].rows) == sorted(request.fusions)


# ------------------------------------------------------------- subprocess, as if installed


def _fake_install(target: Path, site: Path) -> dict[str, str]:
    """Write the ``.dist-info`` an installation would, from the generated pyproject; the env to use."""
    meta = tomllib.loads((target / "pyproject.toml").read_text())
    project = meta["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    eps = "".join(f"{k} = {v}\n" for k, v in project["entry-points"]["mmbench"].items())
    (info / "entry_points.txt").write_text(f"[mmbench]\n{eps}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBENCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target / "src"), str(site), env.get("PYTHONPATH", "")])
    return env


def test_generated_tests_pass_as_if_installed(generated, tmp_path):
    kind, target = generated
    names = plugin_names(NAMES[kind], kind)
    env = _fake_install(target, tmp_path / "site")

    listing = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "plugins", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    ours = [p for p in json.loads(listing.stdout)["plugins"] if p["name"] == names.name]
    assert len(ours) == 1, listing.stdout
    assert ours[0]["distribution"] == names.distribution and ours[0]["version"] == "0.1.0"
    assert ours[0]["registered"] == {kind: [names.name]} and ours[0]["error"] is None
    assert ours[0]["hooks"] == [names.register_hook]
    assert Path(ours[0]["location"]).parent == target / "src" / names.module

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=target, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    expected = {"fusion": FusionConformance, "dataset": DatasetConformance, "encoder": EncoderConformance}[
        kind
    ]
    n_checks = sum(1 for n in dir(expected) if n.startswith("test_"))
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= n_checks + 1 and "skipped" not in summary and "failed" not in summary, summary


def test_broken_generated_plugin_is_reported_not_fatal(tmp_path):
    """A plugin whose module fails to import is listed with its error; the built-ins still load."""
    target, names, _ = generate("broken-fusion", "fusion", tmp_path / "broken-fusion")
    init = target / "src" / names.module / "__init__.py"
    init.write_text("import mmbench_no_such_dependency\n" + init.read_text())
    env = _fake_install(target, tmp_path / "site")
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "plugins", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)["plugins"]}
    assert "mmbench_no_such_dependency" in plugins[names.name]["error"]
    assert names.distribution in plugins[names.name]["error"]
    assert plugins["builtin-fusions"]["error"] is None
    strict = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "plugins"],
        capture_output=True, text=True, env={**env, "MMBENCH_STRICT_PLUGINS": "1"}, timeout=120,
    )  # fmt: skip
    assert strict.returncode == 2 and "MMBENCH_STRICT_PLUGINS" in strict.stderr, strict.stderr


def test_registry_outside_the_fixtures_is_untouched():
    """The scaffold tests register nothing permanently."""
    registry, _ = build_registry()
    assert not set(NAMES.values()) & {n for k in KINDS for n in registry.names(k)}


def test_text_dataset_has_raw_text_encoded_by_tfidf(tmp_path, monkeypatch):
    target, names, _ = generate("my-texts", "dataset", tmp_path / "t", text=True)
    monkeypatch.syspath_prepend(str(target / "src"))
    module = importlib.import_module(f"{names.module}.dataset")
    try:
        data = module.generate(60, 0)
        plain = generate("my-plain", "dataset", tmp_path / "p")[0]
        assert len(data.raw["text"]) == 60 and all(isinstance(t, str) and t for t in data.raw["text"])
        assert "encoders:\n  text: tfidf" in (target / "src" / names.module / "protocol.yaml").read_text()
        assert "raw=" not in (plain / "src" / "mmbench_my_plain" / "dataset.py").read_text()
    finally:
        for key in [k for k in sys.modules if k.startswith(names.module)]:
            del sys.modules[key]
    res = runner.invoke(app, ["new-plugin", "x-fusion", "--text", "--output", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--text is for --kind dataset" in " ".join(res.output.split())


def test_the_wheel_check_finds_a_protocol_left_out_of_package_data(tmp_path):
    target, names, _ = generate("my-data", "dataset", tmp_path / "ok")
    wheel = check_package_data_in_wheel(target, tmp_path / "w1")
    assert f"{names.module}/protocol.yaml" in wheel
    pyproject = target / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[tool.setuptools.package-data]", "").replace(
        f'{names.module} = ["protocol.yaml"]', ""
    ))  # fmt: skip
    fix = r"(?s)not inside the built wheel.*tool\.setuptools\.package-data"
    with pytest.raises(AssertionError, match=fix):
        check_package_data_in_wheel(target, tmp_path / "w2")
