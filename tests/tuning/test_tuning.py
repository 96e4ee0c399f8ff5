"""Tuning: search spaces (FixedTrial), tuned files, the dev-only objective, resume, failures, pruning."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
import yaml
from optuna.trial import FixedTrial, TrialState

from mmbench.errors import RunFailed, UsageError
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.training.trainer import Trainer, TrainingDiverged
from mmbench.tuning.space import (
    SearchSpace,
    SpaceTrial,
    check_space,
    default_trial_params,
    default_values,
    load_space,
    parse_space,
    suggest_all,
)
from mmbench.tuning.storage import (
    DEFAULT_ATTR,
    INTERRUPTED,
    ensure_default_trial,
    mask_url,
    open_storage,
    storage_target,
)
from mmbench.tuning.study import TrialReporter, TuneRequest, export_tuned, summarize_study, tune
from mmbench.tuning.tuned_params import load_params

REGISTRY, _ = build_registry()
TINY = ["data.n_samples=300"]
COMMON = {"train.lr", "train.weight_decay", "train.batch_size"}
PROTOCOL = {"fusion": {}, "train": {"lr": 0.001, "weight_decay": 1e-5, "batch_size": 128, "grad_clip": 0.0}}

optuna.logging.set_verbosity(optuna.logging.ERROR)


def request(tmp_path, trials=2, fusion="concat", max_epochs=2, **kw) -> TuneRequest:
    run = RunRequest(
        dataset="synthetic", fusions=[fusion], overrides=list(TINY), max_epochs=max_epochs, device="cpu"
    )
    return TuneRequest(run=run, fusion=fusion, trials=trials, storage=str(tmp_path / "study.db"), **kw)


def finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


# ------------------------------------------------------------------------------ search spaces
@pytest.mark.parametrize("fusion", sorted(REGISTRY.names("fusion")))
def test_every_builtin_space_yields_valid_parameters(fusion, small_synthetic):
    plugin = REGISTRY.create("fusion", fusion)
    spec = small_synthetic.input_spec()
    defaults = default_values(plugin, PROTOCOL)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(4):
        trial = study.ask()
        fusion_values, train = suggest_all(SpaceTrial(trial, SearchSpace(), {}, defaults), plugin)
        params = plugin.resolve_params(fusion_values)
        plugin.validate(spec, params)
        assert set(train) == {"lr", "weight_decay", "batch_size"}
        assert set(trial.params) >= COMMON
        assert set(trial.params) - COMMON <= set(plugin.default_params)
        if "dropout" in plugin.default_params:
            assert "dropout" in trial.params  # the common dropout where the fusion's space has none
        study.tell(trial, 0.0)


def test_fixed_trial_values_pass_through():
    plugin = REGISTRY.create("fusion", "concat")
    values = {"train.lr": 3e-3, "train.weight_decay": 1e-4, "train.batch_size": 64}
    values |= {"proj_dim": 512, "hidden": 128, "dropout": 0.25}
    defaults = default_values(plugin, PROTOCOL)
    fusion_values, train = suggest_all(SpaceTrial(FixedTrial(values), SearchSpace(), {}, defaults), plugin)
    assert fusion_values == {"proj_dim": 512, "hidden": 128, "dropout": 0.25}
    assert train == {"lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64}


@pytest.mark.parametrize("fusion", sorted(REGISTRY.names("fusion")))
def test_default_trial_evaluates_exactly_the_defaults(fusion):
    plugin = REGISTRY.create("fusion", fusion)
    defaults = default_values(plugin, PROTOCOL)
    enqueued = default_trial_params(plugin, SearchSpace(), {}, defaults)
    trial = SpaceTrial(FixedTrial(enqueued), SearchSpace(), {}, defaults, default_trial=True)
    fusion_values, train = suggest_all(trial, plugin)
    assert plugin.resolve_params(fusion_values) == plugin.resolve_params()
    assert train == {"lr": 0.001, "weight_decay": 1e-5, "batch_size": 128}


def test_defaults_outside_a_narrowed_space_are_used_but_not_enqueued():
    plugin = REGISTRY.create("fusion", "concat")
    space = parse_space(
        {"proj_dim": [128, 512], "train.lr": {"type": "float", "low": 0.01, "high": 0.1}}, "s"
    )
    defaults = default_values(plugin, PROTOCOL)
    enqueued = default_trial_params(plugin, space, {}, defaults)
    assert "proj_dim" not in enqueued and "train.lr" not in enqueued and enqueued["hidden"] == 256
    fusion_values, train = suggest_all(SpaceTrial(FixedTrial(enqueued), space, {}, defaults, True), plugin)
    assert fusion_values["proj_dim"] == 256 and train["lr"] == 0.001


def test_space_file_narrows(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "dropout: {type: float, low: 0.1, high: 0.2}\n"
        "hidden: [64]\n"
        "proj_dim: 128\n"  # fixed: not searched
        "train.lr: {type: float, low: 1e-3, high: 2e-3, log: true}\n"
        "train.grad_clip: {type: float, low: 0.5, high: 1.0}\n"
    )
    space = load_space(path)
    plugin = REGISTRY.create("fusion", "concat")
    check_space(space, plugin, "concat")
    defaults = default_values(plugin, PROTOCOL)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        fusion_values, train = suggest_all(SpaceTrial(trial, space, {}, defaults), plugin)
        assert 0.1 <= fusion_values["dropout"] <= 0.2
        assert fusion_values["hidden"] == 64 and fusion_values["proj_dim"] == 128
        assert "proj_dim" not in trial.params
        assert 1e-3 <= train["lr"] <= 2e-3 and 0.5 <= train["grad_clip"] <= 1.0
        assert train["batch_size"] in (32, 64, 128, 256)  # not listed: the declared space stays
        study.tell(trial, 0.0)


def test_space_file_replaces():
    space = parse_space({"replace": True, "dropout": {"type": "float", "low": 0.1, "high": 0.2}}, "s")
    plugin = REGISTRY.create("fusion", "concat")
    trial = optuna.create_study().ask()
    fusion_values, train = suggest_all(SpaceTrial(trial, space, {}, default_values(plugin, PROTOCOL)), plugin)
    assert set(trial.params) == {"dropout"}
    assert fusion_values["hidden"] == 256 and fusion_values["proj_dim"] == 256
    assert train == {}  # trainer values stay the protocol's


def test_protocol_fusion_overrides_are_not_searched():
    plugin = REGISTRY.create("fusion", "concat")
    trial = optuna.create_study().ask()
    fixed = {"hidden": 64}
    fusion_values, _ = suggest_all(
        SpaceTrial(trial, SearchSpace(), fixed, default_values(plugin, PROTOCOL)), plugin
    )
    assert fusion_values["hidden"] == 64 and "hidden" not in trial.params


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"dropout": {"type": "float", "low": 0.5, "high": 0.1}}, "greater than high"),
        ({"dropout": {"type": "float", "low": 0, "high": 0.1, "log": True}}, "needs low > 0"),
        ({"dropout": {"type": "gaussian"}}, "type must be float, int or categorical"),
        ({"dropout": {"type": "float", "low": 0.1, "hi": 0.2}}, "unknown key 'hi'"),
        ({"hidden": []}, "non-empty list"),
        ({"hidden": {"type": "int", "low": 1.5, "high": 4}}, "must be an integer"),
        ({"replace": "yes"}, "replace must be true or false"),
        ([1, 2], "holds a mapping"),
    ],
)
def test_bad_space_files(doc, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_space(doc, "space.yaml")


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [({"nhidden": [1]}, "has no parameter 'nhidden'"), ({"train.max_epochs": [3]}, "cannot be tuned")],
)
def test_space_names_must_exist(doc, fragment):
    with pytest.raises(UsageError, match=fragment):
        check_space(parse_space(doc, "space.yaml"), REGISTRY.create("fusion", "concat"), "concat")


class FakeTrial:
    number = 3

    def __init__(self, prune: bool) -> None:
        self.reports: list[tuple[float, int]] = []
        self.attrs: dict = {}
        self.prune = prune

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        return self.prune

    def set_user_attr(self, key, value):
        self.attrs[key] = value


class Quiet:
    def log(self, m): ...
    def run_started(self, label, n): ...
    def epoch_ended(self, e, logs): ...


def test_trial_reporter_reports_the_best_dev_score_so_far_and_prunes():
    trial = FakeTrial(prune=False)
    reporter = TrialReporter(trial, "weighted_f1", prune=True, progress=Quiet())
    reporter.run_started("x", 3)
    for epoch, score in enumerate([0.5, 0.4, 0.6], start=1):
        reporter.epoch_ended(epoch, {"dev_weighted_f1": score, "train_loss": 1.0})
    assert trial.reports == [(0.5, 1), (0.5, 2), (0.6, 3)]

    trial = FakeTrial(prune=True)
    reporter = TrialReporter(trial, "weighted_f1", prune=True, progress=Quiet())
    reporter.run_started("x", 3)
    with pytest.raises(optuna.TrialPruned):
        reporter.epoch_ended(1, {"dev_weighted_f1": 0.1, "train_loss": 1.0})
    assert trial.attrs["pruned_at_epoch"] == 1
    # The default trial is never pruned, and nothing is pruned after the last epoch.
    reporter = TrialReporter(FakeTrial(prune=True), "weighted_f1", prune=False, progress=Quiet())
    reporter.run_started("x", 3)
    reporter.epoch_ended(1, {"dev_weighted_f1": 0.1, "train_loss": 1.0})
    reporter = TrialReporter(FakeTrial(prune=True), "weighted_f1", prune=True, progress=Quiet())
    reporter.run_started("x", 1)
    reporter.epoch_ended(1, {"dev_weighted_f1": 0.1, "train_loss": 1.0})


# ------------------------------------------------------------------------------------ storage
def test_storage_targets(tmp_path):
    assert storage_target(None)[0] == "sqlite"
    assert storage_target("runs/x.log") == ("journal", "runs/x.log")
    assert storage_target("x.sqlite3")[0] == "sqlite"
    assert storage_target("postgresql://u:secret@host/db") == ("url", "postgresql://u:secret@host/db")
    with pytest.raises(UsageError, match="journal file"):
        storage_target("study.txt")
    assert mask_url("postgresql://u:secret@host/db") == "postgresql://u:***@host/db"
    with pytest.raises(UsageError, match="no tuning storage"):
        open_storage(tmp_path / "none.db", must_exist=True)
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(UsageError, match="cannot open the database"):
        open_storage("nosuchdialect://x/y")


def test_default_trial_is_enqueued_once_and_again_after_an_interrupt():
    study = optuna.create_study(direction="maximize")
    assert not ensure_default_trial(study, {"x": 1}, created=False)  # the creator's job
    assert ensure_default_trial(study, {"x": 1}, created=True)
    assert not ensure_default_trial(study, {"x": 1}, created=False)
    trial = study.ask()
    assert trial.user_attrs[DEFAULT_ATTR] and trial.params == {} and trial.suggest_int("x", 0, 5) == 1
    trial.set_user_attr("fail_reason", INTERRUPTED)
    study.tell(trial, state=TrialState.FAIL)
    assert ensure_default_trial(study, {"x": 1}, created=False)


# -------------------------------------------------------------------------------- tuned files
def write_tuned(path, fp="fp", fusion="concat", **extra):
    doc = {
        "fusion": fusion,
        "params": {"hidden": 64, "proj_dim": 64, "dropout": 0.1},
        "train": {"lr": 0.003, "batch_size": 64},
        "study_name": "s",
        "n_trials": 7,
        "protocol_fingerprint": fp,
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_load_params_tuned_looks_in_configs_tuned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A dataset name no packaged tuned file uses, so only the current directory can answer.
    with pytest.raises(UsageError, match="run `mmbench tune --fusion concat --dataset tuning-test` first"):
        load_params("tuned", "tuning-test", "concat", "fp")
    write_tuned(tmp_path / "configs" / "tuned" / "tuning-test" / "concat.yaml")
    got = load_params("tuned", "tuning-test", "concat", "fp")
    assert got["params"] == {"hidden": 64, "proj_dim": 64, "dropout": 0.1}
    assert got["tuning"]["n_trials"] == 7 and got["tuning"]["train"] == {"lr": 0.003, "batch_size": 64}
    assert got["tuning"]["fingerprint_matches"] is True


def test_load_params_warns_on_another_protocol(tmp_path, capsys):
    path = write_tuned(tmp_path / "t.yaml", fp="other")
    got = load_params(str(path), "synthetic", "concat", "current")
    assert got["tuning"]["fingerprint_matches"] is False and got["tuning"]["protocol_fingerprint"] == "other"
    err = " ".join(capsys.readouterr().err.split())
    assert "tuned under protocol other" in err and "current" in err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"hidden": 64, "train": {"lr": 0.1}}, "plain parameter file holds fusion parameters only"),
        ({"fusion": "late", "params": {}}, "fusion 'late', not 'concat'"),
        ({"params": {}, "train": {"max_epochs": 3}}, "train.max_epochs cannot be tuned"),
        ({"params": {}, "train": {"batch_size": 0.5}}, "batch_size must be a positive integer"),
        ({"params": [1]}, "'params' must be a mapping"),
    ],
)
def test_bad_params_files(tmp_path, content, fragment):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(UsageError, match=fragment):
        load_params(str(path), "synthetic", "concat", "fp")


def test_plain_params_file_is_not_a_tuning(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("hidden: 64\n")
    assert load_params(str(path), "synthetic", "concat", "fp") == {"params": {"hidden": 64}, "tuning": None}


def test_run_with_tuned_trainer_values_keeps_the_fingerprint(tmp_path):
    base = RunRequest(
        fusions=["concat"], seeds=[0], max_epochs=1, overrides=TINY, device="cpu", save_checkpoints=False
    )
    base.out_dir = tmp_path / "runs"
    prep, plain = run_benchmark(base, REGISTRY)
    path = write_tuned(tmp_path / "t.yaml", fp=prep.protocol_fingerprint)
    base.params = str(path)
    _, tuned = run_benchmark(base, REGISTRY)
    rec = tuned[0]
    assert rec["protocol_fingerprint"] == plain[0]["protocol_fingerprint"]
    assert rec["protocol"]["train"]["lr"] == 0.001  # the protocol is untouched...
    assert (
        rec["train_config"]["lr"] == 0.003 and rec["train_config"]["batch_size"] == 64
    )  # ...the run is tuned
    assert rec["train_overrides"] == {"lr": 0.003, "batch_size": 64}
    assert rec["tuning"]["n_trials"] == 7 and rec["fusion_params"]["hidden"] == 64
    # Same fusion parameters, other trainer values: another record, not an overwrite.
    write_tuned(path, fp=prep.protocol_fingerprint, train={"lr": 0.004})
    _, other = run_benchmark(base, REGISTRY)
    assert len({plain[0]["params_tag"], rec["params_tag"], other[0]["params_tag"]}) == 3
    assert plain[0]["train_overrides"] == {}


# ---------------------------------------------------------------------------------- the study
def test_tuning_never_touches_the_test_split(tmp_path, monkeypatch):
    import mmbench.metrics
    import mmbench.training.tensors

    splits, predicted = [], []
    real_split, real_predict = mmbench.training.tensors.split_tensors, Trainer.predict_logits

    def spy_split(data, split, device):
        splits.append(split)
        return real_split(data, split, device)

    def spy_predict(self, split):
        predicted.append(len(split))
        return real_predict(self, split)

    def no_test_metrics(*args, **kwargs):
        raise AssertionError("tuning computed full (test) metrics")

    monkeypatch.setattr(mmbench.training.tensors, "split_tensors", spy_split)
    monkeypatch.setattr(Trainer, "predict_logits", spy_predict)
    monkeypatch.setattr(mmbench.metrics, "classification_metrics", no_test_metrics)
    result = tune(request(tmp_path, trials=3), REGISTRY)
    assert len(finished(result.study)) == 3
    assert set(splits) == {"train", "dev"}
    data = result.prep.data
    assert set(predicted) == {len(data.splits["dev"])} != {len(data.splits["test"])}
    assert not (tmp_path / "runs").exists()  # no run records either


def test_default_trial_matches_a_plain_run_and_is_compared(tmp_path):
    result = tune(request(tmp_path, trials=3, sampler_seed=0), REGISTRY)
    summary = summarize_study(result.study, "study.db")
    default = summary["default"]
    assert default["number"] == 0 and default["state"] == "complete"
    # Trials train on a seed no protocol seed repeats (1000 + the first); a plain run on it matches.
    assert summary["seed"] == 1000 and summary["seed"] not in result.prep.protocol["seeds"]
    run = RunRequest(
        fusions=["concat"], seeds=[1000], max_epochs=2, overrides=TINY, device="cpu", save_checkpoints=False
    )
    run.out_dir = tmp_path / "runs"
    _, records = run_benchmark(run, REGISTRY)
    assert default["value"] == pytest.approx(records[0]["metrics"]["dev"]["weighted_f1"], abs=1e-9)
    comparison = summary["comparison"]
    assert comparison["delta"] == pytest.approx(summary["best"]["value"] - default["value"])
    assert comparison["improved"] is (comparison["delta"] > 0)
    word = "improved" if comparison["improved"] else "did not improve"
    assert f"tuning {word}" in comparison["text"]
    path = export_tuned(summary, tmp_path / "tuned.yaml")
    loaded = load_params(str(path), "synthetic", "concat", result.prep.protocol_fingerprint)
    assert loaded["params"] == summary["best"]["fusion_params"]
    assert loaded["tuning"]["n_trials"] == 3 and loaded["tuning"]["fingerprint_matches"]
    assert loaded["tuning"]["train"] == summary["best"]["train_params"]
    # Retraining on the trials' seed would repeat the best trial: refused, naming the seed.
    again = RunRequest(
        fusions=["concat"], seeds=[1000], max_epochs=2, overrides=TINY, device="cpu", params=str(path)
    )
    again.out_dir = tmp_path / "retrain"
    with pytest.raises(UsageError, match="seed 1000 is the training seed of every trial"):
        run_benchmark(again, REGISTRY)


def test_a_different_encoder_option_starts_a_new_study(tmp_path):
    from tests.plugins.encoders.encoder_fixtures import TinyTextPlugin

    registry, _ = build_registry(extra_plugins=[("tiny-text", TinyTextPlugin())])

    def text_request(n_components):
        run = RunRequest(
            dataset="tinytext",
            encoders={"text": "tfidf"},
            overrides=[f"encoders.text.n_components={n_components}", "data.n_samples=60"],
            max_epochs=1,
            device="cpu",
        )
        return TuneRequest(run=run, fusion="concat", trials=1, storage=str(tmp_path / "study.db"))

    first = tune(text_request(8), registry)
    same = tune(text_request(8), registry)
    other = tune(text_request(16), registry)
    assert first.created and not same.created and other.created
    assert first.study.study_name == same.study.study_name != other.study.study_name
    assert first.study.user_attrs["encoders"]["text"]["n_components"] == 8
    assert other.study.user_attrs["encoders"]["text"]["n_components"] == 16
    assert first.prep.protocol_fingerprint == other.prep.protocol_fingerprint  # encoders are not in it
    # An explicit --study-name cannot mix the two either.
    named = text_request(8)
    named.study_name = "mine"
    tune(named, registry)
    named_other = text_request(16)
    named_other.study_name = "mine"
    with pytest.raises(UsageError, match="was tuned with study_key"):
        tune(named_other, registry)


def test_rerun_resumes_the_same_study(tmp_path):
    first = tune(request(tmp_path, trials=2), REGISTRY)
    second = tune(request(tmp_path, trials=2), REGISTRY)
    assert first.created and not second.created
    assert first.study.study_name == second.study.study_name
    trials = finished(second.study)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in trials) == 1
    third = tune(request(tmp_path, trials=None, total=5), REGISTRY)
    assert third.ran == 1 and len(finished(third.study)) == 5
    assert tune(request(tmp_path, trials=None, total=5), REGISTRY).ran == 0


def test_resuming_under_other_settings_is_refused(tmp_path):
    tune(request(tmp_path, trials=1, study_name="mine"), REGISTRY)
    with pytest.raises(UsageError, match="was tuned with"):
        tune(request(tmp_path, trials=1, study_name="mine", seed=5), REGISTRY)


def test_failed_trials_are_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    phases = iter(["ok", "diverge", "oom", "boom", "ok"])
    state = {"phase": next(phases)}
    real_fit = Trainer.fit

    def fake_fit(self, train, dev, seed):
        phase = state["phase"]
        if phase != "oom" or self.cfg["batch_size"] == 1:
            state["phase"] = next(phases, "ok")
        if phase == "diverge":
            raise TrainingDiverged(1, math.nan)
        if phase == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory")
        if phase == "boom":
            raise ValueError("boom")
        return real_fit(self, train, dev, seed)

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    result = tune(request(tmp_path, trials=5, max_epochs=1), REGISTRY)
    trials = finished(result.study)
    assert [t.state for t in trials] == [TrialState.COMPLETE] + [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    reasons = [t.user_attrs.get("fail_reason") for t in trials[1:4]]
    assert "training loss became nan" in reasons[0]
    assert reasons[1] == "out of memory" and reasons[2].endswith("raised in training: ValueError: boom")
    summary = summarize_study(result.study, "x")
    assert summary["counts"]["failed"] == 3 and [f["number"] for f in summary["failures"]] == [1, 2, 3]


def test_a_run_whose_every_trial_fails_exits_1(tmp_path, monkeypatch):
    def diverge(self, train, dev, seed):
        raise TrainingDiverged(2, math.inf)

    monkeypatch.setattr(Trainer, "fit", diverge)
    with pytest.raises(RunFailed, match="every trial of this run failed"):
        tune(request(tmp_path, trials=2, max_epochs=1), REGISTRY)


def test_pruned_trials_stop_early(tmp_path, monkeypatch):
    import mmbench.tuning.study

    # A pruner that prunes everything it may: the default trial still completes.
    monkeypatch.setattr(
        mmbench.tuning.study, "make_pruner", lambda name, epochs: optuna.pruners.ThresholdPruner(lower=2.0)
    )
    result = tune(request(tmp_path, trials=2, max_epochs=3), REGISTRY)
    default, other = finished(result.study)
    assert default.state == TrialState.COMPLETE and len(default.intermediate_values) == 3
    assert other.state == TrialState.PRUNED and other.user_attrs["pruned_at_epoch"] == 1
    assert list(other.intermediate_values) == [1]
