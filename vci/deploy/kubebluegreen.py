"""Blue-green on a cluster: the candidate's own Deployment (``<name>-green``) beside production's, and the
Service's selector switched between their tracks in one write.

Before green starts, the Service is pinned to ``vci.dev/track: stable`` (the pods it selects already: no
change); the switch sets ``track: green``, and production's Deployment is kept (scaled to zero with
``scale_down``) until ``vci.dev/kept-until``, an annotation on the Service. ``settle`` ends the window at
the environment's next release: the stable Deployment is rolled to green's image beside it (no traffic
reaches it), the Service switched back to ``stable``, green deleted and the pin dropped, so the
environment has its usual shape again (one Deployment, a Service selecting every track).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from ..build.plan import PORT
from ..client import PROXY_TOKEN_HEADER, DeployedModel
from ..errors import DeployError
from .kubecanary import send_each, wait_ready
from .kubeproxy import proxy_session
from .manifests import environment_pods, render_deployment, render_service
from .rollout import wait_rollout

if TYPE_CHECKING:  # the target creates the handle: a runtime import would be a cycle
    from .kube import KubeTarget

GREEN, STABLE = "green", "stable"
TRACK = "vci.dev/track"
KEPT_UNTIL, KEPT_REPLICAS = "vci.dev/kept-until", "vci.dev/kept-replicas"
SERVER_NOTES = ("deployment.kubernetes.io/", "kubectl.kubernetes.io/")


class KubeGreen:
    """The candidate in progress: its Deployment at production's size, reached pod by pod through the API
    server's pod proxy (no Service routes to it before the switch)."""

    def __init__(self, target: KubeTarget, image: dict, release_id: str, timeout: float | None):
        self.target, self.image, self.release_id, self.timeout = target, image, release_id, timeout

    def start(self) -> None:
        """Apply green at the stable Deployment's replicas and wait until every pod is ready."""
        target = self.target
        stable = target.cluster.read("Deployment", target._named().object_name, target.namespace) or {}
        replicas = max(int(stable.get("spec", {}).get("replicas") or 1), 1)
        spec = target.spec(self.image, self.release_id, track=GREEN, replicas=replicas)
        desired = render_deployment(spec)
        before = target.cluster.read("Deployment", green_name(target), target.namespace)
        target.cluster.apply(desired, before)
        wait_ready(target, desired, before, self.timeout, "candidate")

    def set_weight(self, weight: int) -> None:
        """Nothing: green has its full size from the start and no live traffic before the switch."""

    def metrics(self) -> dict[str, str]:
        return self.target.scrape(GREEN)

    def stable_metrics(self) -> dict[str, str]:
        return self.target.scrape(STABLE)

    def client(self, **options) -> DeployedModel:
        """A client for one of green's pods, through the API server's pod proxy."""
        target = self.target
        pods = target.cluster.core.list_namespaced_pod(target.namespace, label_selector=selector(target, GREEN)).items
        if not pods:
            raise DeployError(f"the candidate {green_name(target)} has no pod to test")
        host = target.cluster.api_client.configuration.host.rstrip("/")
        url = f"{host}/api/v1/namespaces/{target.namespace}/pods/{pods[0].metadata.name}:{PORT}/proxy"
        session = proxy_session(target.cluster.api_client.configuration)
        return DeployedModel(url, session=session, token_header=PROXY_TOKEN_HEADER, **options)

    def send(self, inputs: list, weight: int) -> None:
        send_each(self.client(deadline=10.0), inputs)

    def remove(self) -> None:
        self.target.remove_green()


def green_name(target: KubeTarget) -> str:
    return f"{target._named().object_name}-{GREEN}"


def selector(target: KubeTarget, track: str) -> str:
    labels = {**environment_pods(target._named()), TRACK: track}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def live_track(service: dict | None) -> str | None:
    """The track the Service is pinned to (None: it selects every track, as vci renders it)."""
    return ((service or {}).get("spec", {}).get("selector") or {}).get(TRACK)


def route(target: KubeTarget, track: str | None, notes: dict | None = None) -> None:
    """Point the environment's Service at ``track``'s pods (None: every track) in one write; ``notes``: the
    kept stack's annotations (dropped when not given)."""
    live = target.cluster.read("Service", target._named().service_name, target.namespace)
    if live is None:
        raise DeployError(f"{target.environment.name!r} has no Service to switch", hint="deploy it first")
    desired = render_service(target._named())
    desired["metadata"]["labels"] = live["metadata"].get("labels") or desired["metadata"]["labels"]
    if notes:
        desired["metadata"]["annotations"] = notes
    if track:
        desired["spec"]["selector"] = {**desired["spec"]["selector"], TRACK: track}
    target.cluster.apply(desired, live)


def scale(target: KubeTarget, name: str, replicas: int) -> dict:
    """Set a Deployment's replicas (its spec otherwise as it is); returns it as it was."""
    live = target.cluster.read("Deployment", name, target.namespace)
    if live is None:
        raise DeployError(f"the Deployment {name} is gone")
    meta = live["metadata"]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(SERVER_NOTES)}
    spec = {**copy.deepcopy(live["spec"]), "replicas": replicas}
    metadata = {"name": name, "namespace": meta["namespace"], "labels": meta.get("labels") or {}, "annotations": notes}
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}
    target.cluster.apply(desired, live)
    return live


def switch_to_green(target: KubeTarget, keep: float, scale_down: bool) -> dict:
    """The switch (one write of the Service's selector), then blue kept: at its size, scaled to zero, or
    (``keep`` 0) deleted. Returns what is kept ({} when nothing is)."""
    blue_name = target._named().object_name
    blue = target.cluster.read("Deployment", blue_name, target.namespace) or {}
    replicas = int(blue.get("spec", {}).get("replicas") or 1)
    until = time.time() + keep
    route(target, GREEN, {KEPT_UNTIL: f"{until:.3f}", KEPT_REPLICAS: str(replicas)} if keep > 0 else None)
    if keep <= 0:
        target.cluster.delete("Deployment", blue_name, target.namespace)
        return {}
    if scale_down:
        scale(target, blue_name, 0)
    notes = blue.get("metadata", {}).get("annotations") or {}
    return {
        "release_id": notes.get("vci.dev/release-id"),
        "digest": (notes.get("vci.dev/image") or "").rpartition("@")[2] or None,
        "kept_until": until,
        "replicas": 0 if scale_down else replicas,
    }


def kept_release(target: KubeTarget) -> dict | None:
    """Blue while its window lasts: ``{digest, release_id, kept_until, replicas, endpoint}``, else None."""
    service = target.cluster.read("Service", target._named().service_name, target.namespace)
    notes = (service or {}).get("metadata", {}).get("annotations") or {}
    if live_track(service) != GREEN or float(notes.get(KEPT_UNTIL) or 0) <= time.time():
        return None
    blue = target.cluster.read("Deployment", target._named().object_name, target.namespace)
    if blue is None:
        return None
    blue_notes = blue["metadata"].get("annotations") or {}
    return {
        "digest": (blue_notes.get("vci.dev/image") or "").rpartition("@")[2] or None,
        "release_id": blue_notes.get("vci.dev/release-id"),
        "kept_until": float(notes[KEPT_UNTIL]),
        "replicas": blue["spec"].get("replicas", 1),
        "url": target.endpoint(target._named()),
    }


def switch_back(target: KubeTarget, timeout: float | None = None) -> dict:
    """Blue again: scaled back up if it was down (and ready), then one write of the selector; green goes
    (its pods drain as any terminating pod does: the preStop delay, then the server's drain)."""
    kept = kept_release(target)
    if kept is None:
        raise DeployError(f"{target.environment.name!r} keeps no previous release to switch back to")
    service = target.cluster.read("Service", target._named().service_name, target.namespace) or {}
    wanted = int((service["metadata"].get("annotations") or {}).get(KEPT_REPLICAS) or 1)
    blue_name = target._named().object_name
    if kept["replicas"] != wanted:
        before = scale(target, blue_name, wanted)
        outcome = wait_rollout(target.cluster, blue_name, target.namespace, timeout=timeout, before=before)
        if not outcome.ok:
            raise DeployError(f"the kept release did not come back up: {outcome.reason}; production still runs green")
    route(target, STABLE)
    target.cluster.delete("Deployment", green_name(target), target.namespace)
    return kept


def settle(target: KubeTarget, timeout: float | None) -> None:
    """End a blue-green window (the next release's first step): green becomes the stable Deployment again,
    with no request routed to a pod that is not ready, and the Service selects every track again."""
    service = target.cluster.read("Service", target._named().service_name, target.namespace)
    track = live_track(service)
    if track is None:  # the usual shape: nothing to settle
        return
    if track == GREEN:
        green = target.cluster.read("Deployment", green_name(target), target.namespace)
        if green is not None:
            _roll_stable_to(target, green, timeout)
        route(target, STABLE)
    target.cluster.delete("Deployment", green_name(target), target.namespace)
    route(target, None)


def _roll_stable_to(target: KubeTarget, green: dict, timeout: float | None) -> None:
    """Roll the stable Deployment to green's image and size while the Service still routes to green."""
    notes = green["metadata"].get("annotations") or {}
    image = {
        "image": notes.get("vci.dev/image") or green["spec"]["template"]["spec"]["containers"][0]["image"],
        "run_id": notes.get("vci.dev/run-id"),
        "model_digest": notes.get("vci.dev/model-digest"),
    }
    desired = render_deployment(target.spec(image, notes.get("vci.dev/release-id")))
    desired["spec"]["replicas"] = green["spec"].get("replicas", 1)
    before = target.cluster.read("Deployment", desired["metadata"]["name"], target.namespace)
    target.cluster.apply(desired, before)
    wait_ready(target, desired, before, timeout, "stable Deployment")
