"""The seam every deployment backend implements: a Target runs one environment, a Canary is a handle.

``target_for`` (``vci.deploy``) is the one place that picks the implementation: ``LocalTarget`` (a server
process on this machine, running a run) or ``KubeTarget`` (a Deployment running an image by digest).
Both are canary targets: ``start_canary`` returns the Canary in progress, which the release driver
(``vci.release.canary``) steps through its weights and removes; nothing of it is kept on the target.
What a target deploys is a run (a Run or its id) or, on a cluster, an image reference by digest.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..client import DeployedModel
from ..config import Environment
from ..runs import Run

Deployable = Run | str  # a run (a Run or its id), or on a cluster an image reference by digest


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
    ) -> dict:
        """``{environment, digest, release_id, endpoint, status, previous, ...}`` (``--output json``)."""

    def status(self) -> dict:
        """``{environment, state, digest, run_id, release_id, endpoint, ...}``; state ``not-deployed`` when empty."""

    def undeploy(self) -> dict:
        """Remove what runs (canary included): ``{environment, status: removed, digest, release_id}``."""

    def client(self, **options: Any) -> DeployedModel:
        """A client for the live endpoint."""


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
