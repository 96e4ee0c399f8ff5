"""Give run records made before numerics entered the fingerprint their ``numerics`` block.

    python scripts/add_numerics_to_records.py leaderboards/runs [--dry-run]

For each record (and its predictions file) under the folder: the protocol gets the ``numerics``
block the runner now adds (``mmbench.runner.environment.numerics``), filled from what the record
stored about its run: the precision it trained in (``execution``: ``auto`` on CPU trained in fp32),
``--compile``, deterministic algorithms (off: mmbench never turned them on before they were
recorded), the device type and the torch version (``environment``), and the batch an
out-of-memory retry ended with (``oom_retries``, ``train_config``). The record also gets its
``annotation`` (description and data path, not fingerprinted), its fingerprint is recomputed
(the description no longer enters it), and both files are renamed to the new stem. Records that
already have numerics are left alone. The file format (compact, key-sorted JSON as
``mmbench leaderboard --export-runs`` writes it) is kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmbench.protocol import NUMERICS_KEY, fingerprint
from mmbench.records import PREDICTIONS_SUFFIX, RECORD_SUFFIX, is_record_file, record_stem
from mmbench.runner.reproduce import recorded_precision


def numerics_of(record: dict) -> dict:
    env = record.get("environment") or {}
    block = {
        "precision": recorded_precision(record),
        "compile": bool((record.get("execution") or {}).get("compile", False)),
        "deterministic_algorithms": False,
        "device": str(env.get("device", "cpu")).split(":")[0],
        "torch": env.get("torch"),
    }
    if record.get("oom_retries"):
        cfg = record.get("train_config") or {}
        block["after_oom"] = {"batch_size": cfg.get("batch_size"), "grad_accum": cfg.get("grad_accum")}
    return block


def migrate(path: Path, dry_run: bool) -> str | None:
    record = json.loads(path.read_text(encoding="utf-8"))
    protocol = record.get("protocol") or {}
    if NUMERICS_KEY in protocol:
        return None
    protocol[NUMERICS_KEY] = numerics_of(record)
    record["protocol"] = protocol
    record["annotation"] = {
        "description": protocol.get("description"),
        "data_path": record.get("data_path"),
        "protocol_file": None,
    }
    old_fp = record["protocol_fingerprint"]
    record["protocol_fingerprint"] = fingerprint(protocol)
    stem = record_stem(
        record["dataset"],
        record["fusion"],
        record["protocol_fingerprint"],
        record["params_tag"],
        record["seed"],
    )
    old_preds = path.with_name(path.name[: -len(RECORD_SUFFIX)] + PREDICTIONS_SUFFIX)
    new_path = path.with_name(stem + RECORD_SUFFIX)
    if record.get("predictions_file"):
        record["predictions_file"] = stem + PREDICTIONS_SUFFIX
    if not dry_run:
        new_path.write_text(
            json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
        )
        if new_path != path:
            path.unlink()
        if old_preds.exists() and record.get("predictions_file"):
            old_preds.rename(path.with_name(record["predictions_file"]))
    return f"{old_fp} -> {record['protocol_fingerprint']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    changes: dict[str, int] = {}
    for path in sorted(args.folder.rglob(f"*{RECORD_SUFFIX}")):
        if not is_record_file(path):
            continue
        change = migrate(path, args.dry_run)
        if change:
            changes[change] = changes.get(change, 0) + 1
    for change, n in sorted(changes.items()):
        print(f"{change}: {n} record(s)")


if __name__ == "__main__":
    main()
