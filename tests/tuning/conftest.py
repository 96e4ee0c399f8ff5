"""A real PostgreSQL server for the tuning tests: started here on a loopback port, stopped after.

``MMBENCH_TEST_POSTGRES_URL`` points the tests at a server started elsewhere instead. Otherwise
the fixture runs Debian's binaries (``initdb``, ``pg_ctl`` from the ``postgresql`` package;
``.ci/run`` installs it) on a throw-away cluster: trust authentication, listening on 127.0.0.1
only, a free port, its data in a temporary folder. As root it runs them as the ``postgres`` user
(PostgreSQL refuses to run as root). The tests skip, saying why, only where no server can start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

USER = "mmbench"


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.skip("PostgreSQL cannot run as root and `runuser` is missing to switch to user postgres")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """``postgresql://mmbench@127.0.0.1:PORT/postgres`` of a running server."""
    url = os.environ.get("MMBENCH_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg (3) is not installed (test extra)")
    bindir = _binaries()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="mmbench-pg-"))
    if os.geteuid() == 0:
        try:
            shutil.chown(root, user="postgres", group="postgres")
        except (LookupError, PermissionError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip(f"PostgreSQL needs a non-root user 'postgres' to run as: {exc}")
    data, log, port = root / "data", root / "server.log", _free_port()
    init = _as_server_user(
        [str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8"]
    )
    start = _as_server_user(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {root} -F",
            "start",
        ]
    )
    try:
        for cmd in (init, start):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                tail = log.read_text()[-800:] if log.exists() else ""
                pytest.skip(f"PostgreSQL did not start ({cmd[-1]}): {done.stderr.strip()[-800:]} {tail}")
        yield f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_server_user(stop), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
