"""The deployment controller: a ReplicaSet per pod template, rolling updates, and the Deployment's status.

The ReplicaSet of a template is named ``<deployment>-<pod-template-hash>`` (10 characters from a hash of the
template), labelled and selected with ``pod-template-hash``, owned by the Deployment, and annotated
``deployment.kubernetes.io/revision`` (max of the others + 1; a template that returns to an old ReplicaSet
gives that one the next revision, as ``kubectl rollout undo`` does); the Deployment carries the same revision
annotation. RollingUpdate follows the real controller: the new ReplicaSet grows while the total stays within
replicas + maxSurge (percentages round up), old ones shrink (unhealthy pods first) while at least replicas -
maxUnavailable (rounded down; 1 if both are 0) stay available. Recreate empties the old ones first and waits
until their pods are gone, terminating ones included. Status:
observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas,
conditions Available (MinimumReplicasAvailable/Unavailable) and Progressing (NewReplicaSetCreated,
FoundNewReplicaSet only while there is no Progressing condition yet, ReplicaSetUpdated, NewReplicaSetAvailable,
and ProgressDeadlineExceeded once ``progressDeadlineSeconds`` pass without progress; a template that returns to
an existing ReplicaSet keeps a ProgressDeadlineExceeded until the counts move, as the real controller does).
A Pod counts as available as soon as it is Ready
(minReadySeconds is not modelled). Old ReplicaSets beyond revisionHistoryLimit are deleted.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math

from .events import record
from .resources import BY_KIND
from .store import Store

PODS, REPLICASETS, DEPLOYMENTS = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["Deployment"]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:10])


def _without_hash(template: dict) -> dict:
    template = copy.deepcopy(template)
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return template


def _resolve(value, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    spec = deployment["spec"]
    if spec["strategy"]["type"] != "RollingUpdate":
        return 0, spec.get("replicas", 1)
    rolling = spec["strategy"].get("rollingUpdate") or {}
    want = spec.get("replicas", 1)
    surge = _resolve(rolling.get("maxSurge", "25%"), want, True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), want, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def _revision(rs: dict) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))


class Rollout:
    """One sync of one Deployment against its ReplicaSets and their pods."""

    def __init__(self, store: Store, deployment: dict):
        from .controller import live, owned_by, pod_ready

        self.store, self.d = store, deployment
        self.namespace, self.name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        self.rss = live([r for r in store.list(REPLICASETS, self.namespace)[0] if owned_by(r, deployment)])
        every_pod = store.list(PODS, self.namespace)[0]
        pods = live(every_pod)
        self.pods = {r["metadata"]["uid"]: [p for p in pods if owned_by(p, r)] for r in self.rss}
        self.still_running = {r["metadata"]["uid"] for r in self.rss for p in every_pod if owned_by(p, r)}
        self.ready = {uid: sum(1 for p in ps if pod_ready(p)) for uid, ps in self.pods.items()}
        self.want = deployment["spec"].get("replicas", 1)
        self.new = next(
            (r for r in self.rss if _without_hash(r["spec"]["template"]) == deployment["spec"]["template"]), None
        )
        self.old = sorted([r for r in self.rss if r is not self.new], key=lambda r: r["metadata"]["creationTimestamp"])
        self.progress_note = None

    def scale(self, rs: dict, replicas: int) -> None:
        before = rs["spec"].get("replicas", 0)
        if before == replicas:
            return

        def change(obj):
            obj["spec"]["replicas"] = replicas
            obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(self.want)

        self.store.mutate(REPLICASETS, self.namespace, rs["metadata"]["name"], change)
        rs["spec"]["replicas"] = replicas
        direction = "up" if replicas > before else "down"
        record(
            self.store,
            self.d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {before}",
            "deployment-controller",
        )

    def ensure_new(self) -> None:
        top = max([_revision(r) for r in self.rss] or [0])
        if self.new is not None:
            if self.old and _revision(self.new) < top:  # rolled back to an older template
                revision = str(top + 1)
                self.store.mutate(
                    REPLICASETS,
                    self.namespace,
                    self.new["metadata"]["name"],
                    lambda o: o["metadata"].setdefault("annotations", {}).__setitem__(REVISION, revision),
                )
                self.new["metadata"]["annotations"][REVISION] = revision
            if not any(c.get("type") == "Progressing" for c in (self.d.get("status") or {}).get("conditions") or []):
                self.progress_note = (  # as the real controller: only where no Progressing condition is yet
                    "FoundNewReplicaSet",
                    f'Found new replica set "{self.new["metadata"]["name"]}"',
                )
            return
        self.new = self._create_new(str(top + 1))
        self.progress_note = (
            "NewReplicaSetCreated",
            f'Created new replica set "{self.new["metadata"]["name"]}"',
        )

    def _create_new(self, revision: str) -> dict:
        from .controller import owner_ref

        template = copy.deepcopy(self.d["spec"]["template"])
        pod_hash = template_hash(template)
        template["metadata"].setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(self.d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        surge, _ = surge_and_unavailable(self.d)
        total = sum(r["spec"].get("replicas", 0) for r in self.rss)
        start = self.want if not self.old else max(0, min(self.want, self.want + surge - total))
        if self.d["spec"]["strategy"]["type"] == "Recreate" and self.old:
            start = 0
        rs = {
            "metadata": {
                "name": f"{self.name}-{pod_hash}",
                "namespace": self.namespace,
                "labels": dict(template["metadata"]["labels"]),
                "ownerReferences": [owner_ref(self.d)],
                "annotations": {
                    REVISION: revision,
                    "deployment.kubernetes.io/desired-replicas": str(self.want),
                    "deployment.kubernetes.io/max-replicas": str(self.want + surge),
                },
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": self.d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        created = self.store.create(REPLICASETS, self.namespace, rs)
        self.rss.append(created)
        self.pods[created["metadata"]["uid"]], self.ready[created["metadata"]["uid"]] = [], 0
        self.scale(created, start)
        return created

    def roll(self) -> None:
        if self.d["spec"]["strategy"]["type"] == "Recreate":
            for rs in self.old:
                self.scale(rs, 0)
            if not any(r["metadata"]["uid"] in self.still_running for r in self.old):  # terminating ones too
                self.scale(self.new, self.want)
            return
        surge, unavailable = surge_and_unavailable(self.d)
        spec_total = sum(r["spec"].get("replicas", 0) for r in self.rss)
        new_replicas = self.new["spec"].get("replicas", 0)
        if new_replicas > self.want:
            self.scale(self.new, self.want)
        elif new_replicas < self.want and spec_total < self.want + surge:
            self.scale(self.new, min(self.want, new_replicas + self.want + surge - spec_total))
        self._scale_down_old(unavailable)

    def _scale_down_old(self, unavailable: int) -> None:
        if not any(r["spec"].get("replicas", 0) for r in self.old):
            return
        min_available = self.want - unavailable
        all_pods = sum(r["spec"].get("replicas", 0) for r in self.rss)
        new_unavailable = self.new["spec"].get("replicas", 0) - self.ready[self.new["metadata"]["uid"]]
        budget = all_pods - min_available - new_unavailable
        for rs in self.old:  # unhealthy old pods go first: they serve nothing
            unhealthy = rs["spec"].get("replicas", 0) - self.ready[rs["metadata"]["uid"]]
            cut = max(0, min(budget, unhealthy))
            if cut:
                self.scale(rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        available = sum(min(self.ready[r["metadata"]["uid"]], r["spec"].get("replicas", 0)) for r in self.rss)
        budget = available - min_available
        for rs in self.old:
            cut = max(0, min(rs["spec"].get("replicas", 0), budget))
            if cut:
                self.scale(rs, rs["spec"]["replicas"] - cut)
                budget -= cut

    def clean_history(self) -> None:
        limit = self.d["spec"].get("revisionHistoryLimit", 10)
        idle = [r for r in self.old if not r["spec"].get("replicas") and not self.pods[r["metadata"]["uid"]]]
        for rs in sorted(idle, key=_revision)[: max(0, len(idle) - limit)]:
            self.store.delete(REPLICASETS, self.namespace, rs["metadata"]["name"])


def sync_deployment(store: Store, deployment: dict) -> None:
    """One pass of the deployment controller over ``deployment`` (a fresh read)."""
    from .rollout_status import next_status

    if deployment["metadata"].get("deletionTimestamp"):
        return
    rollout = Rollout(store, deployment)
    if not deployment["spec"].get("paused"):
        rollout.ensure_new()
        rollout.roll()
        rollout.clean_history()
        revision = (rollout.new["metadata"].get("annotations") or {}).get(REVISION)
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            store.mutate(
                DEPLOYMENTS,
                rollout.namespace,
                rollout.name,
                lambda o: o["metadata"].setdefault("annotations", {}).__setitem__(REVISION, revision),
            )
    status = next_status(rollout, deployment.get("status") or {}, datetime.datetime.now(datetime.timezone.utc))
    if status != (deployment.get("status") or {}):
        store.mutate(DEPLOYMENTS, rollout.namespace, rollout.name, lambda o: o.__setitem__("status", status), "status")
