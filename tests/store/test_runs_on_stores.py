"""Committing runs on both stores (local and S3 on moto): a run id taken meanwhile is replaced, not fatal."""

import time

import pytest

import vci.runs
from vci.errors import IntegrityError
from vci.runs import RUN_ID, Run, run_key

NOW = time.struct_time((2026, 11, 24, 7, 12, 3, 1, 328, 0))


class Constant:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return 1


def test_a_colliding_run_id_takes_a_new_one(case, monkeypatch, tmp_path):
    ids = iter(["20261124-071203-c0fe", "20261124-071203-c0fe", "20261124-071203-abcd"])
    monkeypatch.setattr(vci.runs, "new_run_id", lambda: next(ids))
    first = Run(case.store, project="p")
    first.log_artifact("w", {"first": True})
    first.commit()
    second = Run(case.store, project="p")  # started in the same second with the same random draw
    assert second.id == first.id
    second.log_artifact("w", {"second": True})
    version = second.commit()
    assert second.id == "20261124-071203-abcd" and RUN_ID.fullmatch(second.id)
    assert case.store.get_json(run_key(second.id)) == second.manifest and second.version == version
    assert second.manifest["id"] == second.id
    assert case.store.get_json(run_key(first.id)) == first.manifest  # the first run is untouched


def test_our_own_manifest_already_stored_is_no_collision(case, monkeypatch):
    """A write that arrived though its reply was lost, then retried (S3: 412), is the run's own, not another's."""
    write = case.store.put_json_new

    def reply_lost(key, doc):
        write(key, doc)
        write(key, doc)  # the retry: ConflictError

    monkeypatch.setattr(case.store, "put_json_new", reply_lost)
    run = Run(case.store, project="p")
    run.log_model(Constant)
    run_id = run.id
    run.commit()
    assert run.id == run_id and case.store.list_keys("runs/") == [run_key(run_id)]
    assert case.store.get_json(run_key(run_id)) == run.manifest


def test_re_logging_as_the_hint_says_repairs_a_run_with_a_corrupted_blob(case, monkeypatch, tmp_path):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VCI_VERIFY_BLOBS", raising=False)
    case.store.verify_below = 0  # the weights are a big file: only their size is checked by default
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 100_000)

    def log():
        run = Run(case.store, project="p")
        run.log_artifact("weights", weights)
        run.log_model(Constant, artifacts=["weights"])
        run.commit()
        return run

    old = log()
    case.tamper(old.manifest["artifacts"]["weights"]["digest"], b"x" * 100_000)
    with pytest.raises(IntegrityError, match="corrupted") as caught:
        old.load_model()
    assert "VCI_VERIFY_BLOBS=1" in caught.value.hint
    monkeypatch.setenv("VCI_VERIFY_BLOBS", "1")
    log()
    assert old.load_model().predict(None) == 1  # the old run is whole again: its blob was replaced
