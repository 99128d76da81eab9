"""What each page shows, gathered from the functions the CLI calls: the board, a timeline page, runs, a run.

A ``Catalog`` is one app's view of one store. What never changes once written is kept in memory: a
ledger record (write-once), a committed run's manifest (immutable). A timeline page is one bounded
listing of the ledger (``Ledger.page``: its newest-first keys), made again only after ``listing_ttl``
seconds; an older page is reached by the second its predecessor ended at, so page 100 costs what page 1 does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..config import Settings
from ..deploy import overview, target_for
from ..deploy.target import Overview
from ..errors import NotFoundError, UsageError, VciError
from ..ledger import VCI_SECOND, Ledger, LedgerPage, ReleaseRecord
from ..redact import redact
from ..runs import Run, get_run, list_runs
from ..store.base import Store
from ..verification import verify
from .charts import canary_figures, scrape_canary

PAGE = 50  # releases or runs on a page
log = logging.getLogger("vci")


@dataclass(frozen=True)
class BoardRow:
    """One environment on the board: what runs there, the release that put it there, a canary if any."""

    overview: Overview
    release: ReleaseRecord | None
    canary: dict | None
    requires_approval: bool

    @property
    def name(self) -> str:
        return self.overview.environment


@dataclass(frozen=True)
class Timeline:
    """One page of an environment's releases, newest first, and where the next (older) one starts."""

    environment: str
    releases: list[ReleaseRecord]
    page: int  # its number counted from the newest (shown, not used to find it)
    older: str | None  # the ``before`` of the next page (None: this is the last)


@dataclass
class Catalog:
    """Cached, read-only access to the runs and releases of one store, for display."""

    settings: Settings
    listing_ttl: float = 2.0
    _records: dict[tuple[str, str], ReleaseRecord] = field(default_factory=dict)
    _runs: dict[str, Run] = field(default_factory=dict)
    _listings: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _refreshing: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> Store:
        return Ledger.for_settings(self.settings).store

    def _listed(self, name: str, make):
        with self._lock:
            listed = self._listings.get(name)
            stale = listed is not None and time.monotonic() - listed[0] >= self.listing_ttl
            refresh = stale and name not in self._refreshing
            if refresh:
                self._refreshing.add(name)
        if listed is None:
            return self._store_listing(name, make)
        if refresh:
            threading.Thread(target=self._refresh, args=(name, make), daemon=True).start()
        return listed[1]

    def _refresh(self, name: str, make) -> None:
        """A background listing; one that fails keeps the last one (the next page view tries again)."""
        try:
            self._store_listing(name, make)
        except VciError as exc:
            log.warning("listing %s again failed: %s", name, shown_error(exc))

    def _store_listing(self, name: str, make):
        try:
            found = make()
            with self._lock:
                self._listings[name] = (time.monotonic(), found)
            return found
        finally:
            with self._lock:
                self._refreshing.discard(name)

    def warm(self) -> threading.Thread:
        """Read every environment's first timeline page in the background (``vci ui`` does at start), so
        that the first view of it finds its records read (and in the on-disk document cache)."""

        def read_all() -> None:
            for env in sorted(self.settings.environments):
                self._refresh(f"ledger {env} None", partial(self._ledger_page, env, None))

        worker = threading.Thread(target=read_all, daemon=True)
        worker.start()
        return worker

    def forget_listings(self) -> None:
        """Drop every listing (after this app changed something: its next page lists again)."""
        with self._lock:
            self._listings.clear()

    def record(self, env: str, release_id: str) -> ReleaseRecord:
        """One release (NotFoundError naming it when the ledger has none), from memory once read."""
        found = self._records.get((env, release_id))
        if found is None:
            found = Ledger.for_settings(self.settings).get(env, release_id)
            self._records[(env, release_id)] = found
        return found

    def run(self, run_id: str) -> Run:
        """A committed run by id or name (names resolve each time: they move; a run never changes)."""
        if run_id in self._runs:
            return self._runs[run_id]
        found = get_run(run_id, settings=self.settings)
        self._runs[found.id] = found
        return found

    def board(self) -> list[BoardRow]:
        """Every environment, asked live (``vci status``), with the release record of what runs there."""
        rows = []
        for row in overview(self.settings):
            status = row.status
            release = None
            if status is not None and status.deployed and status.release_id:
                try:
                    release = self.record(row.environment, status.release_id)
                except NotFoundError:
                    release = None  # deployed by hand: the target knows what runs, the ledger does not
            environment = self.settings.environment(row.environment)
            canary = None if status is not None and status.shadow else self.canary(row.environment)  # a local
            rows.append(BoardRow(row, release, canary, environment.requires_approval))  # shadow is in the canary's slot
        return rows

    def canary(self, env: str) -> dict | None:
        """The canary beside ``env``'s stable release: its release, digest or image, weight or pods, and
        the figures its gate judges (from its own servers' counters), or None."""
        try:
            target = target_for(self.settings, env)
            found = target.canary_status()
            if not found:
                return None
            figures = canary_figures(scrape_canary(target, found))
        except VciError:
            return None
        if "metadata" in found:  # a cluster's canary Deployment
            notes = found["metadata"].get("annotations") or {}
            return {
                "release_id": notes.get("vci.dev/release-id"),
                "image": notes.get("vci.dev/image"),
                "run_id": notes.get("vci.dev/run-id"),
                "replicas": (found.get("spec") or {}).get("replicas"),
                "figures": figures,
            }
        shown = {k: found.get(k) for k in ("release_id", "digest", "run_id", "weight", "started")}
        return {**shown, "figures": figures}

    def timeline(self, env: str, before: str | None = None, page: int = 1) -> Timeline:
        """The page of ``env``'s releases before the second ``before`` (None: the newest), newest first."""
        name = self.settings.environment(env).name
        if before is not None and not VCI_SECOND.match(before):
            raise UsageError(f"{before!r} is not a second of the ledger", hint="follow the page's 'older' link")
        found = self._listed(f"ledger {name} {before}", partial(self._ledger_page, name, before))
        return Timeline(name, found.releases, max(page, 1), found.older)

    def _ledger_page(self, env: str, before: str | None) -> LedgerPage:
        found = Ledger.for_settings(self.settings).page(env, PAGE, before=before, cached=True)
        for record in found.releases:
            self._records[(env, record.release_id)] = record
        return found

    def runs(self, project: str | None = None, tag: str | None = None, limit: int = PAGE) -> list[Run]:
        """The newest runs (of ``project``), or the one run ``tag`` names (``vci runs list``, cached)."""
        if tag:
            try:
                return [self.run(f"{project}:{tag}" if project else tag)]
            except NotFoundError:
                return []
        newest = partial(list_runs, project=project, settings=self.settings, limit=limit, cached=True)
        return self._listed(f"runs {project} {limit}", newest)

    def where_run(self, run: Run, limit: int = 500) -> list[ReleaseRecord]:
        """Every succeeded release of ``run`` among each environment's newest ``limit``: where it runs or ran."""
        found = []
        for env in sorted(self.settings.environments):
            for record in Ledger.for_settings(self.settings).newest(env, limit, cached=True):
                if record.outcome == "succeeded" and (record.run_id == run.id or record.digest == run.version):
                    found.append(record)
        return found


def evidence(settings: Settings, what: str) -> list[dict]:
    """``vci verify WHAT --env ENV`` for every environment with a ``verify:`` policy: ``{environment,
    verified, problem, signatures}`` (a check that cannot be made says why in ``problem``)."""
    found = []
    for env in sorted(settings.environments):
        if not settings.environment(env).verify:
            continue
        try:
            report = verify(settings, what, env=env)
        except VciError as exc:
            report = {"verified": False, "problem": shown_error(exc), "signatures": []}
        found.append({"environment": env, **{k: report.get(k) for k in ("verified", "problem", "signatures")}})
    return found


def ci_url(record: ReleaseRecord | None) -> str | None:
    """The CI build behind a release, when it is an http(s) link (anything else is not rendered as one)."""
    url = ((record.ci if record else None) or {}).get("url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def shown_error(exc: BaseException) -> str:
    """An error as a page shows it: its message and hint, with any credential masked."""
    message = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", None)
    return redact(f"{message} ({hint})" if hint else message)


def manifest_schema(manifest: dict[str, Any]) -> dict | None:
    """The run's input schema if its manifest has one (``schemas.input``; read defensively), else None."""
    schemas = manifest.get("schemas")
    if isinstance(schemas, dict) and isinstance(schemas.get("input"), dict):
        return schemas["input"]
    return None
