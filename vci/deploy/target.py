"""The seam every deployment backend implements: a Target runs one environment, a Canary is a handle.

``target_for`` (``vci.deploy``) is the one place that picks the implementation: ``LocalTarget`` (a server
process on this machine, running a run) or ``KubeTarget`` (a Deployment running an image by digest).
Both are canary targets: ``start_canary`` returns the Canary in progress, which the release driver
(``vci.release.canary``) steps through its weights and removes; nothing of it is kept on the target.
What a target deploys is a run (a Run or its id) or, on a cluster, an image reference by digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol

from ..client import DeployedModel
from ..config import Environment
from ..ledger import now_iso
from ..runs import Run

Deployable = Run | str  # a run (a Run or its id), or on a cluster an image reference by digest


def _shown(result: Any, always: frozenset[str]) -> dict:
    """A result as its JSON object: the fields every target fills, and the others that this one filled."""
    return {k: v for k, v in asdict(result).items() if k in always or v is not None}


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did: ``status`` is deployed, applied (not waited for), unchanged or would-deploy; a
    gitops environment's also committed (pushed, not watched) or proposed (a pull request)."""

    environment: str
    status: str
    digest: str | None
    run_id: str | None
    release_id: str | None
    endpoint: str | None
    previous: str | None  # the digest that ran before
    image: str | None = None  # a cluster's image reference by digest
    dry_run: bool | None = None
    changes: dict[str, str] | None = None  # "Kind/name": created | updated | unchanged | deleted | gone
    diff: str | None = None  # a dry run's diff of the live objects against the rendered ones
    prune: list[str] | None = None  # a dry run's objects that would be deleted
    commit: dict | None = None  # a gitops environment's: {repo, branch, sha, pushed_to, pull_request}

    def to_json(self) -> dict:
        return _shown(self, _DEPLOY_FIELDS)


_DEPLOY_FIELDS = frozenset({"environment", "status", "digest", "run_id", "release_id", "endpoint", "previous"})


@dataclass(frozen=True)
class Status:
    """What runs in an environment: ``state`` is ready, unready, stopped (local) or not-deployed."""

    environment: str
    state: str
    digest: str | None = None
    run_id: str | None = None
    release_id: str | None = None
    endpoint: str | None = None
    image: str | None = None  # a cluster's: its Deployment, replicas wanted and available, canary image
    namespace: str | None = None
    deployment: str | None = None
    replicas: int | None = None
    available: int | None = None
    canary: str | None = None
    shadow: dict | None = None  # a shadow comparison running now: release, image, counts, latency of both
    pid: int | None = None  # a local server's: its process, start time and log file
    started: str | None = None
    log: str | None = None
    kept: dict | None = None  # blue-green: the previous release kept until its window ends {digest, until, ...}

    @property
    def deployed(self) -> bool:
        return self.state != "not-deployed"

    def to_json(self) -> dict:
        return _shown(self, _STATUS_FIELDS if self.deployed else frozenset({"environment", "state"}))


_STATUS_FIELDS = frozenset({"environment", "state", "digest", "run_id", "release_id", "endpoint"})


def kept_view(kept: dict | None, **extra: Any) -> dict | None:
    """What `vci status` shows of a blue-green release's kept previous stack (a rollback switches to it)."""
    if kept is None:
        return None
    until = now_iso(kept["kept_until"])
    return {"digest": kept["digest"], "release_id": kept["release_id"], "until": until, **extra}


@dataclass(frozen=True)
class Overview:
    """One environment in the list of all: its target kind, its status (None when it could not be read,
    with ``error`` saying why) and since when what runs there runs (its release's ledger time)."""

    environment: str
    target: str  # local | kubernetes
    status: Status | None
    since: str | None
    error: str | None = None

    def to_json(self) -> dict:
        shown = {"environment": self.environment, "target": self.target, "since": self.since}
        if self.status is None:
            return {**shown, "state": "unknown", "error": self.error}
        return {**self.status.to_json(), **shown}


@dataclass(frozen=True)
class Removal:
    """What an undeploy removed (``status`` removed), would remove (would-remove: a dry run), or not-deployed
    when nothing ran (not an error, so that a cleanup step can always call it)."""

    environment: str
    digest: str | None
    release_id: str | None
    status: str = "removed"
    dry_run: bool | None = None
    objects: list[str] | None = None  # a cluster's "Kind/name" deleted (or that a dry run would delete)
    pid: int | None = None  # a local server's process, stopped (or that a dry run would stop)

    @classmethod
    def nothing(cls, environment: str) -> Removal:
        return cls(environment=environment, digest=None, release_id=None, status="not-deployed")

    @property
    def removed(self) -> bool:
        return self.status != "not-deployed"

    def to_json(self) -> dict:
        if not self.removed:
            return {"environment": self.environment, "status": self.status}
        return _shown(self, frozenset({"environment", "digest", "release_id", "status"}))


@dataclass(frozen=True)
class Rendering:
    """What ``vci render`` prints: the objects a deploy would apply, the default resources they took and
    the warnings (what could not be read, what was filled in)."""

    environment: str
    namespace: str
    image: str
    objects: list[dict]
    defaults: list[str]  # e.g. "requests.cpu=250m": DEFAULT_RESOURCES the environment did not set
    warnings: list[str]

    def to_json(self) -> dict:
        return asdict(self)


class LogLine(NamedTuple):
    """One line a server wrote, and where it came from (a pod's name; None for a local server)."""

    source: str | None
    text: str


class Canary(Protocol):
    """A canary in progress beside an environment's stable release."""

    release_id: str

    def set_weight(self, weight: int) -> None:
        """Give the canary about ``weight`` % of the traffic (called at every check: a no-op if it holds)."""

    def metrics(self) -> dict[str, str]:
        """``{pod or process: Prometheus exposition}`` of the canary (one that does not answer is left out)."""

    def stable_metrics(self) -> dict[str, str]:
        """The same for the stable release, so the share the canary really served can be measured."""

    def send(self, inputs: list, weight: int) -> None:
        """Send ``inputs`` as requests, routed as the environment routes them (errors are counted, not raised)."""

    def remove(self) -> None:
        """Stop the canary; the stable release keeps serving."""


class Target(Protocol):
    """Deploy, inspect and remove what runs in one environment."""

    environment: Environment

    def deploy(
        self,
        what: Deployable,
        *,
        release_id: str,
        wait: bool = True,
        timeout: float | None = None,
        dry_run: bool = False,
        allow_tag: bool = False,
        insecure: bool | None = None,
    ) -> DeployResult:
        """Deploy ``what`` (or say what would change, for a dry run)."""

    def status(self) -> Status:
        """What runs now; state ``not-deployed`` when nothing does."""

    def undeploy(self, *, dry_run: bool = False) -> Removal:
        """Remove what runs (canary included), ``Removal.nothing`` when nothing did; a dry run says what it
        would remove and removes nothing."""

    def client(self, **options: Any) -> DeployedModel:
        """A client for the live endpoint."""

    def logs(self, *, since: float | None = None, tail: int | None = None, follow: bool = False) -> Iterator[LogLine]:
        """The server's log lines from epoch time ``since`` on (the last ``tail``); with ``follow``, then
        every new line until the servers stop (or the caller stops iterating)."""


class CanaryTarget(Target, Protocol):
    """A target that can run a canary beside its stable release."""

    def check_canary(self) -> None:
        """Refuse, before anything is copied or deployed, a canary this environment cannot run."""

    def start_canary(self, what: Deployable, *, release_id: str, timeout: float | None = None) -> Canary:
        """Start ``what`` beside the stable release at a small share, ready, and return its handle."""

    def canary_status(self) -> dict | None:
        """What the canary is now (its record or Deployment), None when there is none."""

    def remove_canary(self) -> None:
        """Remove a canary if there is one (also one left by a process that died)."""
