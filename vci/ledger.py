"""The release ledger: append-only release records in the store, and the claim that serialises promotions.

Layout in the configured store (local directory or S3)::

    ledger/<env>/newest-first/<inverted time>-<release-id>.json   one record per deploy, promotion or
                                             rollback (written once); the time of the id with each digit
                                             d written 9-d, so that a listing (ascending) starts with the
                                             newest: a page of the newest releases is one bounded LIST
    ledger/<env>/<release-id>.json           a record written before that layout (still read), or one
                                             whose id is not vci's ``rYYYYMMDD-HHMMSS-...``
    ledger/<env>/claims/<n>.json             "promotion n of this environment is in progress"
    ledger/<env>/claims/<n>.done.json        "... and it has finished"
    ledger/<env>/aborts/<release-id>.json    "<who> aborted this release's canary" (vci ui's abort)

Every write is a conditional put (``put_json_new``): two writers can never overwrite each other. Claims
are numbered: a promotion takes claim n+1 only when claim n is done (or expired, if its holder died),
and two promotions racing for n+1 meet at the conditional put: one wins, the other gets ConflictError.
Nothing is ever overwritten or deleted, so this works on any store with a conditional put (S3 too).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .catalog import read_pages
from .ci import gitlab
from .config import Settings
from .errors import ConflictError, NotFoundError
from .store import open_store
from .store.base import Store

ACTIONS = ("deploy", "promote", "rollback")
OUTCOMES = ("succeeded", "failed", "rolled-back", "unchanged", "aborted")
_STORES: dict[str, Store] = {}  # store URL -> store, shared by the ledgers of one process
CLAIM_TTL = 1800.0  # seconds after which a claim whose holder died stops blocking
NEWEST_FIRST = "newest-first"
VCI_ID = re.compile(r"^r\d{8}-\d{6}-[0-9a-zA-Z-]+$")  # new_release_id()'s: r + UTC second + random
VCI_SECOND = re.compile(r"^r\d{8}-\d{6}$")  # a page's bound: the second of its oldest release
SLACK = 8  # keys listed beyond a page, to see where its last second ends
_INVERTED = str.maketrans("0123456789", "9876543210")


def now_iso(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def ci_context(environ=None) -> dict | None:
    """The CI build this runs in: GitHub Actions (run URL, sha, actor), GitLab CI (job URL, pipeline, sha, who
    started the job) or Jenkins (BUILD_URL), else None."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = (
            f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
            if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID")
            else None
        )
        return {
            "system": "github",
            "url": url,
            "sha": env.get("GITHUB_SHA"),
            "actor": env.get("GITHUB_ACTOR"),
            "ref": env.get("GITHUB_REF"),
            "repository": env.get("GITHUB_REPOSITORY"),
            "workflow": env.get("GITHUB_WORKFLOW_REF") or env.get("GITHUB_WORKFLOW"),
        }
    if gitlab.in_gitlab_ci(env):
        return gitlab.ci_context(env)
    if env.get("BUILD_URL") or env.get("JENKINS_URL"):
        return {
            "system": "jenkins",
            "url": env.get("BUILD_URL"),
            "sha": env.get("GIT_COMMIT"),
            "actor": env.get("BUILD_USER_ID"),
            "ref": env.get("GIT_BRANCH"),
            "repository": env.get("GIT_URL"),
            "job": env.get("JOB_NAME"),
        }
    return None


def who(environ=None) -> str:
    """The person or CI actor behind this change."""
    env = os.environ if environ is None else environ
    ci = ci_context(env) or {}
    if ci.get("actor"):
        return f"{ci['system']}:{ci['actor']}"
    import getpass

    try:
        return env.get("VCI_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


RECORD_FIELDS = (
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
)


@dataclass(frozen=True)
class ReleaseRecord:
    """One release of one environment, as the ledger keeps it (write-once, ``ledger/<env>/<id>.json``).

    ``extra`` holds what only some actions have (a promotion's gate and transfer, a canary's steps, an
    error); ``to_json`` puts it after the fixed fields, so the stored document is flat."""

    release_id: str
    environment: str
    action: str
    outcome: str
    digest: str | None
    image: str | None = None
    run_id: str | None = None
    strategy: str = "direct"
    who: str = "unknown"
    when: str = ""
    timestamp: float = 0.0
    approver: str | None = None
    ci: dict | None = None
    reason: str | None = None
    previous: str | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stored (and printed) document: the fixed fields in their documented order, then ``extra``."""
        return {**{name: getattr(self, name) for name in RECORD_FIELDS}, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseRecord:
        return cls(
            **{k: v for k, v in data.items() if k in RECORD_FIELDS},
            extra={k: v for k, v in data.items() if k not in RECORD_FIELDS},
        )


def make_record(
    *,
    release_id: str,
    environment: str,
    action: str,
    outcome: str,
    digest: str | None,
    run_id: str | None = None,
    image: str | None = None,
    strategy: str = "direct",
    previous: str | None = None,
    approver: str | None = None,
    reason: str | None = None,
    source: str | None = None,
    actor: str | None = None,
    environ=None,
    **extra,
) -> ReleaseRecord:
    """A ledger record (pure apart from reading the clock and the CI variables); its ``who`` is ``actor``,
    else the CI actor or VCI_USER (see ``who``)."""
    if action not in ACTIONS or outcome not in OUTCOMES:
        raise ValueError(f"bad ledger action/outcome {action!r}/{outcome!r}")
    return ReleaseRecord(
        release_id=release_id,
        environment=environment,
        action=action,
        outcome=outcome,
        digest=digest,
        image=image,
        run_id=run_id,
        strategy=strategy,
        who=actor or who(environ),
        when=now_iso(),
        timestamp=time.time(),
        approver=approver,
        ci=ci_context(environ),
        reason=reason,
        previous=previous,
        source=source,
        extra=extra,
    )


class Ledger:
    """Release records of every environment in one store."""

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def for_settings(cls, settings: Settings) -> Ledger:
        """The ledger in the settings' store (one store object per URL: an S3 client is costly to make)."""

        if settings.store not in _STORES:
            _STORES[settings.store] = open_store(settings.store)
        return cls(_STORES[settings.store])

    @staticmethod
    def key(env: str, release_id: str) -> str:
        """Where ``release_id`` is written: under ``newest-first/`` for vci's ids, else beside it."""
        if VCI_ID.match(release_id):
            return f"ledger/{env}/{NEWEST_FIRST}/{release_id[1:16].translate(_INVERTED)}-{release_id}.json"
        return Ledger.old_key(env, release_id)

    @staticmethod
    def old_key(env: str, release_id: str) -> str:
        """Where a release was written before the newest-first layout (and one whose id is not vci's is)."""
        return f"ledger/{env}/{release_id}.json"

    def append(self, record: ReleaseRecord) -> ReleaseRecord:
        """Write ``record`` once; ConflictError if its release id was written already."""
        try:
            self.store.put_json_new(self.key(record.environment, record.release_id), record.to_json())
        except ConflictError:
            raise ConflictError(
                f"release {record.release_id} is already in the ledger of {record.environment!r}",
                hint="each release id is written once",
            ) from None
        return record

    def records(self, env: str) -> list[ReleaseRecord]:
        """Every record of ``env``, oldest first (by timestamp, then release id)."""
        keys = self._newest_first(env, None, None)[0] + self._old_keys(env)
        found = [ReleaseRecord.from_json(self.store.get_json(k)) for k in keys]
        return sorted(found, key=lambda r: (r.timestamp, r.release_id))

    def newest(self, env: str, limit: int | None, *, cached: bool = False) -> list[ReleaseRecord]:
        """The newest ``limit`` records of ``env`` (None: all), newest first. ``cached``: for display."""
        if limit is not None and limit <= 0:
            return []
        return self.page(env, limit, cached=cached).releases[:limit]

    def page(self, env: str, size: int | None, *, before: str | None = None, cached: bool = False) -> LedgerPage:
        """The newest releases of ``env`` from the seconds before ``before`` (a ``rYYYYMMDD-HHMMSS``, the
        first 16 characters of a release id; None: from the newest), in whole seconds: at least ``size``
        (None: all) unless fewer remain, newest first, reading only those records. A release id names its
        second, not its order within it, so a page holds every release of the seconds it shows: the ids of
        one second need not sort as their timestamps do."""
        fresh, complete = self._newest_first(env, size, before)
        since = None if complete or not fresh else second_of(fresh[-1])  # the oldest second listed in full
        old = [k for k in self._old_keys(env, since) if before is None or second_of(k) < before]
        keys = sorted(fresh + old, key=second_of, reverse=True)
        last = second_of(keys[size - 1]) if size is not None and len(keys) >= size else None
        kept = keys if last is None else [k for k in keys if second_of(k) >= last]
        docs = [doc for page in read_pages(self.store, kept, page=len(kept) or 1, cache=cached) for doc in page]
        found = sorted((ReleaseRecord.from_json(d) for d in docs), key=lambda r: (r.timestamp, r.release_id))
        more = len(kept) < len(keys) or not complete
        return LedgerPage(list(reversed(found)), second_of(kept[-1]) if more and kept else None)

    def _newest_first(self, env: str, size: int | None, before: str | None) -> tuple[list[str], bool]:
        """The newest-first keys of whole seconds before ``before``, at least ``size`` of them (None: all),
        and whether that is all there are: bounded LISTs of ``size + SLACK`` keys (one, nearly always)."""
        prefix = f"ledger/{env}/{NEWEST_FIRST}/"
        after = prefix + before[1:].translate(_INVERTED) + "." if before and VCI_SECOND.match(before) else None
        bound = None if size is None else size + SLACK
        keys: list[str] = []
        while True:
            batch = self.store.list_keys(prefix, after=after, limit=bound)
            keys += [k for k in batch if k.endswith(".json") and (before is None or second_of(k) < before)]
            if bound is None or len(batch) < bound:
                return keys, True
            after = batch[-1]
            if size is not None and len(keys) > size and second_of(keys[-1]) != second_of(keys[size - 1]):
                return [k for k in keys if second_of(k) >= second_of(keys[size - 1])], False

    def _old_keys(self, env: str, since: str | None = None) -> list[str]:
        """The records of the layout before newest-first (``ledger/<env>/<id>.json``), of the seconds from
        ``since`` on: one LIST starting there (vci's ids start with ``r``: claims/ and newest-first/ sort
        before it)."""
        base = f"ledger/{env}/"
        keys = self.store.list_keys(base, after=base + (since or "r"))
        return [k for k in keys if k.endswith(".json") and "/" not in k[len(base) :]]

    def get(self, env: str, release_id: str) -> ReleaseRecord:
        """One release, wherever its layout put it."""
        keys = dict.fromkeys([self.key(env, release_id), self.old_key(env, release_id)])
        for key in keys:
            try:
                return ReleaseRecord.from_json(self.store.get_json(key))
            except NotFoundError:
                continue
        raise NotFoundError(
            f"release {release_id} is not in the ledger of {env!r}",
            hint=f"`vci history --env {env}` lists its releases",
        )

    def claim(self, env: str, holder: str, ttl: float = CLAIM_TTL, *, actor: str | None = None) -> str:
        """Take the next claim on ``env`` for ``actor`` (default: ``who()``); ConflictError while the last one
        is neither done nor expired."""
        taken = sorted(k for k in self.store.list_keys(f"ledger/{env}/claims/") if k.endswith(".json"))
        numbers = [int(k.rsplit("/", 1)[1][:6]) for k in taken if not k.endswith(".done.json")]
        last = max(numbers, default=0)
        if numbers and f"ledger/{env}/claims/{last:06d}.done.json" not in taken:
            self._refuse_if_live(env, self.store.get_json(f"ledger/{env}/claims/{last:06d}.json"))
        key = f"ledger/{env}/claims/{last + 1:06d}.json"
        doc = {"holder": holder, "who": actor or who(), "since": now_iso(), "expires": time.time() + ttl}
        try:
            self.store.put_json_new(key, doc)
        except ConflictError:
            self._refuse_if_live(env, self.store.get_json(key), force=True)
        return key

    @staticmethod
    def _refuse_if_live(env: str, claim: dict, force: bool = False) -> None:
        if force or claim.get("expires", 0) > time.time():
            raise ConflictError(
                f"another release of {env!r} is in progress ({claim.get('holder')}, "
                f"by {claim.get('who')} since {claim.get('since')})",
                hint="wait for it to finish, then check `vci history` and retry",
            )

    def mark_aborted(self, env: str, release_id: str, actor: str) -> None:
        """Note that ``actor`` stopped release ``release_id`` of ``env`` (its canary), for the promotion that
        drives it to record (write-once: the first abort is the one kept)."""
        with contextlib.suppress(ConflictError):
            self.store.put_json_new(f"ledger/{env}/aborts/{release_id}.json", {"who": actor, "when": now_iso()})

    def aborted_by(self, env: str, release_id: str) -> str | None:
        """Who stopped release ``release_id`` of ``env`` (``mark_aborted``), or None."""
        try:
            return self.store.get_json(f"ledger/{env}/aborts/{release_id}.json").get("who")
        except NotFoundError:
            return None

    def release_claim(self, key: str) -> None:
        """Mark a claim finished (a second, write-once marker: nothing is ever overwritten or deleted)."""
        self.store.put_json_new(key[:-5] + ".done.json", {"done": now_iso()})


@dataclass(frozen=True)
class LedgerPage:
    """Releases of one environment, newest first, and the ``before`` of the page after (None: none)."""

    releases: list[ReleaseRecord]
    older: str | None


def release_of(key: str) -> str:
    """The release id a ledger key holds, in either layout."""
    name = key.rsplit("/", 1)[1].removesuffix(".json")
    return name[16:] if f"/{NEWEST_FIRST}/" in key else name


def second_of(key: str) -> str:
    """``rYYYYMMDD-HHMMSS``, the second a ledger key's release id names (for another id: its start)."""
    return release_of(key)[:16]
