"""Two promotions of one environment at once: one wins, the other meets ConflictError; nothing half done."""

import threading

import pytest

from vci.deploy import deploy, status
from vci.errors import ConflictError
from vci.ledger import Ledger
from vci.release.promote import promote
from vci.release.rollback import history

from .conftest import make_run


def test_concurrent_promotions_one_wins(settings, tmp_path):
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    barrier, outcomes = threading.Barrier(2), []

    def attempt():
        barrier.wait()
        try:
            outcomes.append(promote(settings, "staging", "production")["outcome"])
        except ConflictError as exc:
            outcomes.append(f"conflict: {exc}")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(o.split(":")[0] for o in outcomes) == ["conflict", "succeeded"], outcomes
    assert "another release of 'production' is in progress" in [o for o in outcomes if o != "succeeded"][0]
    assert status(settings, "production").digest == run.version
    records = history(settings, "production")["releases"]
    assert sorted(r["outcome"] for r in records) == ["failed", "succeeded"]
    assert promote(settings, "staging", "production")["outcome"] == "unchanged"  # the claim was released


def test_a_held_claim_blocks_promotion_and_changes_nothing(settings, tmp_path):
    old, new = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 5)
    deploy(settings, old.id, "staging")
    promote(settings, "staging", "production")
    deploy(settings, new.id, "staging")
    before = status(settings, "production")
    ledger = Ledger.for_settings(settings)
    claim = ledger.claim("production", "promote by a CI runner elsewhere")
    with pytest.raises(ConflictError, match="CI runner elsewhere"):
        promote(settings, "staging", "production")
    after = status(settings, "production")
    assert (after.pid, after.digest) == (before.pid, old.version)
    ledger.release_claim(claim)
    assert promote(settings, "staging", "production")["digest"] == new.version
