"""CLI options: one name, one meaning, one default across every command (walked with click)."""

from collections import defaultdict

import pytest
import typer
from typer.testing import CliRunner

from mmbench.cli import app

COMMAND = typer.main.get_command(app)

#: Options declared once in ``mmbench.commands.options`` and taken by several commands: their
#: type, default, help and short alias must be identical wherever they appear.
UNIFORM = (
    "--data",
    "--seeds",
    "--max-epochs",
    "--set",
    "--protocol",
    "--params",
    "--device",
    "--precision",
    "--compile",
    "--out",
    "--runs",
    "--executor",
    "--threads",
    "--address",
    "--executor-opt",
)

#: Names that differ on purpose, and why (anything else sharing a name must agree).
VARIANTS = {
    "--fusion": "what is trained (run/tune: one reference, sweep/bench: all) or a filter over records",
    "--dataset": "the dataset to load, or a filter over records (plot, leaderboard, robustness)",
    "--format": "leaderboard also writes md/csv and follows the --output suffix by default",
    "--encoder": "extract names extractors with options and an output column (MODALITY=NAME[:k=v][@COL])",
    "--output": "each command writes its own kind of file or report folder",
    "--plots": "leaderboard: a flag (PNGs beside the markdown); robustness/tune: a folder",
    "--seed": "inspect: seed of the plotted sample; tune: the training seed of every trial",
    "--force": "each command redraws or overwrites its own outputs",
    "--strict": "extract: a clip that cannot be extracted; leaderboard: a damaged record (skipped otherwise)",
    "--workers": "extract: threads of the numpy extractors; sweep/tune: cells or study workers at once",
    "--context": "run/sweep: context models crossed with the fusions; tune: the one tuned with the fusion; "
    "bench: time context models instead of the bare-loop comparison",
}


def _commands(group=COMMAND, prefix: str = ""):
    """Every command, those of sub-apps (``mmbench cache list``) included, as ``(name, command)``."""
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")


def _options() -> dict[str, list[tuple[str, object]]]:
    by_name = defaultdict(list)
    for name, command in _commands():
        for param in command.params:
            if param.param_type_name != "option" or param.hidden:
                continue
            long = next(o for o in param.opts if o.startswith("--"))
            by_name[long].append((name, param))
    return by_name


def _signature(param) -> tuple:
    """Kind, default, names and the first sentence of the help (a command may add a second one,
    e.g. leaderboard's --runs also reads a results bundle)."""
    return (
        (param.is_flag, param.nargs),
        repr(param.default),
        (param.help or "").split(", or ")[0].split(". ")[0].rstrip("."),
        tuple(sorted(param.opts + param.secondary_opts)),
        param.multiple,
    )


@pytest.mark.parametrize("name", UNIFORM)
def test_shared_option_is_the_same_everywhere(name):
    uses = _options()[name]
    assert uses, f"{name} is not used by any command"
    signatures = {_signature(p) for _, p in uses}
    assert len(signatures) == 1, f"{name} differs between {[c for c, _ in uses]}: {signatures}"


def test_every_shared_name_is_uniform_or_a_documented_variant():
    for name, uses in _options().items():
        if len(uses) > 1 and name not in VARIANTS:
            assert len({_signature(p) for _, p in uses}) == 1, f"{name}: {[c for c, _ in uses]}"


def test_names_and_defaults_follow_the_conventions():
    options = _options()
    assert {c for c, p in options["--device"]} >= {"run", "sweep", "tune", "bench", "reproduce", "robustness"}
    assert all(p.default == "auto" for _, p in options["--device"])
    # --out: run records a command writes; --output: any other written file or folder.
    assert {c for c, _ in options["--out"]} == {"run", "sweep"}
    assert not {c for c, _ in options["--output"]} & {"run", "sweep"}
    assert {c for c, _ in options["--runs"]} == {"leaderboard", "plot", "robustness", "export"}
    for legacy in ("--epochs", "--output-dir", "--out-dir", "--outdir", "--n-epochs"):
        assert legacy not in options, f"visible option {legacy}"
    for command in ("run", "sweep", "tune"):
        names = {n for n, uses in options.items() if any(c == command for c, _ in uses)}
        assert {"--precision", "--compile", "--max-epochs", "--device"} <= names, command


def test_sweep_help_lists_precision_and_compile():
    result = CliRunner().invoke(app, ["sweep", "--precision", "fp32", "--compile", "--help"])
    assert result.exit_code == 0
    assert "--precision" in result.output and "--compile" in result.output


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_bad_precision_is_refused_by_sweep_and_tune(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [command, "--precision", "fp8", "--fusion", "concat"])
    assert result.exit_code == 2
    assert "--precision must be" in " ".join(result.output.split())


def test_bench_keeps_the_old_epochs_spelling_hidden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--epochs", "0", "--fusion", "concat"])
    assert result.exit_code == 2 and "--max-epochs and --repeats" in " ".join(result.output.split())
    assert "--epochs" not in CliRunner().invoke(app, ["bench", "--help"]).output.replace("--max-epochs", "")
