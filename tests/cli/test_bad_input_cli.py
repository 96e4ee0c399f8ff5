"""Bad CLI input: exit code 2, one clear message naming the option, no traceback, nothing written.

Table-driven; each case is (arguments, a fragment the message must contain). The catalogue is
counted in docs/RELIABILITY.md.
"""

import json

import pytest
from typer.testing import CliRunner

from mmbench.cli import app

CASES = [
    # run: unknown plugin names
    (["run", "--fusion", "crossattention"], "Did you mean 'cross_attention'"),
    (["run", "--fusion", ""], "--fusion is empty"),
    (["run", "--dataset", "iemocapp"], "unknown dataset 'iemocapp'"),
    (["run", "--encoder", "text=bert-nope"], "unknown encoder 'bert-nope'"),
    # run: bad values
    (["run", "--seeds", "a,b"], "--seeds expects"),
    (["run", "--seeds", ","], "--seeds is empty"),
    (["run", "--max-epochs", "0"], "--max-epochs must be at least 1"),
    (["run", "--encoder", "text"], "--encoder expects MODALITY=NAME"),
    (["run", "--set", "train.lr"], "--set expects key=value"),
    (["run", "--set", "train.lrr=0.1"], "unknown training option 'lrr'"),
    (["run", "--set", "nope=1"], "unknown protocol key 'nope'"),
    (["run", "--set", "train.batch_size=-3"], "train.batch_size must be a positive integer"),
    (["run", "--set", "train.loss=hinge"], "train.loss must be one of"),
    (["run", "--set", "metric=auc"], "metric must be one of"),
    (["run", "--set", "data.preset=chaos"], "data.preset must be one of"),
    (["run", "--set", "data.colour=red"], "unknown option(s) data.colour"),
    (["run", "--set", "fusion.nothing=1"], "fusion.nothing"),
    (["run", "--fusion", "unimodal", "--set", "fusion.modality=smell"], "fusion.modality='smell'"),
    (["run", "--device", "tpu"], "--device must be auto, cpu or cuda"),
    (["run", "--precision", "fp8"], "--precision must be"),
    (["run", "--dataset", "iemocap", "--data", "does/not/exist.xlsx"], "does not exist"),
    (["run", "--data", "pyproject.toml"], "dataset 'synthetic' is built in"),
    (["run", "--protocol", "missing-protocol.yaml"], "does not exist"),
    (["run", "--params", "missing-params.yaml"], "missing-params.yaml"),
    (["run", "--format", "xml"], "xml"),
    # other commands
    (["list", "widgets"], "widgets"),
    (["bench", "--max-epochs", "0"], "--max-epochs and --repeats must be at least 1"),
    (["bench", "--fusion", "nope"], "unknown fusion 'nope'"),
    (["robustness", "--runs", "no-such-folder"], "no such folder"),
    (["robustness", "--runs", ".", "--levels", "0,x"], "--levels expects"),
    (["robustness", "--runs", ".", "--levels", "0.5,0.1"], "--levels must be increasing"),
    (["reproduce", "no-such-record.json"], "no-such-record.json: file does not exist"),
    # sweep
    (["sweep", "--shard", "3/2"], "--shard 3/2: I must lie between 1 and N"),
    (["sweep", "--shard", "0/2"], "--shard 0/2: I must lie between 1 and N"),
    (["sweep", "--shard", "x"], "--shard expects I/N"),
    # a fusion that cannot take the data is refused before any cell of the dataset trains
    (["sweep", "--fusion", "concat,unimodal", "--set", "fusion.modality=smell"], "fusion.modality='smell'"),
    (["sweep", "--dataset", "synthetic:unique", "--set", "data.preset=synergy"], "drop --set data.preset"),
    (["sweep", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["sweep", "--fusion", "nope"], "unknown fusion 'nope'"),
    (["sweep", "--seeds", "a"], "--seeds expects"),
    (["sweep", "--stale-after", "-1"], "--stale-after must be positive"),
    # tune
    (["tune", "--trials", "2", "--total", "4"], "give --trials (trials to add) or --total"),
    (["tune", "--trials", "0"], "--trials must be at least 1"),
    (["tune", "--pruner", "bogus"], "--pruner must be one of"),
    (["tune", "--fusion", "nope"], "unknown fusion 'nope'"),
    # leaderboard
    (["leaderboard", "--runs", "no-such-folder"], "--runs no-such-folder: no such folder"),
    (["leaderboard", "--runs", ".", "--alpha", "1.5"], "--alpha must lie in (0, 1)"),
    (["leaderboard", "--runs", ".", "--alpha", "0"], "--alpha must lie in (0, 1)"),
    (["leaderboard", "--runs", ".", "--resamples", "0"], "--resamples must be at least"),
    # plot
    (["plot", "--runs", "no-such-folder"], "--runs no-such-folder: no such folder"),
    # inspect
    (["inspect", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["inspect", "--max-points", "0"], "--max-points must be at least"),
    # extract (manifest.csv is written by the test for these cases)
    (["extract", "--manifest", "missing.csv", "--encoder", "audio=mfcc"], "manifest missing.csv"),
    (["extract", "--manifest", "manifest.csv", "--encoder", "audio=nope"], "unknown extractor 'nope'"),
    (["extract", "--manifest", "manifest.csv", "--encoder", "audio"], "--encoder expects MODALITY=NAME"),
    (["extract", "--manifest", "manifest.csv", "--encoder", "audio=mfcc", "-j", "0"], "--workers must be"),
    # new-plugin
    (["new-plugin", "Bad Name!"], "invalid plugin name 'Bad Name!'"),
    (["new-plugin", ""], "invalid plugin name ''"),
    (["new-plugin", "concat"], "a fusion named 'concat' is already registered"),
    (["new-plugin", "my-thing", "--kind", "widget"], "--kind must be one of"),
]

# Appended to every case of these commands so that a case the CLI wrongly accepts stays small and
# writes only under ./out (which must not exist afterwards).
_EXTRA = {
    "sweep": ["--set", "data.n_samples=300", "--max-epochs", "1", "--device", "cpu", "--out", "out"],
    "tune": ["--set", "data.n_samples=300", "--max-epochs", "1", "--device", "cpu", "--storage", "out/t.db"],
    "inspect": ["--set", "data.n_samples=300", "--output", "out"],
    "extract": ["--output", "out"],
    "new-plugin": ["--output", "out"],
}

runner = CliRunner()


def _message(result) -> str:
    return (result.stdout or "") + (getattr(result, "stderr", "") or "") + (result.output or "")


@pytest.mark.parametrize(("args", "fragment"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_exits_2_with_one_message(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    if args[0] == "run":
        args = (
            [*args, "--out", str(out), "--set", "data.n_samples=300", "--max-epochs", "1"]
            if ("--max-epochs" not in args)
            else [*args, "--out", str(out)]
        )
    else:
        args = [*args, *_EXTRA.get(args[0], [])]
    if args[0] == "extract":
        (tmp_path / "manifest.csv").write_text("File Name,Utterance,Emotion\nclip1,hello,happy\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, args)
    message = " ".join(_message(result).split())
    assert result.exit_code == 2, message
    assert fragment in message
    assert "Traceback" not in message
    assert not out.exists(), "nothing may be written on bad input"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing may be written on bad input"


def test_bad_protocol_yaml(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("train: [1, 2\n")
    result = runner.invoke(app, ["run", "--protocol", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not valid YAML" in _message(result)


def test_not_a_record(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps({"hello": 1}))
    result = runner.invoke(app, ["reproduce", str(f)])
    assert result.exit_code == 2
    assert "not a readable mmbench run record" in " ".join(_message(result).split())
