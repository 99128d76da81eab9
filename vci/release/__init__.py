"""Releases: smoke tests, promotion (direct or canary) and rollback, each recorded in the ledger (``vci.ledger``).

Entry points: ``vci.release.smoke.smoke_test``, ``vci.release.promote.promote``,
``vci.release.rollback.rollback`` and ``history``. (No re-exports here: a
function named like its submodule would be shadowed by the submodule once that is imported.)
"""
