"""A shadow on a cluster: the candidate's own stack at no live traffic, the stable pods' mirror switched by a
ConfigMap they mount, and the comparison read back from their ``/metrics``.

``KubeTarget.start_shadow`` applies the shadow's Deployment (``<project>-<env>-shadow``, track ``shadow``,
its pods labelled ``vci.dev/shadow-of`` the environment, so the environment's Service never selects them),
its own Service and NetworkPolicy, and waits until it is ready. :meth:`KubeShadow.mirror` writes the mirror's
config (``{url, fraction, compare, release_id}``: vci.serve.shadow) into the ConfigMap the stable pods
mount (optional, at ``SHADOW_MOUNT``): the kubelet updates a mounted ConfigMap in place, so the mirror
starts and stops without restarting production's pods, within the kubelet's sync period (about a minute
on a real cluster: a shadow's ``duration`` should be longer). The mirror goes to the shadow Service's
cluster IP with the stable server's own token (the shadow runs with the environment's auth setting, so
it takes the same tokens). Each stable pod counts its comparisons and exposes them as ``vci_shadow_*``
series labelled with the shadow's release; :func:`comparison` sums them over the pods that answered the
scrape (a pod restarted meanwhile starts again from zero). :meth:`KubeTarget.remove_shadow` deletes the
ConfigMap and the shadow's stack, leaving production as it was.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, DeployError
from .manifests import SHADOW_KEY, render_shadow, render_shadow_config
from .rollout import explain, wait_rollout

if TYPE_CHECKING:  # the target creates the handle: a runtime import would be a cycle
    from .kube import KubeTarget

log = logging.getLogger("vci")
SHADOW_KINDS = ("NetworkPolicy", "Service", "Deployment")  # the shadow's stack, deleted in this order
_SAMPLE = re.compile(r'^vci_shadow_(\w+)_total\{[^}]*shadow_release="((?:[^"\\]|\\.)*)"[^}]*\}\s+(\S+)')
_PREDICT = re.compile(r'^vci_request_duration_seconds_(sum|count)\{[^}]*route="/predict"[^}]*\}\s+(\S+)')


class KubeShadow:
    """A shadow in progress: its stack is up; ``mirror`` turns the stable pods' copies on (or off)."""

    def __init__(self, target: KubeTarget, image: dict, release_id: str, timeout: float | None):
        self.target, self.image, self.release_id, self.timeout = target, image, release_id, timeout
        self.url: str | None = None

    def start(self, replicas: int) -> None:
        """Apply the shadow's Deployment, Service and NetworkPolicy; wait until its pods are ready."""
        target = self.target
        objects = render_shadow(target.spec(self.image, self.release_id, track="shadow", replicas=replicas))
        deployment = objects[0]
        name = deployment["metadata"]["name"]
        before = target.cluster.read("Deployment", name, target.namespace)
        for obj in reversed(objects):  # its policy and Service before its pods
            target.cluster.apply(obj)
        outcome = wait_rollout(target.cluster, name, target.namespace, timeout=self.timeout, before=before)
        if not outcome.ok:
            live = target.cluster.read("Deployment", name, target.namespace) or deployment
            raise DeployError(
                f"the shadow {name} did not become ready: {explain(target.cluster, live, outcome)}",
                hint=f"kubectl -n {target.namespace} describe deployment {name}",
            )
        service = target.cluster.read("Service", objects[1]["metadata"]["name"], target.namespace) or {}
        self.url = f"http://{service['spec']['clusterIP']}:80"  # no DNS needed: any cluster domain, any resolver

    def mirror(self, config: dict | None) -> None:
        """Turn the stable pods' mirror on with ``config`` (its url is this shadow's), or off (None)."""
        target = self.target
        spec = target._named()
        if config is None:
            target.cluster.delete("ConfigMap", spec.shadow_config_name, target.namespace)
            return
        config = {**config, "url": self.url, "release_id": self.release_id}
        target.cluster.apply(render_shadow_config(spec, config))

    def counts(self) -> dict:
        return comparison(self.target.scrape("stable"), self.release_id)

    def metrics(self) -> dict[str, str]:
        return self.target.scrape("shadow")

    def stable_metrics(self) -> dict[str, str]:
        return self.target.scrape("stable")

    def remove(self) -> None:
        self.target.remove_shadow()


def no_comparison() -> dict[str, Any]:
    """The counts of a shadow before anything was compared (what the stable servers' counts add up to)."""
    return {"compared": 0, "disagreed": 0, "errors": 0, "dropped": 0, "shadow_seconds": 0.0, "disagreements": []}


def comparison(scrapes: dict[str, str], release_id: str) -> dict:
    """The comparison counts of the shadow ``release_id``, summed over the stable pods' scrapes."""
    total = no_comparison()
    for text in scrapes.values():
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match and match[2] == release_id:
                key = "shadow_seconds" if match[1] == "seconds" else match[1]
                if key in total:
                    total[key] += float(match[3]) if key == "shadow_seconds" else int(float(match[3]))
    total["disagreement_rate"] = total["disagreed"] / total["compared"] if total["compared"] else None
    return total


def predict_latency_ms(scrapes: dict[str, str]) -> float | None:
    """The mean /predict latency over the pods' scrapes, in milliseconds (None: none answered)."""
    seconds, count = 0.0, 0
    for text in scrapes.values():
        for line in text.splitlines():
            if match := _PREDICT.match(line):
                if match[1] == "sum":
                    seconds += float(match[2])
                else:
                    count += int(float(match[2]))
    return round(seconds / count * 1000, 3) if count else None


def running_shadow(target: KubeTarget) -> dict | None:
    """The shadow comparison running on ``target`` now (for ``vci status``), or None when none runs."""
    spec = target._named()
    try:
        config_map = target.cluster.read("ConfigMap", spec.shadow_config_name, target.namespace)
    except AuthError:  # a Role from before shadows (no configmaps rule) ran none: status works as it did
        log.debug("the Role may not read configmaps (applied before vci ran shadows): no shadow to show")
        return None
    try:
        config = json.loads(((config_map or {}).get("data") or {}).get(SHADOW_KEY) or "null")
    except ValueError:
        config = None
    if not isinstance(config, dict) or not config.get("release_id"):
        return None
    live = target.scrape("stable")
    counts = comparison(live, config["release_id"])
    deployment = target.cluster.read("Deployment", f"{spec.object_name}-shadow", target.namespace)
    containers = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or []
    return {
        "release_id": config["release_id"],
        "image": containers[0]["image"] if containers else None,
        "fraction": config.get("fraction"),
        "compare": config.get("compare"),
        **{k: counts[k] for k in ("compared", "disagreed", "errors", "dropped", "disagreement_rate")},
        "live_latency_ms": predict_latency_ms(live),
        "shadow_latency_ms": predict_latency_ms(target.scrape("shadow")),
    }


def shadow_replicas(stable: int, fraction: float) -> int:
    """Shadow pods for ``fraction`` of the traffic of ``stable`` pods: as many as that share needs, at least 1."""
    return max(1, math.ceil(max(stable, 1) * fraction))
