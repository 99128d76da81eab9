"""Releases: smoke tests, promotion (direct or canary), rollback, and the ledger that records them all.

Entry points: ``vci.release.smoke.smoke_test``, ``vci.release.promote.promote``,
``vci.release.rollback.rollback`` and ``history``, ``vci.release.ledger.Ledger``. (No re-exports here: a
function named like its submodule would be shadowed by the submodule once that is imported.)
"""
