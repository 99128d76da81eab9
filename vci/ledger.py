"""The release ledger: append-only release records in the store, and the claim that serialises promotions.

Layout in the configured store (local directory or S3)::

    ledger/<env>/<release-id>.json           one record per deploy, promotion or rollback (written once)
    ledger/<env>/claims/<n>.json             "promotion n of this environment is in progress"
    ledger/<env>/claims/<n>.done.json        "... and it has finished"

Every write is a conditional put (``put_json_new``): two writers can never overwrite each other. Claims
are numbered: a promotion takes claim n+1 only when claim n is done (or expired, if its holder died),
and two promotions racing for n+1 meet at the conditional put: one wins, the other gets ConflictError.
Nothing is ever overwritten or deleted, so this works on any store with a conditional put (S3 too).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from .catalog import newest_keys, read_pages
from .ci import gitlab
from .config import Settings
from .errors import ConflictError, NotFoundError
from .store import open_store
from .store.base import Store

ACTIONS = ("deploy", "promote", "rollback")
OUTCOMES = ("succeeded", "failed", "rolled-back", "unchanged", "aborted")
_STORES: dict[str, Store] = {}  # store URL -> store, shared by the ledgers of one process
CLAIM_TTL = 1800.0  # seconds after which a claim whose holder died stops blocking


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
    environ=None,
    **extra,
) -> ReleaseRecord:
    """A ledger record (pure apart from reading the clock and the CI variables)."""
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
        who=who(environ),
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
        """Every record of ``env``, oldest first (release ids sort by time)."""
        keys = [k for k in self.store.list_keys(f"ledger/{env}/") if k.endswith(".json") and k.count("/") == 2]
        found = [ReleaseRecord.from_json(self.store.get_json(k)) for k in keys]
        return sorted(found, key=lambda r: (r.timestamp, r.release_id))

    def newest(self, env: str, limit: int | None, *, cached: bool = False) -> list[ReleaseRecord]:
        """The newest ``limit`` records of ``env``, newest first, reading only those (and the ones of the
        same second as the last, whose ids need not sort as their timestamps do). ``cached``: for display."""
        if limit is not None and limit <= 0:
            return []
        keys = newest_keys(self.store, f"ledger/{env}/")
        if limit is not None and len(keys) > limit:
            second = keys[limit - 1].rsplit("/", 1)[1][:16]  # "rYYYYMMDD-HHMMSS"
            keys = keys[:limit] + [k for k in keys[limit:] if k.rsplit("/", 1)[1].startswith(second)]
        docs = [doc for page in read_pages(self.store, keys, page=len(keys), cache=cached) for doc in page]
        found = sorted((ReleaseRecord.from_json(d) for d in docs), key=lambda r: (r.timestamp, r.release_id))
        return list(reversed(found))[:limit]

    def get(self, env: str, release_id: str) -> ReleaseRecord:
        try:
            return ReleaseRecord.from_json(self.store.get_json(self.key(env, release_id)))
        except NotFoundError:
            raise NotFoundError(
                f"release {release_id} is not in the ledger of {env!r}",
                hint=f"`vci history --env {env}` lists its releases",
            ) from None

    def claim(self, env: str, holder: str, ttl: float = CLAIM_TTL) -> str:
        """Take the next claim on ``env``; ConflictError while the last one is neither done nor expired."""
        taken = sorted(k for k in self.store.list_keys(f"ledger/{env}/claims/") if k.endswith(".json"))
        numbers = [int(k.rsplit("/", 1)[1][:6]) for k in taken if not k.endswith(".done.json")]
        last = max(numbers, default=0)
        if numbers and f"ledger/{env}/claims/{last:06d}.done.json" not in taken:
            self._refuse_if_live(env, self.store.get_json(f"ledger/{env}/claims/{last:06d}.json"))
        key = f"ledger/{env}/claims/{last + 1:06d}.json"
        doc = {"holder": holder, "who": who(), "since": now_iso(), "expires": time.time() + ttl}
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

    def release_claim(self, key: str) -> None:
        """Mark a claim finished (a second, write-once marker: nothing is ever overwritten or deleted)."""
        self.store.put_json_new(key[:-5] + ".done.json", {"done": now_iso()})
