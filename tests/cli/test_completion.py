"""Shell completion is on: the script is printed and the completion protocol answers."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from mmbench.cli import app


def test_completion_options_are_offered():
    # What --show-completion prints depends on the detected shell; the protocol is tested below.
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--install-completion" in res.output and "--show-completion" in res.output


def test_completion_answers_commands_and_options():
    probe = "import sys\nfrom mmbench.cli import main\nsys.argv[0] = 'mmbench'\nmain()\n"

    def complete(words: str, cword: int) -> list[str]:
        env = dict(os.environ, _MMBENCH_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        proc = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("mmbench ca", 1) == ["cache"]
    assert "--fusion" in complete("mmbench run --fu", 2)
