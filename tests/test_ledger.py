"""The ledger on the local store and on a real moto S3 server: write-once records, claims, CI context."""

import dataclasses
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s3server import dummy_aws_env, start_moto  # noqa: E402
from vci.errors import ConflictError, NotFoundError  # noqa: E402
from vci.ledger import SLACK, Ledger, ci_context, make_record  # noqa: E402
from vci.release.rollback import choose_release  # noqa: E402
from vci.store.local import LocalStore  # noqa: E402


@pytest.fixture(scope="module")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(params=["local", "s3"])
def ledger(request, tmp_path, monkeypatch):
    if request.param == "local":
        return Ledger(LocalStore(tmp_path / "store"))
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in dummy_aws_env().items():
        monkeypatch.setenv(name, value)
    import boto3

    from vci.store.s3 import S3Store

    bucket = f"ledger-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return Ledger(S3Store(bucket, "vci", endpoint_url=endpoint))


def record(release_id, outcome="succeeded", digest="sha256:" + "a" * 64, env="production", **extra):
    return make_record(
        release_id=release_id,
        environment=env,
        action="promote",
        outcome=outcome,
        digest=digest,
        run_id="20261124-000000-0000",
        environ={"VCI_USER": "ci-bot"},
        **extra,
    )


def test_records_are_written_once_and_listed_in_order(ledger):
    ledger.append(record("r1"))
    ledger.append(record("r2", "failed"))
    with pytest.raises(ConflictError, match="already in the ledger"):
        ledger.append(record("r1", "rolled-back"))
    assert ledger.get("production", "r1").outcome == "succeeded"  # never overwritten
    assert [r.release_id for r in ledger.records("production")] == ["r1", "r2"]
    assert ledger.records("staging") == []
    with pytest.raises(NotFoundError, match="vci history"):
        ledger.get("production", "r9")


def test_concurrent_appends_of_one_release_id_have_one_winner(ledger):
    outcomes, barrier = [], threading.Barrier(4)

    def write(n):
        barrier.wait()
        try:
            ledger.append(record("same", digest="sha256:" + str(n) * 64))
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["conflict"] * 3 + ["won"]
    assert len(ledger.records("production")) == 1


def test_claims_serialise_and_expire(ledger):
    first = ledger.claim("production", "promote A")
    with pytest.raises(ConflictError, match="promote A"):
        ledger.claim("production", "promote B")
    ledger.claim("staging", "promote C")  # other environments are independent
    ledger.release_claim(first)
    second = ledger.claim("production", "promote B", ttl=0.01)
    assert second != first
    time.sleep(0.05)
    ledger.claim("production", "promote D")  # B's claim expired (its holder died)


def test_ci_context_and_choice_of_rollback_target():
    github = ci_context(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_RUN_ID": "7",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_SERVER_URL": "https://ghe.example",
            "GITHUB_SHA": "s",
            "GITHUB_ACTOR": "a",
        }
    )
    assert github["url"] == "https://ghe.example/o/r/actions/runs/7" and github["actor"] == "a"
    assert github["repository"] == "o/r"  # what a provenance policy compares
    jenkins = ci_context({"BUILD_URL": "https://ci.example/job/x/3/", "GIT_COMMIT": "c", "JOB_NAME": "models/iris"})
    assert jenkins == {
        "system": "jenkins",
        "url": "https://ci.example/job/x/3/",
        "sha": "c",
        "actor": None,
        "ref": None,
        "repository": None,
        "job": "models/iris",
    }
    assert ci_context({}) is None
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    records = [record("r1", digest=a), record("r2", digest=b), record("r3", "failed", digest=a)]
    assert choose_release(records, b).release_id == "r1"  # a failed release is never a target
    assert choose_release(records, a).release_id == "r2"
    with pytest.raises(NotFoundError, match="never ran"):
        choose_release(records, b, to="r3")


def test_release_cycle_with_the_ledger_in_s3(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    from tests.release.conftest import make_run, stop_all
    from vci.config import load_settings
    from vci.deploy import deploy, status
    from vci.release.promote import promote
    from vci.release.rollback import history, rollback

    for name, value in dummy_aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VCI_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BUILD_URL", "https://jenkins.example/job/iris/12/")
    bucket = f"cycle-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    settings = load_settings({"store": f"s3://{bucket}/vci", "project": "demo"}, cwd=tmp_path, environ={})
    try:
        v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 3)
        deploy(settings, v1.id, "staging")
        first = promote(settings, "staging", "production")
        deploy(settings, v2.id, "staging")
        promote(settings, "staging", "production")
        assert rollback(settings, "production", to=first["release_id"])["digest"] == v1.version
        assert status(settings, "production").digest == v1.version
        keys = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(
            Bucket=bucket, Prefix="vci/ledger/production/"
        )["Contents"]
        records = [k["Key"] for k in keys if k["Key"].startswith("vci/ledger/production/newest-first/")]
        assert len(records) == 3  # promote, promote, rollback: each its own write-once object
        releases = history(settings, "production")["releases"]
        assert [r["ci_url"] for r in releases] == ["https://jenkins.example/job/iris/12/"] * 3
    finally:
        stop_all(settings)


def test_a_record_reads_back_as_it_was_written_in_the_documented_order(ledger):
    written = ledger.append(record("r9", gate={"passed": True, "checked": 3}))
    stored = written.to_json()
    assert list(stored)[:16] == [
        "release_id",
        "environment",
        "action",
        "digest",
        "image",
        "run_id",
        "strategy",
        "who",
        "when",
        "timestamp",
        "approver",
        "ci",
        "outcome",
        "reason",
        "previous",
        "source",
    ]
    assert stored["gate"] == {"passed": True, "checked": 3}
    assert ledger.get("production", "r9") == written and ledger.get("production", "r9").extra == {
        "gate": {"passed": True, "checked": 3}
    }


def stamped(ledger, release_id, timestamp, *, old_layout=False):
    """A release of ``production`` written at ``timestamp``, in the layout before newest-first if asked."""
    written = dataclasses.replace(record(release_id), timestamp=timestamp)
    if old_layout:
        ledger.store.put_json_new(Ledger.old_key("production", release_id), written.to_json())
    else:
        ledger.append(written)
    return written


def walk(ledger, size):
    """Every page of production's ledger, following each page's ``older``: the release ids, page by page."""
    pages, before = [], None
    while True:
        page = ledger.page("production", size, before=before)
        pages.append([r.release_id for r in page.releases])
        if page.older is None:
            return pages
        assert len(page.releases) >= size and len(pages) < 100
        before = page.older


def test_an_old_layout_ledger_and_a_mixed_one_list_newest_first_in_whole_pages(ledger):
    # seconds 10..25; in seconds 12 and 20 two releases whose ids sort against their timestamps
    old = {f"r20261201-1000{n:02d}-aaaa": 100.0 + n for n in range(10, 18)} | {"r20261201-100012-0000": 112.9}
    new = {f"r20261201-1000{n:02d}-aaaa": 100.0 + n for n in range(18, 26)} | {"r20261201-100020-0000": 120.9}
    new |= {"r20261201-100017-bbbb": 117.5}  # a writer of the new layout within the old one's seconds
    for release_id, timestamp in old.items():
        stamped(ledger, release_id, timestamp, old_layout=True)
    everything = sorted({**old, **new}, key=lambda rid: ({**old, **new}[rid], rid), reverse=True)
    assert [r.release_id for r in ledger.newest("production", None)] == everything[len(new) :]  # old layout only
    for release_id, timestamp in new.items():
        stamped(ledger, release_id, timestamp)
    assert [r.release_id for r in reversed(ledger.records("production"))] == everything
    for limit in (1, 6, 7, 11, 30):  # 6: the newer of second 20's two (its id sorts first), 11: within 17
        assert [r.release_id for r in ledger.newest("production", limit)] == everything[:limit]
    for size in (1, 5, 40):
        pages = walk(ledger, size)
        assert [rid for page in pages for rid in page] == everything  # each release once, in order
        assert all(len(page) <= size + 1 for page in pages)  # whole seconds: one more at most here
    assert ledger.get("production", "r20261201-100011-aaaa").timestamp == 111.0  # old layout, found by id
    assert ledger.get("production", "r20261201-100021-aaaa").timestamp == 121.0
    assert ledger.page("production", 5, before="r20261201-100000").releases == []


def test_the_first_page_is_one_bounded_listing(ledger, monkeypatch):
    for n in range(40):
        stamped(ledger, f"r20261201-1000{n:02d}-aaaa", float(n))
    stamped(ledger, "r20261201-090000-aaaa", -1.0, old_layout=True)
    listed = []
    original = ledger.store.list_keys

    def list_keys(*args, **bounds):
        keys = original(*args, **bounds)
        listed.append(len(keys))
        return keys

    monkeypatch.setattr(ledger.store, "list_keys", list_keys)
    page = ledger.page("production", 5)
    assert [r.release_id[10:16] for r in page.releases] == ["100039", "100038", "100037", "100036", "100035"]
    assert page.older == "r20261201-100035" and listed == [5 + SLACK, 0]  # the old layout: nothing that new
    listed.clear()
    assert [r.release_id for r in ledger.page("production", 50).releases][-1] == "r20261201-090000-aaaa"
    assert listed == [40, 1]


def test_an_actor_given_is_who_the_record_and_the_claim_name(ledger):
    given = make_record(release_id="r20261201-100000-aaaa", environment="production", action="promote",
                        outcome="succeeded", digest=None, actor="dana", environ={"VCI_USER": "ci-bot"})  # fmt: skip
    assert given.who == "dana" and record("r1").who == "ci-bot"  # without one: VCI_USER, as the CLI
    claim = ledger.claim("production", "promote X", actor="dana")
    assert ledger.store.get_json(claim)["who"] == "dana"
    with pytest.raises(ConflictError, match="by dana"):
        ledger.claim("production", "promote Y", actor="erin")
    ledger.mark_aborted("production", "r20261201-100000-aaaa", "erin")
    ledger.mark_aborted("production", "r20261201-100000-aaaa", "frank")  # the first abort is the one kept
    assert ledger.aborted_by("production", "r20261201-100000-aaaa") == "erin"
    assert ledger.aborted_by("production", "r20261201-100001-aaaa") is None
