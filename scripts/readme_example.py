"""Regenerate README.md's "Example" from a real run of ``mmbench run`` (run it at release time).

    python scripts/readme_example.py            # runs `mmbench run` in a temporary folder, rewrites README.md
    python scripts/readme_example.py --dry-run  # prints the new block instead

The block between ``<!-- example:start -->`` and ``<!-- example:end -->`` is replaced by the command,
the machine it ran on (CPU, cores, torch threads, load average before the run, date), its wall time
and the table it printed (``COLUMNS=120``). Nothing in it is typed by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- example:start -->", "<!-- example:end -->"
COMMAND = ["mmbench", "run"]


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    return (
        f"{cpu_name()}, {os.cpu_count()} logical cores, OMP_NUM_THREADS={threads}, "
        f"load average {load} before the run, {platform.system()} {platform.release()}"
    )


def run_example(out_dir: Path) -> tuple[str, float]:
    """Run the example in ``out_dir``; return its stdout (the table) and wall seconds."""
    env = dict(os.environ, COLUMNS="120")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", *COMMAND[1:]],
        cwd=out_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(COMMAND)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def render_block(table: str, seconds: float, machine_line: str, date: str) -> str:
    """The README block (between the markers) for one measured run."""
    import textwrap

    lines = [line.rstrip() for line in table.rstrip().splitlines()]
    prose = (
        f"`{' '.join(COMMAND)}` with no options trains the reference fusion (`cross_attention`) on the "
        "embedded `synthetic` dataset (preset `mixed`) with the protocol's three seeds. Measured by "
        f"`scripts/readme_example.py` on {date}: {seconds:.0f} s wall time on {machine_line}. It printed:"
    )
    return "\n".join([START, *textwrap.wrap(prose, 100), "", "```", *lines, "```", END])


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers (inclusive) replaced by ``block``."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), flags=re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _: block, readme, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="print the block, leave README.md alone")
    args = parser.parse_args()
    machine_line = machine()
    with tempfile.TemporaryDirectory() as tmp:
        table, seconds = run_example(Path(tmp))
    block = render_block(table, seconds, machine_line, dt.date.today().isoformat())
    if args.dry_run:
        print(block)
        return
    readme = ROOT / "README.md"
    readme.write_text(replace_block(readme.read_text(encoding="utf-8"), block), encoding="utf-8")
    print(f"README.md example regenerated ({seconds:.0f} s run)", file=sys.stderr)


if __name__ == "__main__":
    main()
