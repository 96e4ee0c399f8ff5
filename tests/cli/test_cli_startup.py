"""`mmbench --help` and `mmbench list` must not import torch (they stay instant)."""

import json
import subprocess
import sys

import pytest

PROBE = """
import sys
from mmbench.cli import main
sys.argv = ["mmbench", *{args!r}]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("torch", "transformers", "sklearn", "optuna") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["list"], ["list", "fusions", "--format", "json"], ["run", "--help"]]
)
def test_no_heavy_imports(args):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120
    )
    heavy_line = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy_line == ["HEAVY="], proc.stderr


def test_list_json_names_builtins():
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    fusions = {e["name"] for e in listing["fusions"]}
    assert {"cross_attention", "concat", "late", "unimodal"} <= fusions
    assert "synthetic" in {e["name"] for e in listing["datasets"]}
    assert all(e["plugin"] for e in listing["fusions"])


@pytest.mark.parametrize(
    "args", [["list", "--format", "xml"], ["leaderboard", "--format", "xml"], ["run", "--no-such-option"]]
)
def test_parser_errors_exit_2_without_traceback(args):
    """Option parsing errors raised by typer itself (not by mmbench) go through the console entry point."""
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Error" in proc.stderr
