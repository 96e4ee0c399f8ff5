"""``mmbench --version``: the installed version, instantly (no torch import)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import mmbench
from mmbench.cli import app


def test_version_prints_the_package_version():
    for flag in ("--version", "-V"):
        res = CliRunner().invoke(app, [flag])
        assert res.exit_code == 0, res.output
        assert res.stdout.startswith(f"mmbench {mmbench.__version__} (Python ")


def test_version_imports_no_torch():
    probe = (
        "import sys\nfrom mmbench.cli import main\nsys.argv = ['mmbench', '--version']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT', code, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("mmbench ") and proc.stderr.strip().endswith("LIGHT 0"), proc.stderr
