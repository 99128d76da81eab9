"""A canary in progress on a cluster: the handle ``KubeTarget.start_canary`` returns to the canary driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DeployError, RemoteError
from .manifests import canary_replicas
from .rollout import explain, wait_rollout

if TYPE_CHECKING:  # the target creates the handle: a runtime import would be a cycle
    from .kube import KubeTarget


def wait_ready(target: KubeTarget, desired: dict, before: dict | None, timeout: float | None, what: str) -> None:
    """Wait until the Deployment ``desired`` (just applied over ``before``) is rolled out; DeployError,
    explained, when it does not become ready."""
    name = desired["metadata"]["name"]
    outcome = wait_rollout(target.cluster, name, target.namespace, timeout=timeout, before=before)
    if not outcome.ok:
        live = target.cluster.read("Deployment", name, target.namespace) or desired
        raise DeployError(
            f"the {what} {name} did not become ready: {explain(target.cluster, live, outcome)}",
            hint=f"kubectl -n {target.namespace} describe deployment {name}",
        )


class KubeCanary:
    """A canary in progress on a cluster: a "-canary" Deployment behind the environment's one Service, its
    share of the traffic the share of the Service's endpoints that are canary pods."""

    def __init__(self, target: KubeTarget, image: dict, release_id: str, timeout: float | None):
        self.target, self.image, self.release_id, self.timeout = target, image, release_id, timeout
        self.replicas: int | None = None

    def set_weight(self, weight: int) -> None:
        """Scale the canary so that about ``weight`` % of the Service's endpoints are canary pods.

        Sized against the stable Deployment's replicas now (its HPA may resize it in the middle of a
        step: the canary driver calls this at every check); nothing is written when the size holds."""
        target = self.target
        stable = target.cluster.read("Deployment", target._named().object_name, target.namespace)
        replicas = canary_replicas((stable or {}).get("spec", {}).get("replicas", 1), weight)
        if replicas != self.replicas:
            self.scale(replicas)

    def scale(self, replicas: int) -> None:
        """Apply the canary Deployment at ``replicas`` and wait until they are ready."""
        target = self.target
        desired = target.canary_deployment(self.image, self.release_id, replicas)
        name = desired["metadata"]["name"]
        before = target.cluster.read("Deployment", name, target.namespace)
        target.cluster.apply(desired)
        self.replicas = replicas
        wait_ready(target, desired, before, self.timeout, "canary")

    def metrics(self) -> dict[str, str]:
        return self.target.scrape("canary")

    def stable_metrics(self) -> dict[str, str]:
        return self.target.scrape("stable")

    def send(self, inputs: list, weight: int) -> None:
        """Send ``inputs`` through the Service (which spreads them over stable and canary pods)."""
        send_each(self.target.client(deadline=10.0), inputs)

    def remove(self) -> None:
        self.target.remove_canary()


def send_each(model, inputs: list) -> None:
    """Send each input as a request; the servers count the answers, errors included (none is raised)."""
    for given in inputs:
        try:
            model.predict(given)
        except RemoteError:
            pass
