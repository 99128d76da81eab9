"""The controller loop: autoscaler, deployment and replicaset controllers, and the garbage collector.

One thread runs every ``tick`` seconds: it syncs each HorizontalPodAutoscaler (autoscaler.py), each Deployment
(ReplicaSets per pod template, rolling update, status), then each ReplicaSet (creates or deletes Pods named
``<rs>-<5 chars>`` (generateName ``<rs>-``) with ownerReferences to it until the count matches
``spec.replicas``; status replicas/ready/available counts), each PodDisruptionBudget's status (disruption.py),
each ResourceQuota's status (admission.py), then collects garbage. A Pod create that admission refuses (Pod
Security, ResourceQuota) is, as in the real replicaset controller, a Warning event FailedCreate ``Error
creating: <the API server's message>`` on the ReplicaSet and a condition ReplicaFailure (True, FailedCreate,
the message) in its status until a create succeeds or nothing is left to create; the next sync tries again.
Then the garbage collector: objects whose controller owner is gone are deleted
(background cascade), owners deleted with ``propagationPolicy=Foreground`` stay (deletionTimestamp, finalizer
``foregroundDeletion``) until their dependents are gone, ``Orphan`` strips the ownerReferences, and a deleted
Namespace is emptied before it disappears. Pods are deleted at once (no grace period): their backend stops
their process.
"""

from __future__ import annotations

import threading

from .admission import sync_quotas
from .autoscaler import HPAS, sync_autoscaler
from .deployment import sync_deployment
from .disruption import PDBS, sync_budget
from .events import record
from .resources import BY_KIND, RESOURCES
from .status import ApiError
from .store import Store, now_iso

PODS, REPLICASETS, DEPLOYMENTS = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["Deployment"]


def owned_by(obj: dict, owner: dict) -> bool:
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def owner_ref(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def live(objs: list[dict]) -> list[dict]:
    return [o for o in objs if not o["metadata"].get("deletionTimestamp")]


def replica_failure(rs: dict, refused: str | None) -> dict | None:
    """The ReplicaSet's ReplicaFailure condition after a sync: kept while creates fail (the first message, as
    the real controller leaves an existing condition alone), dropped once nothing failed."""
    current = next(
        (c for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") == "ReplicaFailure"), None
    )
    if refused is None:
        return None
    return current or {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": refused,
        "lastTransitionTime": now_iso(),
    }


class Controller:
    def __init__(self, store: Store, tick: float = 0.05):
        self.store = store
        self.tick = tick
        self._stop = threading.Event()
        self._thread = None
        self.errors: list[BaseException] = []  # exceptions a sync raised (tests may assert it stays empty)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-kube-controllers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.sync_once()
            except Exception as exc:  # keep the loop alive; a test can inspect ``errors``
                if self.store.closed:
                    return
                self.errors.append(exc)

    def sync_once(self) -> None:
        for hpa in self.store.list(HPAS)[0]:
            sync_autoscaler(self.store, hpa)
        for deployment in self.store.list(DEPLOYMENTS)[0]:
            sync_deployment(self.store, deployment)
        for replicaset in self.store.list(REPLICASETS)[0]:
            self.sync_replicaset(replicaset)
        for budget in self.store.list(PDBS)[0]:
            sync_budget(self.store, budget)
        sync_quotas(self.store)
        self.collect_garbage()

    # -- replicaset controller ---------------------------------------------------------------------------
    def sync_replicaset(self, rs: dict) -> None:
        namespace = rs["metadata"]["namespace"]
        pods = live([p for p in self.store.list(PODS, namespace)[0] if owned_by(p, rs)])
        if rs["metadata"].get("deletionTimestamp"):
            return
        want = rs["spec"].get("replicas", 1)
        refused = None
        for _ in range(want - len(pods)):
            try:
                pods.append(self._create_pod(rs))
            except ApiError as exc:  # admission said no: no pod, an event and a condition say why
                refused = str(exc)
                record(self.store, rs, "Warning", "FailedCreate", f"Error creating: {refused}", "replicaset-controller")
                break
        if len(pods) > want:
            newest_first = sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
            doomed = sorted(newest_first, key=pod_ready)  # not-ready pods go first, then the youngest
            for pod in doomed[: len(pods) - want]:
                self.store.delete(PODS, namespace, pod["metadata"]["name"])
                record(
                    self.store,
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
                pods.remove(pod)
        ready = sum(1 for p in pods if pod_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        failure = replica_failure(rs, refused)
        if failure:
            status["conditions"] = [failure]
        if rs.get("status") != status:
            self.store.mutate(
                REPLICASETS, namespace, rs["metadata"]["name"], lambda obj: obj.__setitem__("status", status), "status"
            )

    def _create_pod(self, rs: dict) -> dict:
        template = rs["spec"]["template"]
        meta = {
            "generateName": f"{rs['metadata']['name']}-",
            "namespace": rs["metadata"]["namespace"],
            "labels": dict(template.get("metadata", {}).get("labels") or {}),
            "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
            "ownerReferences": [owner_ref(rs)],
        }
        pod = self.store.create(PODS, rs["metadata"]["namespace"], {"metadata": meta, "spec": template["spec"]})
        record(
            self.store,
            rs,
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {pod['metadata']['name']}",
            "replicaset-controller",
        )
        return pod

    # -- garbage collector -------------------------------------------------------------------------------
    def collect_garbage(self) -> None:
        with self.store.cond:  # one consistent snapshot
            everything = [(r, o) for r in RESOURCES for o in self.store.list(r)[0]]
        uids = {o["metadata"]["uid"] for _, o in everything}
        for resource, obj in everything:
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            if refs and not any(ref.get("uid") in uids for ref in refs):
                self._delete_quietly(resource, meta.get("namespace", ""), meta["name"], "Background")
        for resource, obj in everything:
            finalizers = obj["metadata"].get("finalizers") or []
            if obj["metadata"].get("deletionTimestamp") and finalizers:
                self._finalize(resource, obj, finalizers, everything)

    def _finalize(self, resource, owner: dict, finalizers: list, everything) -> None:
        meta = owner["metadata"]
        namespace = meta.get("namespace", "")
        if "kubernetes" in finalizers and owner["kind"] == "Namespace":
            inside = [(r, o) for r, o in everything if r.namespaced and o["metadata"]["namespace"] == meta["name"]]
            for r, obj in inside:
                self._delete_quietly(r, meta["name"], obj["metadata"]["name"], "Background")
            if not inside:
                self.store.remove_finalizer(resource, "", meta["name"], "kubernetes")
            return
        dependents = [(r, o) for r, o in everything if owned_by(o, owner)]
        if "foregroundDeletion" in finalizers:
            for r, obj in dependents:
                self._delete_quietly(r, obj["metadata"]["namespace"], obj["metadata"]["name"], "Foreground")
            if not dependents:
                self.store.remove_finalizer(resource, namespace, meta["name"], "foregroundDeletion")
        if "orphan" in finalizers:
            uid = meta["uid"]
            for r, obj in dependents:
                self.store.mutate(
                    r,
                    obj["metadata"]["namespace"],
                    obj["metadata"]["name"],
                    lambda o: o["metadata"].__setitem__(
                        "ownerReferences",
                        [ref for ref in o["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid],
                    ),
                )
            self.store.remove_finalizer(resource, namespace, meta["name"], "orphan")

    def _delete_quietly(self, resource, namespace: str, name: str, policy: str) -> None:
        try:
            self.store.delete(resource, namespace, name, policy)
        except Exception:  # already gone: another sync or a client got there first
            pass
