"""`vci gc --blobs`: blobs no committed run names go, after a dry run; a run being logged keeps its own."""

import json
import os
import subprocess
import sys
import time

import pytest

from vci.errors import IntegrityError, UsageError
from vci.runs import Run
from vci.store.gc import referenced_digests, unreferenced_blobs


def committed_run(store, tmp_path) -> Run:
    (tmp_path / "weights.bin").write_bytes(b"w" * 1000)
    run = Run(store, project="p")
    run.log_artifact("weights", tmp_path / "weights.bin")
    run.log_artifact("config", {"layers": 3})
    run.commit()
    return run


def test_only_unnamed_blobs_are_collected_and_only_with_remove(case, tmp_path):
    run = committed_run(case.store, tmp_path)
    orphan = case.store.put_bytes(b"left behind by a run never committed").digest
    named = referenced_digests(case.store)
    assert orphan not in named and {r["digest"] for r in run.manifest["artifacts"].values()} <= named
    assert unreferenced_blobs(case.store, older_than=3600) == []  # young: maybe a log in progress
    planned = unreferenced_blobs(case.store, older_than=0)
    assert [b.digest for b in planned] == [orphan] and case.store.has_blob(orphan)  # a dry run
    removed = unreferenced_blobs(case.store, older_than=0, remove=True)
    assert [b.digest for b in removed] == [orphan] and not case.store.has_blob(orphan)
    assert all(case.store.has_blob(d) for d in named)
    assert run.store.read_blob(run.manifest["artifacts"]["config"]["digest"])  # the run still reads


def test_a_blob_reused_after_the_listing_is_kept(case):
    reused = case.store.put_bytes(b"a blob a new run reuses").digest
    other = case.store.put_bytes(b"a blob nothing reuses").digest
    time.sleep(1.1)  # S3's LastModified has a resolution of one second
    listed_at = time.time()
    time.sleep(1.1)
    assert case.store.put_bytes(b"a blob a new run reuses").sent == 0  # skipped: marked used now
    assert case.store.delete_blob(reused, listed_at) is False and case.store.has_blob(reused)
    assert case.store.delete_blob(other, listed_at) is True and not case.store.has_blob(other)
    assert case.store.delete_blob(other, listed_at) is False  # gone already


def test_a_manifest_that_cannot_be_read_stops_the_collection(case):
    orphan = case.store.put_bytes(b"orphan").digest
    case.store.put_json_new("runs/20261201-000000-abcdabcd.json", {"id": "20261201-000000-abcdabcd"})
    with pytest.raises(IntegrityError, match="the blobs it names are unknown, nothing was removed"):
        unreferenced_blobs(case.store, older_than=0, remove=True)
    assert case.store.has_blob(orphan)
    with pytest.raises(UsageError):
        unreferenced_blobs(case.store, older_than=-1)


def test_the_cli_lists_then_removes(tmp_path):
    from vci.store.local import LocalStore

    store = LocalStore(tmp_path / "store")
    committed_run(store, tmp_path)
    orphan = store.put_bytes(b"orphan").digest
    env = {**os.environ, "VCI_STORE": str(tmp_path / "store")}

    def gc(*args):
        argv = [sys.executable, "-m", "vci", "gc", *args]
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)

    listed = json.loads(gc("--blobs", "--older-than", "0", "-o", "json").stdout)
    assert listed["dry_run"] is True and [b["digest"] for b in listed["blobs"]] == [orphan]
    assert store.has_blob(orphan)
    text = gc("--blobs", "--older-than", "0", "--yes").stdout
    assert "removed 1 unreferenced blobs" in text and not store.has_blob(orphan)
    refused = gc()
    assert refused.returncode == UsageError.exit_code and "vci gc --blobs" in refused.stderr
