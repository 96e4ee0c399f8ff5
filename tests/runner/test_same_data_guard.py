"""A run never overwrites, and a sweep never skips for, a record made on other data under its name."""

import pytest

import mmbench
from mmbench.errors import UsageError
from mmbench.testing import write_mmsa_pickle

SMALL = ["train.max_epochs=1"]


def test_aligned_and_unaligned_files_do_not_share_a_runs_folder_silently(tmp_path):
    aligned = write_mmsa_pickle(tmp_path / "aligned_50.pkl", n=(30, 10, 12), aligned=True)
    unaligned = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=(30, 10, 12), aligned=False)
    out = tmp_path / "runs"
    first = mmbench.run("concat", "mosi", data=unaligned, seeds=[0], overrides=SMALL, out=out)
    (record,) = first.records
    before = (out / record["_path"].split("/")[-1]).read_bytes()
    with pytest.raises(UsageError, match=r"on other data \(dataset fingerprint") as err:
        mmbench.run("concat", "mosi", data=aligned, seeds=[0], overrides=SMALL, out=out)
    assert "unaligned_50.pkl" in str(err.value) and "--out" in str(err.value)
    assert (out / record["_path"].split("/")[-1]).read_bytes() == before  # untouched
    # A sweep (records under <out>/<dataset>/) does not skip the cell for the other file's record.
    mmbench.sweep("concat", "mosi", data=unaligned, seeds=[0], overrides=SMALL, out=tmp_path / "sweep")
    with pytest.raises(UsageError, match="on other data"):
        mmbench.sweep("concat", "mosi", data=aligned, seeds=[0], overrides=SMALL, out=tmp_path / "sweep")
    # The same data again re-runs (overwrites) as before.
    again = mmbench.run("concat", "mosi", data=unaligned, seeds=[0], overrides=SMALL, out=out)
    assert again.records[0]["dataset_fingerprint"] == record["dataset_fingerprint"]
