"""A fusion that raises or returns bad output fails its own run; the grid goes on (issue 19, kind 1).

Test fusions are registered through the plugin hooks by an in-process plugin named
``test-fusions``; every failed record must name the fusion and that plugin.
"""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.contracts import FusionPlugin
from mmbench.errors import RunFailed
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry, set_registry
from mmbench.runner.run import RunRequest, run_benchmark

SMALL = ["data.n_samples=300"]


class _Linear(nn.Module):
    def __init__(self, spec, mode="ok"):
        super().__init__()
        self.lin = nn.Linear(spec["text"].dim, spec.num_classes)
        self.mode = mode

    def forward(self, batch):
        out = self.lin(batch["text"])
        if self.mode == "wide":
            return torch.cat([out, out], dim=1)  # [B, 2C]: not class logits
        if self.mode == "eval_nan" and not self.training:
            return out * float("nan")
        if self.mode == "eval_inf" and not self.training:
            out = out.clone()
            out[0, 0] = float("inf")  # one sample of the split
        return out


class BadBuildFusion(FusionPlugin):
    def build(self, spec, params):
        raise RuntimeError("weights server unreachable")


class WideFusion(FusionPlugin):
    def build(self, spec, params):
        return _Linear(spec, "wide")


class EvalNaNFusion(FusionPlugin):
    def build(self, spec, params):
        return _Linear(spec, "eval_nan")


class EvalInfFusion(FusionPlugin):
    def build(self, spec, params):
        return _Linear(spec, "eval_inf")


class CrashingValidateFusion(FusionPlugin):
    def validate(self, spec, params):
        raise KeyError("oops")

    def build(self, spec, params):
        return _Linear(spec)


class _Plugins:
    @hookimpl
    def mmbench_register_fusions(self, registry: Registry) -> None:
        mod = "tests.runner.test_fusion_faults"
        registry.add_fusion("badplugin", f"{mod}:BadBuildFusion", "raises in build")
        registry.add_fusion("wide", f"{mod}:WideFusion", "logits of the wrong shape")
        registry.add_fusion("eval_nan", f"{mod}:EvalNaNFusion", "NaN logits in eval mode only")
        registry.add_fusion("eval_inf", f"{mod}:EvalInfFusion", "one inf logit in eval mode only")
        registry.add_fusion("bad_validate", f"{mod}:CrashingValidateFusion", "validate crashes")


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    reg, pm = build_registry([("test-fusions", _Plugins())])
    set_registry(reg, pm)
    yield reg
    set_registry(*build_registry())


def _run(tmp_path, registry, fusions):
    req = RunRequest(
        fusions=fusions, seeds=[0], overrides=SMALL, out_dir=tmp_path, device="cpu", max_epochs=1
    )
    return run_benchmark(req, registry)


@pytest.mark.parametrize(
    ("fusion", "stage", "fragment"),
    [
        ("badplugin", "build", "RuntimeError: weights server unreachable"),
        ("wide", "training", "raised in training"),
        ("eval_nan", "evaluation", "NaN or inf logits in eval mode"),
        ("eval_inf", "evaluation", "NaN or inf logits in eval mode for 1 of"),
    ],
)
def test_faulty_fusion_fails_only_its_run(tmp_path, registry, fusion, stage, fragment):
    _, records = _run(tmp_path, registry, [fusion, "concat"])
    by = {r["fusion"]: r for r in records}
    assert by["concat"]["status"] == "ok" and by["concat"]["metrics"]["test"]["weighted_f1"] > 0
    bad = by[fusion]
    assert bad["status"] == "failed" and bad["metrics"] == {}
    assert bad["failure"]["stage"] == stage and bad["failure"]["plugin"] == "test-fusions"
    assert f"fusion {fusion!r} (plugin 'test-fusions')" in bad["failure"]["reason"]
    assert fragment in bad["failure"]["reason"]
    on_disk = json.loads(Path(bad["_path"]).read_text())
    assert on_disk["status"] == "failed" and on_disk["failure"] == bad["failure"]


def test_only_faulty_fusions_raise_run_failed(tmp_path, registry):
    with pytest.raises(RunFailed, match="badplugin seed 0: fusion 'badplugin'"):
        _run(tmp_path, registry, ["badplugin"])
    assert json.loads(next(tmp_path.glob("*badplugin*seed0.json")).read_text())["status"] == "failed"


def test_validate_crash_names_the_plugin_before_training(tmp_path, registry):
    from mmbench.errors import PluginError

    with pytest.raises(
        PluginError, match="fusion 'bad_validate' \\(plugin 'test-fusions'\\) raised in validate"
    ):
        _run(tmp_path, registry, ["concat", "bad_validate"])
    assert not list(tmp_path.glob("*.json")), "nothing may train before every fusion is checked"


def test_cli_badplugin_then_concat_exits_1_with_both_records(tmp_path, registry):
    """Acceptance: `mmbench run --fusion badplugin,concat`."""
    out = tmp_path / "out"
    args = ["run", "--fusion", "badplugin,concat", "--seeds", "0", "--max-epochs", "1", "--device", "cpu"]
    result = CliRunner().invoke(
        app, [*args, "--set", "data.n_samples=300", "--out", str(out), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    records = {
        json.loads(p.read_text())["fusion"]: json.loads(p.read_text()) for p in out.glob("*seed0.json")
    }
    assert records["badplugin"]["status"] == "failed"
    assert "plugin 'test-fusions'" in records["badplugin"]["failure"]["reason"]
    assert records["concat"]["status"] == "ok" and records["concat"]["metrics"]["test"]
