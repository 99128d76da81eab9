"""Listing reads only the page it shows: the newest runs and releases, on the local store and on S3."""

import dataclasses
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vci  # noqa: E402
from s3server import dummy_aws_env  # noqa: E402
from test_ledger import moto_endpoint  # noqa: E402, F401  (the fixture, by its name)
from vci.catalog import newest_documents  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.ledger import Ledger, make_record  # noqa: E402
from vci.release.rollback import history  # noqa: E402
from vci.runs import list_runs  # noqa: E402
from vci.store.local import LocalStore  # noqa: E402


class Counting:
    """A store that counts the documents read from it (everything else is the real store's)."""

    def __init__(self, store):
        self.store, self.reads = store, []

    def get_json(self, key):
        self.reads.append(key)
        return self.store.get_json(key)

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in dummy_aws_env().items():
        monkeypatch.setenv(name, value)
    import boto3

    from vci.store.s3 import S3Store

    bucket = f"catalog-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return S3Store(bucket, "vci", endpoint_url=endpoint)


def manifest(n: int, project: str) -> dict:
    return {"id": f"20261201-{n:06d}-abcd", "project": project, "created": "2026-12-01T00:00:00Z", "artifacts": {}}


def test_the_newest_page_is_read_and_nothing_more(store):
    for n in range(60):
        store.put_json_new(f"runs/20261201-{n:06d}-abcd.json", manifest(n, "odd" if n % 2 else "even"))
    store.put_json_new("runs/elsewhere/20261201-999999-abcd.json", manifest(999, "odd"))  # not a run
    counting = Counting(store)
    page = newest_documents(counting, "runs/", 5)
    assert [d["id"] for d in page] == [f"20261201-{n:06d}-abcd" for n in (59, 58, 57, 56, 55)]
    assert len(counting.reads) <= 16  # one page, not all 60
    counting.reads.clear()
    odd = newest_documents(counting, "runs/", 20, lambda d: d["project"] == "odd")  # two pages of 16
    assert [d["id"][9:15] for d in odd] == [f"{n:06d}" for n in range(59, 19, -2)]
    assert len(counting.reads) < 60
    assert len(newest_documents(store, "runs/", None)) == 60


def test_a_shown_listing_is_cached_and_a_loaded_run_is_not(store):
    for n in range(10):
        store.put_json_new(f"runs/20261201-{n:06d}-abcd.json", manifest(n, "p"))
    counting = Counting(store)
    first = newest_documents(counting, "runs/", 3, cache=True)
    assert len(counting.reads) == 16 or len(counting.reads) == 10  # the page (all 10 here), read once
    counting.reads.clear()
    assert newest_documents(counting, "runs/", 3, cache=True) == first and counting.reads == []
    assert newest_documents(counting, "runs/", 3) == first and len(counting.reads) == 10  # uncached: the store


def test_list_runs_pages_newest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    settings = load_settings({"store": str(tmp_path / "store")}, cwd=tmp_path, environ={})
    logged = []
    for n in range(12):
        run = vci.init("a" if n < 9 else "b", settings=settings)
        run.log_artifact("n", {"n": n})
        run.commit()
        logged.append(run)
    newest = sorted(logged, key=lambda r: r.id, reverse=True)
    assert [r.id for r in list_runs(settings=settings, limit=3)] == [r.id for r in newest[:3]]
    assert [r.id for r in list_runs(settings=settings, project="a", limit=2)] == [
        r.id for r in newest if r.project == "a"
    ][:2]
    assert len(list_runs(settings=settings)) == 12


def test_the_newest_releases_are_those_of_the_full_ledger_even_within_one_second(store):
    ledger = Ledger(store)
    stamps = {"r20261201-100000-ffff": 1.0, "r20261201-100001-9999": 2.5, "r20261201-100001-0000": 2.7}
    stamps |= {f"r20261201-1000{n:02d}-aaaa": 10.0 + n for n in range(2, 30)}
    for release_id, timestamp in stamps.items():
        record = make_record(
            release_id=release_id, environment="prod", action="deploy", outcome="succeeded", digest=None
        )
        ledger.append(dataclasses.replace(record, timestamp=timestamp))
    everything = list(reversed(ledger.records("prod")))
    for limit in (1, 2, 28, 29, 30, 31):
        assert [r.release_id for r in ledger.newest("prod", limit)] == [r.release_id for r in everything[:limit]]
    # the ids of one second sort against their timestamps: the newest of the two is "-0000"
    assert [r.release_id for r in ledger.newest("prod", 30)][-2:] == [
        "r20261201-100001-0000",
        "r20261201-100001-9999",
    ]
    assert ledger.newest("prod", 0) == []


def test_history_reads_only_the_page_it_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    settings = load_settings({"store": str(tmp_path / "store")}, cwd=tmp_path, environ={})
    ledger = Ledger(LocalStore(tmp_path / "store"))
    for n in range(40):
        rid = f"r20261201-1000{n:02d}-aaaa"
        record = make_record(release_id=rid, environment="staging", action="deploy", outcome="succeeded", digest=None)
        ledger.append(dataclasses.replace(record, timestamp=float(n)))
    shown = history(settings, "staging", 5)["releases"]
    assert [r["release_id"][10:16] for r in shown] == ["100039", "100038", "100037", "100036", "100035"]
