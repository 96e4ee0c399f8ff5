"""Progress off a terminal: per-epoch log lines in a batch job's log, rate-limited, and an overall
line per finished run with the ETA of the rest."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from mmbench.ui import console as ui_console
from mmbench.ui.console import HouseConsole, RichReporter, epoch_line

EPOCH = re.compile(
    r"^mmbench: (concat|late) seed (\d) epoch (\d)/3 train_loss=\d+\.\d{4} dev_loss=\d+\.\d{4} "
    r"dev_weighted_f1=\d\.\d{4} "
    r"lr=\d\.\d\de-\d\d elapsed \d+s eta<=\d+s$"
)


def test_run_with_stderr_to_a_file_writes_one_line_per_epoch(tmp_path):
    log = tmp_path / "log"
    env = dict(os.environ, OMP_NUM_THREADS="1", MMBENCH_LOG_SECONDS="0")
    env.pop("COLUMNS", None)
    cmd = [sys.executable, "-m", "mmbench", "run", "--fusion", "concat,late", "--seeds", "0,1"]
    cmd += ["--max-epochs", "3", "--set", "data.n_samples=300", "--out", str(tmp_path / "runs")]
    cmd += ["--set", "train.patience=10"]
    with log.open("w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, timeout=240)
    text = log.read_text()
    assert proc.returncode == 0, text[-2000:]
    epochs = [m.groups() for m in map(EPOCH.match, text.splitlines()) if m]
    expected = [(f, s, e) for f in ("concat", "late") for s in "01" for e in "123"]
    assert epochs == expected, text
    assert "runs 4/4 done" in text and "runs 2/4 done" in text
    assert "concat" in proc.stdout and "━" in proc.stdout  # the table went to stdout, not the log


def test_epoch_lines_are_rate_limited_but_keep_the_first_and_last(monkeypatch):
    clock = iter([0.0] + [0.1 * i for i in range(1, 40)])
    monkeypatch.setattr(ui_console.time, "perf_counter", lambda: next(clock))
    monkeypatch.setenv("MMBENCH_LOG_SECONDS", "1")
    buf = io.StringIO()
    reporter = RichReporter(HouseConsole(file=buf, stderr=True))
    reporter.run_started("concat seed 0", 30)
    for epoch in range(1, 31):
        reporter.epoch_ended(epoch, {"train_loss": 1.0, "dev_weighted_f1": 0.5, "lr": 1e-3})
    lines = [line for line in buf.getvalue().splitlines() if " epoch " in line]
    numbers = [int(re.search(r"epoch (\d+)/30", line).group(1)) for line in lines]
    assert numbers[0] == 1 and numbers[-1] == 30
    assert 3 <= len(numbers) <= 5  # 3 s of epochs at one line a second, plus the first and last


def test_eta_is_the_remaining_epochs_at_the_mean_epoch_time():
    line = epoch_line("late seed 1", 10, 40, {"train_loss": 0.5, "dev_weighted_f1": 0.7, "lr": 5e-4}, 20.0)
    assert line.endswith("elapsed 20s eta<=1m00s")
    assert "lr=5.00e-04" in line


def test_on_a_terminal_several_runs_get_an_overall_bar_with_eta():
    buf = io.StringIO()
    console = HouseConsole(file=buf, stderr=True, force_terminal=True, width=120)
    reporter = RichReporter(console)
    reporter.expect_runs(2)
    for seed in (0, 1):
        reporter.run_started(f"concat seed {seed}", 3)
        for epoch in (1, 2, 3):
            reporter.epoch_ended(epoch, {"train_loss": 1.0 / epoch, "dev_weighted_f1": 0.5, "lr": 1e-3})
        reporter.run_ended(f"concat seed {seed}", {"status": "failed", "failure": {"reason": "test"}})
    text = buf.getvalue()
    assert "all runs" in text and "2/2" in text and "concat seed 1" in text
    assert " epoch 1/3 " not in text  # bars on a terminal, not log lines
    assert reporter.progress is None  # stopped after the last run
