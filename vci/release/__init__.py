"""Releases: smoke tests, promotion (direct or canary), rollback, and the ledger that records them all."""

from __future__ import annotations


def promote(settings, source: str, target: str, **options) -> dict:
    from .promote import promote as _promote

    return _promote(settings, source, target, **options)


def rollback(settings, env: str | None = None, **options) -> dict:
    from .rollback import rollback as _rollback

    return _rollback(settings, env, **options)


def history(settings, env: str | None = None, limit: int | None = None) -> dict:
    from .rollback import history as _history

    return _history(settings, env, limit)


def smoke_test(settings, env: str | None = None, **options) -> dict:
    from .smoke import smoke_test as _smoke_test

    return _smoke_test(settings, env, **options)
