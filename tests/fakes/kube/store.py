"""The object store: one global resourceVersion counter, metadata, optimistic concurrency, watch history.

Bodies are decoded as typed objects would be (null fields dropped). Every write bumps a single integer
counter; objects carry it as the string ``metadata.resourceVersion``. A create carrying a resourceVersion
fails with etcd's 500, as on the real server. Create sets uid, creationTimestamp, generation 1 (workloads,
pods, HPA, PDB), namespace, and drops any client-sent status of kinds whose status is a subresource. Update
keeps uid/creationTimestamp, refuses a stale ``resourceVersion`` with 409 Conflict (an update without one is
unconditional, as on the real server), keeps the stored status (status is written only through
``subresource="status"``) and bumps ``generation`` only when ``spec`` changed. Deletion of an object with
finalizers sets ``deletionTimestamp`` and keeps it until the finalizers are gone. Deleting a Pod is graceful
as on the real server: unless ``gracePeriodSeconds`` is 0 the pod stays, terminating, with
``deletionTimestamp`` = now + the grace period (default its ``terminationGracePeriodSeconds``) and
``deletionGracePeriodSeconds``, until its kubelet (the pod backend) has stopped it and deletes it with grace 0;
``terminating[uid]`` keeps ``(monotonic time the deletion arrived, the pod then)`` for a minute, gone or not
(routing forgets a pod late: the endpoint lag, proxy.py). An update
deletes an object only when it has a deletionTimestamp, no finalizers and a grace period of 0, as the real
server's ShouldDeleteDuringUpdate does. A watch with a selector
reports an object that starts matching as ADDED and one that stops matching as DELETED. The last ``history``
changes are kept for watches; a watch from an older resourceVersion gets an ERROR event carrying a 410 Expired
Status, like the real server's compacted etcd.
"""

from __future__ import annotations

import copy
import datetime
import random
import threading
import time
import uuid
from collections import deque

from . import status as errors
from .defaults import apply_defaults
from .resources import BY_KIND, GENERATION_KINDS, Resource
from .validation import decode_typed, validate

RESET_STATUS_ON_CREATE = {
    "Deployment",
    "ReplicaSet",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Pod",
    "Ingress",
}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_nulls(value):
    """A copy without null fields: decoding into typed Go structs makes null the zero value, which is omitted
    (so a template's ``creationTimestamp: null`` from kubectl compares equal to none at all)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def random_suffix(length: int = 5) -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(length))


class Store:
    def __init__(self, history: int = 2000):
        self.cond = threading.Condition()
        self.revision = 0
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.changes: deque = deque(maxlen=history)  # (revision, type, plural, namespace, object)
        self.closed = False
        self.admission = None  # admit(resource, namespace, obj, shown_name): raises ApiError to refuse a create
        self.terminating: dict[str, tuple[float, dict]] = {}  # pod uid -> (when its deletion arrived, the pod)

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str, name: str) -> dict:
        with self.cond:
            obj = self.objects.get((resource.plural, namespace, name))
            if obj is None:
                raise errors.not_found(resource, name)
            return copy.deepcopy(obj)

    def find(self, resource: Resource, namespace: str, name: str) -> dict | None:
        with self.cond:
            obj = self.objects.get((resource.plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource: Resource, namespace: str | None = None, match=None) -> tuple[list[dict], str]:
        """Matching objects (all namespaces when ``namespace`` is None) and the list's resourceVersion."""
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (plural, ns, _), o in sorted(self.objects.items())
                if plural == resource.plural and (namespace is None or ns == namespace) and (match is None or match(o))
            ]
            return items, str(self.revision)

    # -- writes ------------------------------------------------------------------------------------------
    def _commit(self, kind: str, resource: Resource, obj: dict) -> dict:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        key = (resource.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        before = self.objects.get(key)
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.changes.append((self.revision, kind, resource.plural, key[1], copy.deepcopy(obj), before))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def _check_namespace(self, resource: Resource, namespace: str, name: str) -> None:
        if not resource.namespaced:
            return
        ns = self.objects.get(("namespaces", "", namespace))
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.terminating(resource, name, namespace)

    def create(self, resource: Resource, namespace: str, obj: dict, dry_run: bool = False) -> dict:
        obj = without_nulls(obj)
        meta = obj.setdefault("metadata", {})
        obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
        if resource.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        with self.cond:
            shown_name = meta.get("name") or meta.get("generateName") or ""  # admission runs before naming
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"][:58] + random_suffix()  # as names.SimpleNameGenerator: <= 63
            if not meta.get("name"):
                raise errors.invalid(
                    resource, "", [("metadata.name", "Required value: name or generateName is required")]
                )
            self._check_namespace(resource, namespace, meta["name"])
            decode_typed(resource, obj)
            if resource.kind in RESET_STATUS_ON_CREATE:
                obj.pop("status", None)
            if resource.kind == "Pod":
                obj["status"] = {"phase": "Pending"}  # as the real pod strategy's PrepareForCreate sets it
            apply_defaults(obj)
            validate(resource, obj)
            if self.admission is not None:
                self.admission(resource, namespace, obj, shown_name)
            if (resource.plural, meta.get("namespace", ""), meta["name"]) in self.objects:
                raise errors.already_exists(resource, meta["name"])
            if str(meta.get("resourceVersion") or "0").isdigit() and int(meta.get("resourceVersion") or 0):
                raise errors.version_on_create()
            for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(key, None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso())
            if resource.kind in GENERATION_KINDS:
                meta["generation"] = 1
            if dry_run:
                return obj
            return self._commit("ADDED", resource, obj)

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        obj: dict,
        subresource: str = "",
        dry_run: bool = False,
        check_version: bool = True,
    ) -> dict:
        """PUT semantics; ``subresource="status"`` writes only the status."""
        obj = without_nulls(obj)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        with self.cond:
            old = self.objects.get((resource.plural, namespace if resource.namespaced else "", name))
            if old is None:
                raise errors.not_found(resource, name)
            wanted = meta.get("resourceVersion")
            if check_version and wanted and wanted != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name)
            new = self._merge_update(resource, old, obj, subresource)
            if new == old:
                return copy.deepcopy(old)  # the real server skips no-op writes: resourceVersion unchanged
            if dry_run:
                return new
            meta = new["metadata"]
            if (
                meta.get("deletionTimestamp")
                and not meta.get("finalizers")
                and not meta.get("deletionGracePeriodSeconds")
            ):
                return self._commit("DELETED", resource, new)
            return self._commit("MODIFIED", resource, new)

    def _merge_update(self, resource: Resource, old: dict, obj: dict, subresource: str) -> dict:
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(obj.get("status") or {})
            return new
        new = obj
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        meta, old_meta = new["metadata"], old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "namespace",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["name"] = old_meta["name"]
        if resource.has_status:
            new["status"] = copy.deepcopy(old.get("status"))
            if new["status"] is None:
                new.pop("status")
        if resource.kind == "Service" and not (new.get("spec") or {}).get("clusterIP"):
            new.setdefault("spec", {})["clusterIP"] = old["spec"].get("clusterIP")  # patchAllocatedValues
            new["spec"]["clusterIPs"] = old["spec"].get("clusterIPs")
        decode_typed(resource, new)
        apply_defaults(new)
        validate(resource, new, old)
        if resource.kind in GENERATION_KINDS and new.get("spec") != old.get("spec"):
            meta["generation"] = old_meta.get("generation", 1) + 1
        return new

    def mutate(self, resource: Resource, namespace: str, name: str, change, subresource: str = "") -> dict | None:
        """Read-modify-write under the lock (controllers and PATCH): ``change(obj)`` edits a copy in place."""
        with self.cond:
            current = self.objects.get((resource.plural, namespace if resource.namespaced else "", name))
            if current is None:
                return None
            edited = copy.deepcopy(current)
            change(edited)
            edited["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.update(resource, namespace, name, edited, subresource)

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        policy: str = "Background",
        preconditions: dict | None = None,
        dry_run: bool = False,
        grace: int | None = None,
    ) -> tuple[dict, bool]:
        """(object, gone): ``gone`` is False when finalizers keep it, or a Pod terminates gracefully (with
        deletionTimestamp set); ``grace`` is the request's gracePeriodSeconds (Pods only)."""
        with self.cond:
            old = self.objects.get((resource.plural, namespace if resource.namespaced else "", name))
            if old is None:
                raise errors.not_found(resource, name)
            wanted = (preconditions or {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name)
            obj = copy.deepcopy(old)
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)
            if resource.kind == "Namespace":
                extra = "kubernetes"
                obj.setdefault("status", {})["phase"] = "Terminating"
            if extra and extra not in finalizers:
                finalizers.append(extra)
            if resource.kind == "Pod" and not finalizers:
                return self._delete_pod(obj, grace, dry_run)
            if dry_run:
                return obj, not finalizers
            if finalizers:
                if meta.get("deletionTimestamp"):
                    return obj, False
                meta.update(finalizers=finalizers, deletionTimestamp=now_iso(), deletionGracePeriodSeconds=0)
                return self._commit("MODIFIED", resource, obj), False
            return self._commit("DELETED", resource, obj), True

    def _delete_pod(self, pod: dict, grace: int | None, dry_run: bool) -> tuple[dict, bool]:
        meta = pod["metadata"]
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if not dry_run:
            now = time.monotonic()
            self.terminating.setdefault(meta["uid"], (now, copy.deepcopy(pod)))
            for uid in [u for u, (since, _) in self.terminating.items() if now - since > 60]:
                del self.terminating[uid]
        if grace <= 0:
            return (self._commit("DELETED", resource_of(pod), pod), True) if not dry_run else (pod, True)
        if meta.get("deletionTimestamp") or dry_run:  # already going: a longer grace changes nothing
            return pod, False
        stamp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=grace)
        meta.update(deletionTimestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), deletionGracePeriodSeconds=grace)
        return self._commit("MODIFIED", resource_of(pod), pod), False

    def remove_finalizer(self, resource: Resource, namespace: str, name: str, finalizer: str) -> None:
        def drop(obj):
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]

        self.mutate(resource, namespace, name, drop)

    # -- watch -------------------------------------------------------------------------------------------
    def watch(self, resource: Resource, namespace: str | None, since: str | None, match, timeout: float):
        """Yield (type, object) after ``since`` until ``timeout`` seconds pass or the store closes."""
        deadline = time.monotonic() + timeout
        with self.cond:
            if not since or since == "0":
                items, _ = self.list(resource, namespace, match)
                pending, cursor = [("ADDED", o) for o in items], self.revision
            else:
                cursor = int(since) if since.isdigit() else -1
                oldest = self.changes[0][0] if self.changes else self.revision + 1
                if cursor < oldest - 1 and cursor < self.revision:
                    yield "ERROR", errors.gone(since, oldest)
                    return
                pending = []
        while True:
            yield from pending
            with self.cond:
                while not self.closed and time.monotonic() < deadline and self.revision <= cursor:
                    self.cond.wait(max(0.0, min(1.0, deadline - time.monotonic())))
                if self.closed or self.revision <= cursor:
                    return
                news = [c for c in self.changes if c[0] > cursor]
                cursor = self.revision
            pending = [
                (seen, copy.deepcopy(obj))
                for _, kind, plural, ns, obj, before in news
                if plural == resource.plural and (namespace is None or ns == namespace)
                for seen in [_as_seen(kind, obj, before, match)]
                if seen
            ]

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _as_seen(kind: str, obj: dict, before: dict | None, match) -> str | None:
    """The event a selector-filtered watch reports: an object entering the selection is ADDED, one leaving it
    DELETED (as the real watch cache does), others as they are; None when the watcher never sees it."""
    if match is None or kind != "MODIFIED":
        return kind if match is None or match(obj) else None
    now, then = match(obj), before is not None and match(before)
    return {(True, True): "MODIFIED", (True, False): "ADDED", (False, True): "DELETED"}.get((now, then))


def resource_of(obj: dict) -> Resource:
    return BY_KIND[obj["kind"]]
