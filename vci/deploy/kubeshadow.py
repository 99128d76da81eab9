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
series labelled with the shadow's release; vci.deploy.comparison sums them over the pods that answered the
scrape (a pod restarted meanwhile starts again from zero). :meth:`KubeTarget.remove_shadow` deletes the
ConfigMap and the shadow's stack, leaving production as it was.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..errors import AuthError
from .comparison import from_metrics, mirror_config, shown
from .kubecanary import wait_ready
from .manifests import SHADOW_KEY, render_shadow, render_shadow_config

if TYPE_CHECKING:  # the target creates the handle: a runtime import would be a cycle
    from .kube import KubeTarget

log = logging.getLogger("vci")
SHADOW_KINDS = ("NetworkPolicy", "Service", "Deployment")  # the shadow's stack, deleted in this order


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
        wait_ready(target, deployment, before, self.timeout, "shadow")
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
        return from_metrics(self.target.scrape("stable"), self.release_id)

    def metrics(self) -> dict[str, str]:
        return self.target.scrape("shadow")

    def stable_metrics(self) -> dict[str, str]:
        return self.target.scrape("stable")

    def remove(self) -> None:
        self.target.remove_shadow()


def running_shadow(target: KubeTarget) -> dict | None:
    """The shadow comparison running on ``target`` now (for ``vci status``), or None when none runs."""
    spec = target._named()
    try:
        config_map = target.cluster.read("ConfigMap", spec.shadow_config_name, target.namespace)
    except AuthError:  # a Role from before shadows (no configmaps rule) ran none: status works as it did
        log.debug("the Role may not read configmaps (applied before vci ran shadows): no shadow to show")
        return None
    if (config := mirror_config(((config_map or {}).get("data") or {}).get(SHADOW_KEY))) is None:
        return None
    live = target.scrape("stable")
    deployment = target.cluster.read("Deployment", f"{spec.object_name}-shadow", target.namespace)
    containers = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or []
    candidate = containers[0]["image"] if containers else None
    return shown(config, from_metrics(live, config["release_id"]), candidate, live, target.scrape("shadow"))


def shadow_replicas(stable: int, fraction: float) -> int:
    """Shadow pods for ``fraction`` of the traffic of ``stable`` pods: as many as that share needs, at least 1."""
    return max(1, math.ceil(max(stable, 1) * fraction))
