"""Benchmark the reference-spreadsheet reader (target: 10,000 rows parsed in < 10 s, < 1 s from cache).

Writes a deterministic seed-format spreadsheet (default 10,000 rows; vector columns V1 512,
V3 25, V4 25, A2 512 as list literals, like the reference system's files) into a temporary folder,
then times a first parse (cold cache) and a second load (parsed cache) with
``mmbench.formats.spreadsheet.read_feature_table``. Prints one JSON object.

    python scripts/bench_feature_table.py [--rows 10000] [--format xlsx|csv] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMS = {"V1": 512, "V3": 25, "V4": 25, "A2": 512}
EMOTIONS = ("Happiness", "Sadness", "Neutral", "Anger", "Excited", "Frustration")


def generate_rows(n: int, seed: int = 0):
    """Yield header then ``n`` deterministic rows: File Name, Utterance, V1, V3, V4, A2, Emotion."""
    rng = np.random.default_rng(seed)
    yield ["File Name", "Utterance", *DIMS, "Emotion"]
    for i in range(n):
        # float32 features widened to Python floats print with up to 17 significant digits,
        # as str(list) of ``array.tolist()`` does in the reference system's export.
        vectors = [str(rng.standard_normal(d).astype(np.float32).tolist()) for d in DIMS.values()]
        session, dialog = 1 + i % 5, i // 50
        yield [
            f"Ses0{session}F_impro{dialog:02d}_F{i % 50:03d}",
            f"utterance number {i}, said with feeling",
            *vectors,
            EMOTIONS[i % len(EMOTIONS)],
        ]


def write_table(path: Path, n: int, seed: int = 0) -> Path:
    """Write the benchmark table as .xlsx (openpyxl write-only) or .csv, chosen by suffix."""
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(generate_rows(n, seed))
        return path
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    for row in generate_rows(n, seed):
        ws.append(row)
    wb.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    parser.add_argument("--keep", type=Path, help="write the table here instead of a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["MMBENCH_CACHE"] = str(Path(tmp) / "cache")  # cold cache for the first parse
        from mmbench.formats.spreadsheet import read_feature_table

        path = folder / f"bench_{args.rows}.{args.format}"
        t0 = time.perf_counter()
        reused = path.exists()
        if not reused:
            write_table(path, args.rows)
        write_s = None if reused else round(time.perf_counter() - t0, 2)
        kwargs = dict(
            vector_columns=list(DIMS),
            text_columns=["Utterance", "Emotion"],
            optional_vector_columns=["V2"],
            optional_text_columns=["File Name"],
            aliases={"File Name": ["File_name", "file_name"]},
        )
        t0, c0 = time.perf_counter(), time.process_time()
        first = read_feature_table(path, **kwargs)
        parse_s, parse_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        second = read_feature_table(path, **kwargs)
        cached_s, cached_cpu = time.perf_counter() - t0, time.process_time() - c0
        same = all(np.array_equal(first.vectors[c], second.vectors[c]) for c in DIMS)
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "format": args.format,
                    "values_per_row": sum(DIMS.values()),
                    "file_mb": round(path.stat().st_size / 1e6, 1),
                    "write_s": write_s,
                    "parse_s": round(parse_s, 2),
                    "cached_load_s": round(cached_s, 3),
                    # CPU seconds of this process: what the wall times would be on an otherwise idle machine
                    "parse_cpu_s": round(parse_cpu, 2),
                    "cached_load_cpu_s": round(cached_cpu, 3),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "cache_equal": same,
                    "shapes": {c: list(first.vectors[c].shape) for c in DIMS},
                    "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
                    "python": platform.python_version(),
                    "targets": {"parse_s": 10, "cached_load_s": 1},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
