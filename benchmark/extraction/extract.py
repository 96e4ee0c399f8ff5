"""``mmbench extract``: raw media + a manifest -> a feature table in the reference spreadsheet layout.

The manifest (CSV, TSV or XLSX) has one row per utterance: an id (``File Name``, ``File_name``
or ``id``), the ``Utterance`` text, the ``Emotion`` label and optional ``Split``, ``audio`` /
``video`` path columns and any other columns, which are copied through. Media files are
``<audio-dir>/<id>.wav`` (or another audio suffix), ``<video-dir>/<id>.mp4`` or the path columns;
audio encoders fall back to the video's sound track when no audio is given.

Every encoder (``MODALITY=NAME[:key=value,...][@COLUMN]``) writes one feature column
(``wav2vec2`` -> ``V1``, ``mfcc`` -> ``V2``, ``prosody`` -> ``V3``, ``frames`` -> ``A2`` unless
``@COLUMN`` says otherwise). Each utterance's result is stored as soon as it is computed in
``<output>/.parts/<encoder key>/<id>.npz`` (atomic write), keyed by the encoder's full identity
and checked against the input file's size, mtime and SHA-256, so an interrupted extraction
continues where it stopped and a repeated one does no work. The table ``features.csv`` and
``manifest.json`` (encoder identities, per-file input hashes, errors) are written atomically at
the end. A clip that cannot be decoded is reported and left out; it is not fatal unless
``strict``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError, UsageError
from mmbench.extraction.checks import check_media_not_shared, guess_dataset, media_warnings
from mmbench.extraction.shards import ShardStore, encoder_key, sha256_file
from mmbench.records import atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1
TABLE_NAME = "features.csv"
MANIFEST_NAME = "manifest.json"
PARTS_DIR = ".parts"
ID_COLUMNS = ("File Name", "File_name", "file_name", "id", "ID")
TEXT_COLUMN, LABEL_COLUMN, SPLIT_COLUMN = "Utterance", "Emotion", "Split"
AUDIO_COLUMNS = ("audio", "Audio", "audio_path")
VIDEO_COLUMNS = ("video", "Video", "video_path")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]*$")


@dataclass(frozen=True)
class EncoderSpec:
    """One ``--encoder`` argument: modality, extractor name, options and output column."""

    modality: str
    name: str
    options: dict[str, str]
    column: str


def parse_encoder_spec(text: str) -> EncoderSpec:
    """Parse ``MODALITY=NAME[:key=value,...][@COLUMN]`` (e.g. ``audio=mfcc:n_mfcc=13@V2``)."""
    from mmbench.contracts import extractor_entry

    usage = f"--encoder expects MODALITY=NAME[:key=value,...][@COLUMN] (e.g. audio=mfcc@V2), got {text!r}"
    modality, sep, rest = text.partition("=")
    modality = modality.strip()
    if not sep or not modality or not rest.strip():
        raise UsageError(usage)
    column = None
    head, at, tail = rest.rpartition("@")
    if at and _COLUMN_RE.match(tail.strip()) and "=" not in tail:
        rest, column = head, tail.strip()
    name, _, opt_text = rest.partition(":")
    name = name.strip()
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in opt_text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"{usage}: option {item!r} is not key=value")
        options[key.strip()] = value.strip()
    entry = extractor_entry(name, modality)
    return EncoderSpec(modality, name, options, column or entry.extra["column"])


@dataclass
class Utterance:
    """One manifest row with its media files resolved."""

    row: int  # spreadsheet row number (the header is row 1)
    id: str
    text: str
    label: str
    extra: dict[str, str]
    audio: Path | None = None
    video: Path | None = None
    #: the ``Split`` column's value: ids need only be unique within a split (MELD restarts them)
    split: str = ""
    #: whether ids repeat across splits, so that the split is part of the identity
    scoped: bool = False

    @property
    def key(self) -> str:
        """The utterance's identity: ``split/id`` when ids repeat across splits, else ``id``."""
        return f"{self.split}/{self.id}" if self.scoped and self.split else self.id

    def media(self, modality: str) -> Path:
        path = self.audio if modality == "audio" else self.video
        assert path is not None
        return path


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise UsageError(f"manifest {path} does not exist")
    try:
        if path.suffix.lower() in {".xlsx", ".xls"}:
            return pd.read_excel(path, dtype=str, keep_default_na=False)
        sep = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep)
    except Exception as exc:
        raise DataError(f"cannot read the manifest: {exc}", path=path) from None


def _find_media(ident: str, folder: Path, suffixes: tuple[str, ...], split: str = "") -> Path | None:
    """``<folder>/<split>/<id><suffix>`` (ids scoped by split), else ``<folder>/<id><suffix>``."""
    for base in ([folder / split] if split else []) + [folder]:
        for suffix in suffixes:
            candidate = base / f"{ident}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_manifest(
    path: Path,
    *,
    audio_dir: Path | None = None,
    video_dir: Path | None = None,
    need_audio: bool = False,
    need_video: bool = False,
) -> list[Utterance]:
    """Rows of the manifest with their media paths; any missing column or file is a ``DataError``."""
    path = Path(path)
    df = _read_table(path)
    columns = list(df.columns)
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    if id_col is None:
        raise DataError(
            f"no utterance id column (one of {', '.join(ID_COLUMNS)}); columns: {columns}", path=path
        )
    for needed in (TEXT_COLUMN, LABEL_COLUMN):
        if needed not in columns:
            raise DataError(f"missing column {needed!r}; columns: {columns}", path=path)
    audio_col = next((c for c in AUDIO_COLUMNS if c in columns), None)
    video_col = next((c for c in VIDEO_COLUMNS if c in columns), None)
    if need_video and video_dir is None and video_col is None:
        raise UsageError("visual encoders need --video-dir or a 'video' column in the manifest")
    if need_audio and audio_dir is None and audio_col is None and video_dir is None and video_col is None:
        raise UsageError("audio encoders need --audio-dir, an 'audio' column in the manifest or --video-dir")
    for folder, flag in ((audio_dir, "--audio-dir"), (video_dir, "--video-dir")):
        if folder is not None and not Path(folder).is_dir():
            raise UsageError(f"{flag} {folder} is not a folder")
    skip = {id_col, TEXT_COLUMN, LABEL_COLUMN, audio_col, video_col}
    base = path.parent
    out: list[Utterance] = []
    seen: dict[str, int] = {}
    missing: list[tuple[int, str]] = []
    has_split = SPLIT_COLUMN in columns
    for i, rec in enumerate(df.to_dict("records")):
        row = i + 2
        ident = str(rec[id_col]).strip()
        split = str(rec[SPLIT_COLUMN]).strip() if has_split else ""
        if not ident:
            raise DataError("empty utterance id", path=path, row=row, column=id_col)
        key = f"{split}/{ident}" if split else ident
        if key in seen:
            within = f" within split {split!r}" if split else ""
            raise DataError(
                f"utterance id {ident!r} repeats row {seen[key]}{within}", path=path, row=row, column=id_col
            )
        seen[key] = row
        utt = Utterance(
            row=row,
            id=ident,
            text=str(rec[TEXT_COLUMN]),
            label=str(rec[LABEL_COLUMN]).strip(),
            extra={c: str(rec[c]) for c in columns if c not in skip},
            split=split,
        )
        if not utt.label:
            raise DataError("empty label", path=path, row=row, column=LABEL_COLUMN)

        def explicit(col: str | None, _rec: dict = rec) -> Path | None:
            value = str(_rec[col]).strip() if col else ""
            return (base / Path(value).expanduser()) if value else None

        if need_video:
            utt.video = explicit(video_col) or _find_media(
                ident, Path(video_dir or base), VIDEO_SUFFIXES, split
            )
            if utt.video is None or not utt.video.is_file():
                shown = utt.video or Path(video_dir or base) / f"{ident}.mp4"
                missing.append((row, f"video file {shown} does not exist"))
        if need_audio:
            utt.audio = explicit(audio_col)
            if utt.audio is None and audio_dir is not None:
                utt.audio = _find_media(ident, Path(audio_dir), AUDIO_SUFFIXES, split)
                if utt.audio is None:
                    missing.append((row, f"audio file {Path(audio_dir) / (ident + '.wav')} does not exist"))
                    out.append(utt)
                    continue
            if utt.audio is None:  # the sound track of the video
                utt.audio = explicit(video_col) or (
                    _find_media(ident, Path(video_dir), VIDEO_SUFFIXES, split) if video_dir else None
                )
                if utt.audio is None:
                    missing.append((row, f"no audio or video file for utterance {ident!r}"))
                    out.append(utt)
                    continue
            if not utt.audio.is_file():
                missing.append((row, f"audio file {utt.audio} does not exist"))
        out.append(utt)
    if missing:
        row, message = missing[0]
        more = (
            f" ({len(missing) - 1} more rows lack media: rows {', '.join(str(r) for r, _ in missing[1:6])}"
            + (", ...)" if len(missing) > 6 else ")")
        )
        raise DataError(message + (more if len(missing) > 1 else ""), path=path, row=row)
    if not out:
        raise DataError("the manifest has no rows", path=path)
    if len({u.id for u in out}) < len(out):  # ids restart per split: the split joins the identity
        for utt in out:
            utt.scoped = True
    check_media_not_shared(out, path)
    return out


def format_cell(value: np.ndarray) -> str:
    """A feature vector (or frame sequence) as a list literal: ``[0.1, -2.5, ...]``."""
    if value.ndim == 0:
        return f"{float(value):.9g}"
    if value.ndim == 1:
        return "[" + ", ".join(f"{float(v):.9g}" for v in value) + "]"
    return "[" + ", ".join(format_cell(v) for v in value) + "]"


@dataclass
class ExtractionResult:
    """What one ``extract`` call did; ``summary`` is what the CLI prints."""

    table: Path
    manifest: Path
    rows: int
    computed: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: modality -> the table's feature columns for it, in the order the encoders were given
    columns: dict[str, list[str]] = field(default_factory=dict)
    #: columns holding a sequence per utterance (``[T, D]`` cells): the table datasets read only
    #: one vector per cell, so these are left out of :attr:`run_command`
    sequence_columns: list[str] = field(default_factory=list)
    #: the dataset plugin that reads the table (``--dataset``, or the one whose ids match)
    dataset: str | None = None
    #: per clip: what was read (sample rate, channels, duration, resampling), by utterance key
    media_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def run_command(self) -> str | None:
        """A ``mmbench run`` line that benchmarks on this table's vector columns (None if it has none)."""
        flat = {m: [c for c in cols if c not in self.sequence_columns] for m, cols in self.columns.items()}
        if not any(flat.values()):
            return None
        sets = " ".join(f"--set data.{m}_columns=[{','.join(flat.get(m, []))}]" for m in ("audio", "visual"))
        dataset = self.dataset or "DATASET"
        return f"mmbench run --dataset {dataset} --data {self.table} {sets}"

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "table": str(self.table),
            "manifest": str(self.manifest),
            "rows": self.rows,
            "computed": self.computed,
            "reused": self.reused,
            "errors": self.errors,
            "columns": self.columns,
            "sequence_columns": self.sequence_columns,
            "dataset": self.dataset,
            "warnings": self.warnings,
            "run_command": self.run_command,
        }


def _default_progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    from mmbench.ui.console import err_console

    return RichProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )


def run_extraction(
    manifest: Path,
    encoders: list[str] | list[EncoderSpec],
    output: Path,
    *,
    audio_dir: Path | None = None,
    video_dir: Path | None = None,
    workers: int = 1,
    strict: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Any = None,
    dataset: str | None = None,
) -> ExtractionResult:
    """Extract every encoder's features for every manifest row into ``output`` (resumable).

    Returns what was computed, reused and what failed. Configuration errors (unknown encoder,
    missing column or media file, model not available) raise before any work; a clip that
    cannot be decoded is listed in the result and in ``manifest.json`` and its row is left out
    of the table (``strict`` raises a ``DataError`` after writing everything else).

    ``dataset`` names the dataset plugin that reads the table in the printed ``mmbench run``
    line; by default the one whose ``id_pattern`` every utterance id matches. Per clip, the
    audio's sample rate, channels, duration and the rate it was resampled to are recorded
    (``manifest.json``); clips of several sample rates, or whose channels cancel in the mono
    mix, are reported as warnings.
    """
    from mmbench.contracts import create_extractor

    log = log or (lambda _m: None)
    specs = [parse_encoder_spec(e) if isinstance(e, str) else e for e in encoders]
    if not specs:
        raise UsageError("give at least one --encoder, e.g. --encoder audio=mfcc")
    columns: dict[str, EncoderSpec] = {}
    for spec in specs:
        if spec.column in columns or spec.column in {"File Name", TEXT_COLUMN, LABEL_COLUMN, SPLIT_COLUMN}:
            raise UsageError(
                f"--encoder {spec.modality}={spec.name}: column {spec.column!r} is already taken; "
                f"name another with @COLUMN (e.g. {spec.modality}={spec.name}@{spec.column}b)"
            )
        columns[spec.column] = spec
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    extractors = {s.column: create_extractor(s.name, s.options, s.modality) for s in specs}
    manifest = Path(manifest)
    utterances = read_manifest(
        manifest,
        audio_dir=audio_dir,
        video_dir=video_dir,
        need_audio=any(s.modality == "audio" for s in specs),
        need_video=any(s.modality == "visual" for s in specs),
    )
    if dataset is not None:
        from mmbench.registry import get_registry

        get_registry().get("dataset", dataset)  # an unknown name fails before any work
    identities = {col: ex.identity() for col, ex in extractors.items()}
    keys = {col: encoder_key(identities[col]) for col in extractors}
    output = Path(output)
    parts = output / PARTS_DIR
    values: dict[str, dict[str, np.ndarray]] = {col: {} for col in extractors}
    hashes: dict[str, dict[str, str]] = {}
    result = ExtractionResult(table=output / TABLE_NAME, manifest=output / MANIFEST_NAME, rows=0)
    result.dataset = dataset or guess_dataset([u.id for u in utterances])
    failed: set[str] = set()
    bar = progress if progress is not None else _default_progress()
    with bar:
        for col, extractor in extractors.items():
            spec, store = columns[col], ShardStore(parts, keys[col])
            todo: list[Utterance] = []
            for utt in utterances:
                media = utt.media(spec.modality)
                found = store.load(utt.key, media)
                if found is None:
                    todo.append(utt)
                    continue
                values[col][utt.key] = found[0]
                hashes.setdefault(utt.key, {})[str(media)] = found[1]
                if found[2]:
                    result.media_info.setdefault(utt.key, {})[col] = found[2]
            result.reused[col] = len(utterances) - len(todo)
            result.computed[col] = 0
            if not todo:
                log(f"{col} ({spec.name}): all {len(utterances)} utterances already extracted")
                continue
            extractor.ensure_ready()
            task = bar.add_task(f"{col} {spec.name}", total=len(todo))

            def work(utt: Utterance, _ex: Any = extractor, _mod: str = spec.modality) -> Any:
                media = utt.media(_mod)
                try:
                    sha = sha256_file(media)
                    raw, info = _ex.extract_with_info(media)
                    value = np.asarray(raw, dtype=np.float32)
                    if not np.isfinite(value).all():
                        raise DataError("the features hold NaN or infinite values", path=media)
                    return utt, media, sha, (value, info), None
                except (KeyboardInterrupt, UsageError) as exc:
                    if isinstance(exc, DataError):
                        return utt, media, None, None, exc
                    raise
                except Exception as exc:  # one bad clip must not stop the others
                    return utt, media, None, None, exc

            # numpy extractors run in threads (FFTs release the GIL); models run one file at a time
            pool_size = workers if getattr(extractor, "thread_safe", False) else 1
            with ThreadPoolExecutor(max_workers=pool_size) as pool:
                for utt, media, sha, computed, error in pool.map(work, todo):
                    bar.advance(task)
                    if error is not None:
                        failed.add(utt.key)
                        message = (
                            str(error) if isinstance(error, DataError) else f"{type(error).__name__}: {error}"
                        )
                        result.errors.append(
                            {
                                "id": utt.id,
                                "row": utt.row,
                                "file": str(media),
                                "encoder": col,
                                "error": message,
                            }
                        )
                        continue
                    value, info = computed
                    store.save(utt.key, media, value, sha, info)
                    values[col][utt.key] = value
                    hashes.setdefault(utt.key, {})[str(media)] = sha
                    if info:
                        result.media_info.setdefault(utt.key, {})[col] = info
                    result.computed[col] += 1
    _check_shapes(values)
    for col, spec in columns.items():
        result.columns.setdefault(spec.modality, []).append(col)
        if any(v.ndim > 1 for v in values[col].values()):
            result.sequence_columns.append(col)
    result.warnings = media_warnings(utterances, result.media_info)
    kept = [u for u in utterances if u.key not in failed]
    result.rows = len(kept)
    _write_table(result.table, kept, values)
    atomic_write_json(
        result.manifest,
        _manifest_json(manifest, result, utterances, kept, columns, identities, keys, values, hashes),
    )
    for warning in result.warnings:
        log(f"warning: {warning}")
    for err in result.errors:
        log(f"[yellow]skipped[/yellow] {err['id']} (row {err['row']}, {err['encoder']}): {err['error']}")
    if strict and result.errors:
        first = result.errors[0]
        raise DataError(
            f"{len(result.errors)} clip(s) could not be extracted, first: {first['file']} "
            f"({first['encoder']}): {first['error']}; all are listed in {result.manifest}",
            path=manifest,
            row=first["row"],
        )
    return result


def _check_shapes(values: dict[str, dict[str, np.ndarray]]) -> None:
    for col, by_id in values.items():
        shapes = {v.shape for v in by_id.values() if v.ndim == 1}
        if len(shapes) > 1:
            raise DataError(f"column {col}: utterances gave vectors of different sizes {sorted(shapes)}")


def _write_table(path: Path, rows: list[Utterance], values: dict[str, dict[str, np.ndarray]]) -> None:
    import pandas as pd

    extra_cols = list(dict.fromkeys(c for u in rows for c in u.extra))
    records = []
    for u in rows:
        rec: dict[str, Any] = {"File Name": u.id, TEXT_COLUMN: u.text}
        for col, by_id in values.items():
            rec[col] = format_cell(by_id[u.key])
        rec[LABEL_COLUMN] = u.label
        rec.update({c: u.extra.get(c, "") for c in extra_cols})
        records.append(rec)
    columns = ["File Name", TEXT_COLUMN, *values, LABEL_COLUMN, *extra_cols]
    atomic_write_text(path, pd.DataFrame(records, columns=columns).to_csv(index=False))


def _manifest_json(
    manifest: Path,
    result: ExtractionResult,
    utterances: list[Utterance],
    kept: list[Utterance],
    columns: dict[str, EncoderSpec],
    identities: dict[str, dict[str, Any]],
    keys: dict[str, str],
    values: dict[str, dict[str, np.ndarray]],
    hashes: dict[str, dict[str, str]],
) -> dict[str, Any]:
    from mmbench import __version__

    encoders = {}
    for col, spec in columns.items():
        shapes = sorted({tuple(v.shape) for v in values[col].values()})
        encoders[col] = {
            "modality": spec.modality,
            "encoder": spec.name,
            "spec": f"{spec.modality}={spec.name}"
            + (":" + ",".join(f"{k}={v}" for k, v in spec.options.items()) if spec.options else "")
            + f"@{col}",
            "key": keys[col],
            "identity": identities[col],
            "shape": list(shapes[0]) if len(shapes) == 1 else "varies",
            "computed": result.computed.get(col, 0),
            "reused": result.reused.get(col, 0),
        }
    inputs = {}
    for u in utterances:
        files = {}
        for mod, path in (("audio", u.audio), ("video", u.video)):
            if path is not None:
                files[mod] = {"path": str(path), "sha256": hashes.get(u.key, {}).get(str(path))}
        read = result.media_info.get(u.key)
        inputs[u.key] = {"row": u.row, **files, **({"media_info": read} if read else {})}
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "mmbench_version": __version__,
        "source_manifest": {"path": str(manifest), "sha256": sha256_file(manifest)},
        "table": TABLE_NAME,
        "rows": len(kept),
        "encoders": encoders,
        "inputs": inputs,
        "errors": result.errors,
        "warnings": result.warnings,
        "dataset": result.dataset,
    }
