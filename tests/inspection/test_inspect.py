"""`mmbench inspect`: duplicates and shared groups are reported, probes judged, report rendered."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import DataError
from mmbench.inspection.checks import inspect_data, near_duplicates, pooled
from mmbench.inspection.probes import ALL, kappa_and_margin, probe_verdict
from mmbench.inspection.report import write_report
from mmbench.plugins.datasets.synthetic import generate
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry, set_registry
from mmbench.runner.run import RunRequest, prepare

N_EXACT, N_NEAR = 15, 7


def leaky_data() -> MultimodalData:
    """Synthetic data "over-sampled before splitting": train rows copied into test rows."""
    d = generate(preset="mixed", n_samples=800, generator_seed=3)
    train, test = d.splits["train"], d.splits["test"]
    src, dst = train[: N_EXACT + N_NEAR], test[: N_EXACT + N_NEAR]
    rng = np.random.default_rng(0)
    for streams in d.modalities.values():
        for name, arr in streams.items():
            arr = arr.copy()
            arr[dst] = arr[src]
            # The last N_NEAR copies get a tiny perturbation: near, not exact, duplicates.
            near = dst[N_EXACT:]
            arr[near] += 1e-4 * rng.standard_normal((len(near), arr.shape[1])).astype(np.float32)
            streams[name] = arr
    d.labels = d.labels.copy()
    d.labels[dst] = d.labels[src]
    split_name = np.empty(d.n, dtype=object)
    for s, idx in d.splits.items():
        split_name[idx] = f"dlg-{s}"
    split_name[train[-1]] = split_name[test[-1]] = "dlg-shared"
    d.groups["dialogue"] = split_name.astype(str)
    d.meta["dropped_labels"] = {"xxx": 12, "oth": 3}
    d.meta["label_map"] = {"excited": "exc", "happy": "hap"}
    d.name = "leaky"
    d._fingerprint = None
    return d


class LeakyDataset(DatasetPlugin):
    def load(self, path, options):
        return leaky_data()


class _Plugins:
    @hookimpl
    def mmbench_register_datasets(self, registry: Registry) -> None:
        registry.add_dataset(
            "leaky", "tests.inspection.test_inspect:LeakyDataset", "train rows copied into test"
        )


@pytest.fixture
def leaky_registry(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    reg, pm = build_registry([("test-datasets", _Plugins())])
    set_registry(reg, pm)
    yield reg
    set_registry(*build_registry())


def test_cli_reports_cross_split_duplicates_that_run_refuses(tmp_path, leaky_registry):
    with pytest.raises(DataError, match="duplicate"):
        prepare(RunRequest(dataset="leaky", fusions=[]), leaky_registry)

    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["inspect", "--dataset", "leaky", "--output", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    exact = summary["splits"]["exact_duplicates"]
    # the guard finds the exact copies and the perturbed ones (the same vector after rounding)
    assert exact["across"] == {"train/dev": 0, "train/test": N_EXACT + N_NEAR, "dev/test": 0}
    assert exact["by"]["train/test"] == {"id": 0, "features": N_EXACT + N_NEAR}
    near = summary["splits"]["near_duplicates"]["across"]
    assert near["train/test"]["count"] == N_EXACT + N_NEAR
    assert near["train/test"]["not_exact"] == N_NEAR
    assert near["train/dev"]["count"] == near["dev/test"]["count"] == 0
    shared = summary["splits"]["groups"]["dialogue"]["shared"]
    assert shared["train/test"] == {"count": 1, "examples": ["dlg-shared"]}
    assert shared["train/dev"]["count"] == 0
    assert any("leaks across splits" in w for w in summary["warnings"])
    assert any("dialogue groups shared" in w for w in summary["warnings"])
    # The label notes come from data.meta, whatever the dataset put there.
    assert summary["classes"]["label_meta"]["dropped_labels"] == {"xxx": 12, "oth": 3}
    md = (out / "report.md").read_text()
    assert "dropped_labels" in md and "xxx" in md and "label_map" in md
    assert summary["report"]["markdown"].endswith("report.md") and (out / "classes.png").exists()


def test_protocol_fingerprint_matches_a_plain_run():
    from mmbench.inspection.checks import inspect_request
    from mmbench.registry import get_registry

    reg = get_registry()
    req = RunRequest(fusions=[], overrides=["data.n_samples=600"])
    result = inspect_request(req, reg)
    assert result.summary["protocol_fingerprint"] == prepare(req, reg).protocol_fingerprint


def test_near_duplicates_blockwise_equals_brute_force():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 12)).astype(np.float32)
    splits = {"train": np.arange(0, 200), "dev": np.arange(200, 240), "test": np.arange(240, 300)}
    x[250:260] = x[10:20] * 3.0  # scaled copies: cosine 1
    x[220:223] = x[30:33] + 1e-5
    x[0] = 0.0  # a zero row never matches
    found = near_duplicates(x, splits, threshold=0.999, block_elements=64)  # forces tiny blocks
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    for key, got in found.items():
        a, b = key.split("/")
        sims = unit[splits[b]] @ unit[splits[a]].T
        expected = splits[b][sims.max(axis=1) > 0.999]
        assert sorted(got["rows"].tolist()) == sorted(expected.tolist())
    assert found["train/test"]["count"] == 10 and found["train/dev"]["count"] == 3
    assert sorted(found["train/test"]["matches"].tolist()) == list(range(10, 20))


def test_synergy_probes_show_no_linear_signal():
    result = inspect_data(generate(preset="synergy", n_samples=2000))
    probes = result.summary["probes"]
    assert {r["probe"] for r in probes["rows"]} == {"text", "audio", "visual", ALL}
    assert not any(r["beats_chance"] for r in probes["rows"])
    assert probes["verdict_kind"] == "no_linear_signal"
    assert "not linearly available" in probes["verdict"] and "nonlinear" in probes["verdict"]
    maj = probes["majority"]
    assert maj["kappa"] == 0.0
    dev_counts = result.summary["classes"]["counts"]["dev"]
    assert maj["accuracy"] == pytest.approx(dev_counts[maj["class"]] / probes["n_dev"], abs=1e-4)


def test_unique_probes_are_complementary():
    probes = inspect_data(generate(preset="unique", n_samples=1200)).summary["probes"]
    rows = {r["probe"]: r for r in probes["rows"]}
    assert probes["verdict_kind"] == "complementary"
    assert rows[ALL]["kappa"] > max(rows[m]["kappa"] for m in ("text", "audio", "visual")) + 0.2
    assert rows[ALL]["accuracy"] > probes["majority"]["accuracy"] + 0.2


def _row(name, kappa, margin=0.05):
    return {
        "probe": name,
        "kappa": kappa,
        "accuracy": 0.5,
        "chance_margin": margin,
        "beats_chance": kappa > margin,
    }


def test_verdict_rules():
    assert probe_verdict([_row("a", 0.3), _row("b", 0.01), _row(ALL, 0.32)])[1] == "dominated_by_one"
    assert probe_verdict([_row("a", 0.3), _row("b", 0.2), _row(ALL, 0.5)])[1] == "complementary"
    assert probe_verdict([_row("a", 0.01), _row("b", -0.02), _row(ALL, 0.04)])[1] == "no_linear_signal"
    assert probe_verdict([_row("a", 0.01)])[1] == "no_linear_signal"
    assert probe_verdict([_row("a", 0.4)])[1] == "single_modality"


def test_kappa():
    perfect = np.diag([10, 20, 30])
    assert kappa_and_margin(perfect)[0] == pytest.approx(1.0)
    majority = np.array([[30, 0], [20, 0]])
    assert kappa_and_margin(majority)[0] == pytest.approx(0.0)
    # Two standard errors under chance: pe = 0.6, n = 50 -> 2 * sqrt(0.6 / (50 * 0.4)).
    assert kappa_and_margin(majority)[1] == pytest.approx(2 * np.sqrt(0.6 / 20))
    assert kappa_and_margin(majority * 10)[1] == pytest.approx(kappa_and_margin(majority)[1] / np.sqrt(10))


def test_class_report_and_stream_problems():
    d = generate(preset="mixed", n_samples=600, generator_seed=7)
    d.modalities["audio"]["V3"] = d.modalities["audio"]["V3"].copy()
    d.modalities["audio"]["V3"][:, :4] = 0.0  # 4 never-filled features
    d.modalities["audio"]["V4"] = d.modalities["audio"]["V4"].copy()
    d.modalities["audio"]["V4"][:, 4] = 2.5  # a constant, non-zero feature
    d.modalities["audio"]["V3"][d.splits["dev"][:3]] = 0.0  # 3 rows with a missing stream
    d._fingerprint = None
    s = inspect_data(d, max_points=100).summary
    train_counts = np.bincount(d.labels[d.splits["train"]], minlength=d.num_classes)
    assert s["classes"]["imbalance_ratio"] == pytest.approx(train_counts.max() / train_counts.min(), abs=1e-3)
    assert sum(s["classes"]["counts"]["test"].values()) == len(d.splits["test"])
    v3 = s["modalities"]["audio"]["streams"]["V3"]
    assert (v3["dim"], v3["zero_features"], v3["constant_features"], v3["zero_rows"]) == (25, 4, 4, 3)
    v4 = s["modalities"]["audio"]["streams"]["V4"]
    assert (v4["zero_features"], v4["constant_features"], v4["zero_rows"]) == (0, 1, 0)
    assert s["modalities"]["text"]["streams"]["text"]["constant_features"] == 0
    assert any("audio/V3" in w and "3 all-zero rows" in w for w in s["warnings"])
    assert s["classes"]["label_meta"] == {}


def test_sequence_modalities_pool_real_steps_only():
    x = np.zeros((4, 3, 2), dtype=np.float32)
    x[:, 0] = 1.0
    x[:, 1] = 3.0
    x[:, 2] = 100.0  # padding beyond the real length must not count
    d = MultimodalData(
        name="seq",
        modalities={"m": {"s": x}},
        labels=np.array([0, 1, 0, 1]),
        class_names=["a", "b"],
        splits={"train": np.array([0, 1]), "dev": np.array([2]), "test": np.array([3])},
        lengths={"m": np.array([2, 2, 1, 3])},
    )
    got = pooled(d, "m")
    np.testing.assert_allclose(got[:, 0], [2.0, 2.0, 1.0, 104.0 / 3])


def test_report_files_render_and_links_are_relative(tmp_path):
    result = inspect_data(
        generate(preset="mixed", n_samples=600, generator_seed=7), tsne=True, max_points=300
    )
    assert len(result.points["labels"]) == 300
    files = write_report(result, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert set(links) == {"classes.png", "projection_pca.png", "projection_tsne.png", "probes.png"}
    for link in links:
        png = (tmp_path / "rep" / link).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert json.loads((tmp_path / "rep" / files["summary"]).read_text())["dataset"] == "synthetic"
    again = inspect_data(generate(preset="mixed", n_samples=600, generator_seed=7), max_points=300)
    np.testing.assert_array_equal(again.points["pca"][ALL], result.points["pca"][ALL])


def test_inspect_help_imports_nothing_heavy():
    probe = (
        "import sys\nfrom mmbench.cli import main\nsys.argv = ['mmbench', 'inspect', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "--tsne" in proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")] == ["HEAVY="]


def test_sequence_dataset_end_to_end():
    d = generate(preset="alignment", n_samples=400)
    s = inspect_data(d, max_points=200).summary
    text = s["modalities"]["text"]
    assert text["sequence"] and text["max_len"] == d.modalities["text"]["text"].shape[1]
    assert text["lengths"]["min"] == int(d.lengths["text"].min())
    assert text["lengths"]["max"] == int(d.lengths["text"].max())
    assert {r["probe"] for r in s["probes"]["rows"]} == {"text", "audio", "visual", ALL}


# ------------------------------------------------------------------ the built-in file formats, end to end
TEXT8 = "encoders.text=tfidf"


def cli_inspect(out: Path, *args: str) -> dict:
    """`mmbench inspect ... --format json`: exit 0, report.md with a full class table; the summary."""
    res = CliRunner().invoke(
        app, ["inspect", *args, "--output", str(out), "--max-points", "200", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    md = (out / "report.md").read_text()
    assert "| class | train | dev | test | total |" in md
    counts = summary["classes"]["counts"]
    for name in summary["classes"]["names"]:
        row = f"| {name} | " + " | ".join(str(counts[s][name]) for s in ("train", "dev", "test")) + " |"
        assert row in md, (row, md)
    assert sum(summary["classes"]["total"].values()) == summary["n"]
    return summary


def test_cli_inspects_mfeat(tmp_path):
    s = cli_inspect(tmp_path / "rep", "--dataset", "mfeat")
    assert s["dataset"] == "mfeat" and len(s["classes"]["names"]) == 10
    assert s["splits"]["exact_duplicates"]["total_across"] == 0
    assert {r["probe"] for r in s["probes"]["rows"]} >= {ALL}


def test_cli_inspects_an_iemocap_sheet(tmp_path):
    from tests.plugins.datasets.sheet_fixtures import session5_rows, write_seed_sheet

    sheet = write_seed_sheet(tmp_path / "iemocap.xlsx", n_rows=320)
    s = cli_inspect(tmp_path / "rep", "--dataset", "iemocap", "--data", str(sheet), "--set", TEXT8)
    assert s["dataset"] == "iemocap" and s["n"] == 320
    assert s["classes"]["names"] == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert s["splits"]["sizes"]["test"] == session5_rows(sheet)
    assert s["splits"]["exact_duplicates"]["total_across"] == 0
    assert {"text", "audio", "visual"} <= set(s["modalities"])


def test_cli_inspects_a_meld_pickle(tmp_path):
    from tests.plugins.datasets.test_datasets_iemocap_meld import meld_pickle

    path = meld_pickle(tmp_path / "MELD_features_raw.pkl")
    s = cli_inspect(tmp_path / "rep", "--dataset", "meld", "--data", str(path))
    assert s["dataset"] == "meld" and len(s["classes"]["names"]) == 7
    assert s["splits"]["sizes"] == {"train": 2 * 1039, "dev": 2 * 114, "test": 2 * 280}
    assert s["splits"]["groups"]["dialogue"]["shared"]["train/test"]["count"] == 0


def oversampled_sheet(tmp_path: Path, n_copies: int = 40) -> tuple[Path, dict[str, str]]:
    """A seed sheet over-sampled before splitting: session-1 rows copied under new session-5 ids.

    Returns the csv and ``{copy id: source id}``.
    """
    import csv

    from tests.plugins.datasets.sheet_fixtures import COLUMNS, seed_rows

    rows = seed_rows(n_rows=320)
    sources = [r for r in rows if r[0].startswith("Ses01")][:n_copies]
    copies = [[f"Ses05F_impro09_F{100 + i:03d}", *r[1:]] for i, r in enumerate(sources)]
    path = tmp_path / "over.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLUMNS, *rows, *copies])
    return path, {c[0]: s[0] for c, s in zip(copies, sources, strict=True)}


def test_oversampled_sheet_shows_cross_split_duplicates_by_id(tmp_path):
    path, copied = oversampled_sheet(tmp_path)
    # Which split each source row landed in, from the same loader `mmbench run` uses.
    from mmbench.testing import load_dataset

    data = load_dataset("iemocap", path, ["data.allow_duplicates=true"])
    split_of = {data.ids[int(i)]: s for s, idx in data.splits.items() for i in idx}
    expected = {
        k: sum(split_of[src] == k.split("/")[0] for src in copied.values())
        for k in ("train/test", "dev/test")
    }
    assert expected["train/test"] > 0 and sum(expected.values()) == len(copied)

    # The run's duplicate guard names the copied rows by their ids.
    with pytest.raises(DataError) as err:
        prepare(
            RunRequest(dataset="iemocap", data_path=path, fusions=[], overrides=[TEXT8]), build_registry()[0]
        )
    message = str(err.value)
    assert f"{expected['train/test']} test rows duplicate train rows" in message
    pairs = re.findall(r"train (\S+) = test (\S+?)[,)]", message)
    assert pairs and all(copied[copy] == src for src, copy in pairs), message

    # The inspect report shows them too, by id, in the summary, the warnings and report.md.
    s = cli_inspect(tmp_path / "rep", "--dataset", "iemocap", "--data", str(path), "--set", TEXT8)
    exact = s["splits"]["exact_duplicates"]
    assert exact["across"] == {"train/dev": 0, **expected}
    for key in ("train/test", "dev/test"):
        assert all(copied[copy] == src for src, copy in exact["examples"][key])
    assert any("leaks across splits" in w and "= test Ses05F_impro09_F1" in w for w in s["warnings"])
    md = (tmp_path / "rep" / "report.md").read_text()
    src, copy = exact["examples"]["train/test"][0]
    assert f"test {copy} ≈ train {src}" in md and f"train {src} = test {copy}" in md


def test_duplicate_evidence_names_rows_without_ids():
    from mmbench.runner.leakage import find_duplicates

    d = leaky_data()
    d.ids = None
    text = find_duplicates(d).describe()
    src, dst = d.splits["train"][0], d.splits["test"][0]
    assert f"{N_EXACT + N_NEAR} test rows duplicate train rows" in text
    assert f"train row {src} = test row {dst}" in text
    d.ids = [f"u{i}" for i in range(d.n)]
    assert f"train u{src} = test u{dst}" in find_duplicates(d).describe()
