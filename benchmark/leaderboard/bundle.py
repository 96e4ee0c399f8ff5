"""Results bundles: a frozen, citable set of run records in one zip, and reading records back from it.

``mmbench export --runs DIR --output results.zip`` writes::

    README.md          what the bundle holds and the commands that regenerate its boards
    CITATION.cff       Citation File Format 1.2.0 metadata for the result set
    manifest.json      mmbench version, record count, groups (dataset + fingerprints), sha256 of every file
    environment.json   the exporting machine's environment and every distinct environment of the runs
    runs/...           the records and their test predictions, at their paths under DIR (no checkpoints;
                       plugin install locations removed)
    boards/            leaderboard.md (+ PNG charts), leaderboard.tex, leaderboard.json, leaderboard.csv
                       (one group only) and site/ (the static HTML leaderboard), all made from runs/

``mmbench leaderboard --runs results.zip`` reads the bundle's records without extracting it: member
names are checked (no absolute paths, no ``..``, no links: a zip-slip cannot write outside a private
temporary folder), only ``.json`` members are read, and the member count and sizes are bounded, so a
bundle from anywhere cannot fill the disk. The boards' footers name ``--runs <bundle>``, so the footer
command regenerates ``boards/leaderboard.md`` byte for byte.

Zips are deterministic: members sorted, fixed timestamps and permissions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mmbench.errors import UsageError

#: Where a bundle keeps its records.
RUNS_PREFIX = "runs/"
#: Bounds on what reading a zip may unpack (declared sizes; zipfile stops at the declared size).
MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 256 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30
#: 1980-01-01: the earliest zip timestamp; bundles do not depend on the clock.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    members: int = MAX_MEMBERS
    member_bytes: int = MAX_MEMBER_BYTES
    total_bytes: int = MAX_TOTAL_BYTES


# ---------------------------------------------------------------- writing
def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """Write ``members`` (posix name → bytes) to ``path`` atomically and deterministically (sorted names,
    fixed times and permissions)."""
    from mmbench.records import atomic_write_bytes

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3  # unix, so the permissions above are read as such
            zf.writestr(info, members[name])
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


# ---------------------------------------------------------------- reading
def _is_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


def check_member(name: str, info: zipfile.ZipInfo, where: Path) -> None:
    """Refuse member names that could escape the extraction folder, and links/devices.

    Raises:
        UsageError: naming the bundle and the member.
    """
    posix = PurePosixPath(name)
    kind = (info.external_attr >> 16) & 0o170000
    problem = None
    if "\\" in name or name.startswith("/") or (posix.parts and ":" in posix.parts[0]):
        problem = "an absolute or Windows path"
    elif any(part in ("..", "") for part in name.rstrip("/").split("/")):
        problem = "a '..' or empty path component"
    elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        problem = "a link or special file"
    if problem:
        raise UsageError(f"--runs {where}: member {name!r} is {problem}; refusing to read this zip")


def extract_records(zip_path: Path, dest: Path, limits: Limits = Limits()) -> Path:
    """Copy the record and prediction files (``*.json``) of a zip into ``dest``; return the runs folder.

    The runs folder is ``dest/runs`` when the zip has a ``runs/`` folder (a bundle made by
    ``mmbench export``), else ``dest`` (a zip of a runs folder). Other members are not read.

    Raises:
        UsageError: not a zip, an unsafe member name, or more members or bytes than ``limits``.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"--runs {zip_path}: not a readable zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.members:
            raise UsageError(
                f"--runs {zip_path}: {len(infos)} members, more than the limit of {limits.members}"
            )
        for info in infos:
            check_member(info.filename, info, zip_path)
        wanted = [i for i in infos if not i.is_dir() and i.filename.endswith(".json")]
        prefix = RUNS_PREFIX if any(i.filename.startswith(RUNS_PREFIX) for i in wanted) else ""
        wanted = [i for i in wanted if i.filename.startswith(prefix)]
        total = 0
        for info in wanted:
            if info.file_size > limits.member_bytes:
                raise UsageError(
                    f"--runs {zip_path}: member {info.filename!r} unpacks to {info.file_size} bytes, "
                    f"more than the limit of {limits.member_bytes} bytes"
                )
            total += info.file_size
            if total > limits.total_bytes:
                raise UsageError(
                    f"--runs {zip_path}: the records unpack to more than the limit of "
                    f"{limits.total_bytes} bytes"
                )
        root = Path(dest)
        for info in wanted:
            target = root.joinpath(*PurePosixPath(info.filename).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                payload = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise UsageError(f"--runs {zip_path}: member {info.filename!r} is damaged ({exc})") from None
            target.write_bytes(payload)
    return root / prefix if prefix else root


@contextlib.contextmanager
def open_runs(runs: Path, limits: Limits = Limits()) -> Iterator[Path]:
    """A folder of run records: ``runs`` itself, or a zip's records unpacked into a private temporary folder.

    Raises:
        UsageError: ``runs`` is neither a folder nor a zip, or the zip is unsafe (see ``extract_records``).
    """
    runs = Path(runs)
    if runs.is_dir():
        yield runs
        return
    if not _is_zip(runs):
        raise UsageError(f"--runs {runs}: no such folder or results bundle (.zip)")
    with tempfile.TemporaryDirectory(prefix="mmbench-runs-") as tmp:
        folder = extract_records(runs, Path(tmp), limits)
        if not any(folder.rglob("*.json")):
            raise UsageError(f"--runs {runs}: the zip holds no run records (.json)")
        yield folder


# ---------------------------------------------------------------- exporting
def public_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as published: loader fields (``_path``) and the checkpoint dropped, plugin install
    locations (the publisher's paths, not results) removed."""
    out = {k: v for k, v in record.items() if not k.startswith("_") and k != "checkpoint_file"}
    env = dict(out.get("environment") or {})
    if env.get("plugins"):
        env["plugins"] = [{k: v for k, v in pl.items() if k != "location"} for pl in env["plugins"]]
        out["environment"] = env
    return out


def record_members(
    records: list[dict[str, Any]], runs_dir: Path, prefix: str = RUNS_PREFIX
) -> dict[str, bytes]:
    """Zip members for ``records`` (as loaded, with ``_path``) and their prediction files, at their
    paths relative to ``runs_dir`` under ``prefix``. Predictions are copied as they are."""
    members: dict[str, bytes] = {}
    for rec in records:
        src = Path(rec["_path"])
        rel = src.relative_to(runs_dir).as_posix()
        record = public_record(rec)
        pred_name = rec.get("predictions_file")
        pred = src.parent / pred_name if pred_name else None
        if pred is not None and pred.is_file():
            members[prefix + str(PurePosixPath(rel).parent / pred_name).removeprefix("./")] = (
                pred.read_bytes()
            )
        else:
            record.pop("predictions_file", None)
        members[prefix + rel] = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    return members


# ---------------------------------------------------------------- the bundle's other files
BOARD_STEM = "boards/leaderboard"
SITE_DIR = "boards/site"


def parse_author(text: str) -> dict[str, str]:
    """A CFF author: ``"Family, Given"`` → a person; any other text → an entity name (a team, a lab)."""
    text = " ".join(str(text).split())
    if not text:
        raise UsageError("--author: empty name")
    if "," in text:
        family, given = (p.strip() for p in text.split(",", 1))
        return {"family-names": family, "given-names": given} if given else {"family-names": family}
    return {"name": text}


def citation_cff(
    title: str, authors: list[str], date: str, version: str, abstract: str, keywords: list[str]
) -> str:
    """``CITATION.cff`` (Citation File Format 1.2.0, type dataset) for a result set.

    Raises:
        UsageError: ``date`` is not YYYY-MM-DD, or an author is empty.
    """
    import datetime

    import yaml

    import mmbench

    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        raise UsageError(f"--date {date!r}: give the release date as YYYY-MM-DD") from None
    data = {
        "cff-version": "1.2.0",
        "message": "If you use these results, please cite them as below.",
        "type": "dataset",
        "title": title,
        "authors": [parse_author(a) for a in authors] or [{"name": "unknown (mmbench export --author)"}],
        "date-released": date,
        "version": version,
        "abstract": abstract,
        "keywords": keywords,
        "references": [
            {
                "type": "software",
                "title": "mmbench",
                "version": mmbench.__version__,
                "authors": [{"name": "the mmbench developers"}],
            }
        ],
    }
    return "# Generated by `mmbench export`.\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def manifest(members: dict[str, bytes], board: Any, command: str) -> dict[str, Any]:
    """What the bundle holds: groups with their fingerprints, and every file's size and sha256."""
    import mmbench

    return {
        "format": "mmbench results bundle",
        "format_version": 1,
        "mmbench": mmbench.__version__,
        "command": command,
        "records": sum(1 for n in members if n.startswith(RUNS_PREFIX) and is_record_name(n)),
        "groups": [
            {
                "dataset": g.dataset,
                "title": g.title,
                "protocol_fingerprint": g.protocol_fingerprint,
                "dataset_fingerprint": g.dataset_fingerprint,
                "metric": g.metric,
                "rows": [r.label for r in g.rows],
                "failed_runs": len(g.failed),
            }
            for g in board.groups
        ],
        "files": {n: {"bytes": len(b), "sha256": sha256(b)} for n, b in sorted(members.items())},
    }


def is_record_name(name: str) -> bool:
    from mmbench.records import PREDICTIONS_SUFFIX, RECORD_SUFFIX

    base = name.rsplit("/", 1)[-1]
    return base.endswith(RECORD_SUFFIX) and not base.endswith(PREDICTIONS_SUFFIX) and not base.startswith(".")


def readme(bundle_name: str, board: Any, commands: dict[str, str]) -> str:
    lines = [
        f"# Results bundle: {board.selection}",
        "",
        "Made by `mmbench export`. A frozen result set: the run records and test predictions under",
        "`runs/`, the leaderboards made from them under `boards/`, the environment of the runs and of",
        "the export in `environment.json`, and `CITATION.cff` to cite it. `manifest.json` lists every",
        "file with its sha256.",
        "",
        "Regenerate the boards from this bundle (in the folder that holds it):",
        "",
        *[f"    {c}" for c in commands.values()],
        "",
        "The markdown comes out byte for byte as `boards/leaderboard.md`.",
        "",
        "Boards:",
        "",
        *[
            f"- {g.title}: protocol `{g.protocol_fingerprint}`, dataset `{g.dataset_fingerprint}`"
            for g in board.groups
        ],
        "",
    ]
    return "\n".join(lines)


def environments(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The exporting machine's environment and the distinct environments the runs recorded."""
    from mmbench.runner.environment import environment

    seen: dict[str, dict[str, Any]] = {}
    for rec in records:
        env = public_record({"environment": rec.get("environment") or {}})["environment"]
        env = {k: v for k, v in env.items() if k != "command"}
        seen.setdefault(json.dumps(env, sort_keys=True), env)
    export = {
        k: v for k, v in environment("cpu").items() if k not in ("device", "device_name", "torch_threads")
    }
    return {"export": export, "runs": [seen[k] for k in sorted(seen)]}


@dataclass
class Citation:
    """What ``CITATION.cff`` says beyond the records: title, authors, release date (YYYY-MM-DD)."""

    title: str | None = None
    authors: list[str] | None = None
    date: str | None = None


def _tree(folder: Path, prefix: str) -> dict[str, bytes]:
    return {
        prefix + p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _board_files(
    board: Any, runs_dir: Path, out: Path, command_for: Callable[[str, str], str]
) -> dict[str, str]:
    """Write the boards of ``board`` under ``out/boards``; return format → regenerate command."""
    from mmbench.leaderboard.latex import render_latex
    from mmbench.leaderboard.plots import plot_group
    from mmbench.leaderboard.render import plot_names, render_csv, render_json, render_markdown
    from mmbench.leaderboard.site import render_site
    from mmbench.records import atomic_write_text

    md = out / f"{BOARD_STEM}.md"
    commands = {
        "md": command_for("md", f"{BOARD_STEM}.md"),
        "latex": command_for("latex", f"{BOARD_STEM}.tex"),
        "json": command_for("json", f"{BOARD_STEM}.json"),
        "html": command_for("html", SITE_DIR),
    }
    links: dict[int, dict[str, str]] = {}
    for i, group in enumerate(board.groups):  # as `mmbench leaderboard --plots` does
        if group.rows:
            links[i] = plot_names(board, group, md)
            plot_group(
                group,
                md.parent / links[i]["bars"],
                md.parent / links[i]["per_class"] if "per_class" in links[i] else None,
            )
            if "noise" in links[i]:
                from mmbench.robustness.plots import plot_contributions, plot_noise_curves

                analysed = [r for row in group.rows for r in row.records if r.get("robustness")]
                plot_noise_curves(analysed, md.parent / links[i]["noise"])
                plot_contributions(analysed, md.parent / links[i]["contributions"])
    atomic_write_text(md, render_markdown(board, commands["md"], links))
    atomic_write_text(out / f"{BOARD_STEM}.tex", render_latex(board, commands["latex"]))
    atomic_write_text(out / f"{BOARD_STEM}.json", render_json(board, commands["json"]))
    if len(board.groups) == 1:
        commands["csv"] = command_for("csv", f"{BOARD_STEM}.csv")
        atomic_write_text(out / f"{BOARD_STEM}.csv", render_csv(board))
    render_site(board, out / SITE_DIR, runs_dir, commands["html"])
    return commands


def export_bundle(
    board: Any,
    runs_dir: Path,
    output: Path,
    citation: Citation,
    command_for: Callable[[str, str], str],
    rebuild: Callable[[Path], Any],
    command: str,
) -> dict[str, Any]:
    """Write the results bundle of ``board`` (built from records under ``runs_dir``) to ``output``.

    The boards inside are built by ``rebuild(folder)`` from the bundle's own copy of the records, with
    ``command_for(format, path)`` as their footers' command, so that ``mmbench leaderboard --runs
    <bundle>`` regenerates them exactly. Returns the manifest.
    """
    import datetime

    records = [r for g in board.groups for row in g.rows for r in row.records] + [
        r for g in board.groups for r in g.failed
    ]
    members = record_members(records, Path(runs_dir))
    with tempfile.TemporaryDirectory(prefix="mmbench-export-") as tmp:
        tmp_zip = write_zip(Path(tmp) / "runs.zip", members)
        with open_runs(tmp_zip) as bundle_runs:
            bundle_board = rebuild(bundle_runs)
            commands = _board_files(bundle_board, bundle_runs, Path(tmp) / "out", command_for)
        members.update(_tree(Path(tmp) / "out", ""))
    datasets = sorted({g.dataset for g in board.groups})
    fusions = sorted({row.fusion for g in board.groups for row in g.rows})
    version = sha256(
        b"".join(sha256(members[n]).encode() for n in sorted(members) if n.startswith(RUNS_PREFIX))
    )
    abstract = (
        f"mmbench run records of {len(records)} run(s): fusions {', '.join(fusions)} on "
        f"{', '.join(datasets)}; {len(board.groups)} leaderboard(s), each one protocol and dataset "
        "fingerprint "
        "("
        + "; ".join(f"{g.title}: {g.protocol_fingerprint}/{g.dataset_fingerprint}" for g in board.groups)
        + ")."
    )
    members["CITATION.cff"] = citation_cff(
        citation.title or f"mmbench results: {board.selection}",
        citation.authors or [],
        citation.date or datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        version[:12],
        abstract,
        ["mmbench", "multimodal fusion", "benchmark", *datasets],
    ).encode()
    members["environment.json"] = (
        json.dumps(environments(records), indent=2, sort_keys=True) + "\n"
    ).encode()
    members["README.md"] = readme(Path(output).name, board, commands).encode()
    info = manifest(members, board, command)
    members["manifest.json"] = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()
    write_zip(output, members)
    return info
