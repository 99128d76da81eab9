"""What each page shows, gathered from the functions the CLI calls: the board, a timeline page, runs, a run.

A ``Catalog`` is one app's view of one store. What never changes once written is kept in memory: a
ledger record (write-once), a committed run's manifest (immutable). A directory of keys is listed again
only after ``listing_ttl`` seconds, so paging through 10,000 releases does not list them on every click.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..catalog import newest_keys, read_pages
from ..config import Settings
from ..deploy import overview, target_for
from ..deploy.target import Overview
from ..errors import NotFoundError, VciError
from ..ledger import Ledger, ReleaseRecord
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
    """One page of an environment's releases, newest first, and where the neighbouring pages start."""

    environment: str
    releases: list[ReleaseRecord]
    page: int
    pages: int
    total: int


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

    def keys(self, prefix: str) -> list[str]:
        """``newest_keys(prefix)``: listed once, then served from memory while a listing older than
        ``listing_ttl`` seconds is refreshed in the background (a page never waits for a second listing)."""
        return self._listed(prefix, lambda: newest_keys(self.store, prefix))

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
        """List every environment's ledger in the background (``vci ui`` does at start), so that the first
        timeline page does not wait for a listing of thousands of keys on S3."""

        def list_all() -> None:
            for env in sorted(self.settings.environments):
                self._refresh(f"ledger/{env}/", partial(newest_keys, self.store, f"ledger/{env}/"))

        worker = threading.Thread(target=list_all, daemon=True)
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
            rows.append(BoardRow(row, release, self.canary(row.environment), environment.requires_approval))
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

    def timeline(self, env: str, page: int = 1) -> Timeline:
        """Page ``page`` (from 1) of ``env``'s releases, newest first, reading only that page's records."""
        name = self.settings.environment(env).name
        keys = self.keys(f"ledger/{name}/")
        pages = max(1, -(-len(keys) // PAGE))
        page = min(max(page, 1), pages)
        chosen = keys[(page - 1) * PAGE : page * PAGE]
        missing = [k for k in chosen if (name, _release_of(k)) not in self._records]
        for docs in read_pages(self.store, missing, page=len(missing) or 1, cache=True):
            for doc in docs:
                record = ReleaseRecord.from_json(doc)
                self._records[(name, record.release_id)] = record
        records = [self._records[(name, _release_of(k))] for k in chosen if (name, _release_of(k)) in self._records]
        return Timeline(name, records, page, pages, len(keys))

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


def _release_of(key: str) -> str:
    return key.rsplit("/", 1)[1].removesuffix(".json")


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
