"""Recording core/v1 Events like the real components do: one Event per (object, reason, message), counted up.

A repeated event is the same object with ``count`` incremented and ``lastTimestamp`` moved (the real event
recorder aggregates the same way), so ``list_namespaced_event(field_selector="involvedObject.name=X")`` shows
what happened to X. Reasons used by the fake: ScalingReplicaSet (deployment controller),
SuccessfulCreate/SuccessfulDelete (replicaset controller), Scheduled/Pulling/Pulled/Created/Started, BackOff,
Unhealthy, Killing, Failed (kubelet).
"""

from __future__ import annotations

import hashlib

from .resources import BY_KIND
from .store import Store, now_iso

EVENTS = BY_KIND["Event"]


def record(store: Store, obj: dict, kind: str, reason: str, message: str, component: str) -> None:
    """Record (or count up) an event about ``obj``; ``kind`` is Normal or Warning."""
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    key = hashlib.sha256(f"{meta.get('uid')}|{reason}|{message}".encode()).hexdigest()[:16]
    name = f"{meta['name']}.{key}"
    stamp = now_iso()

    def count_up(event):
        event["count"] = event.get("count", 1) + 1
        event["lastTimestamp"] = stamp

    with store.cond:
        if store.closed:
            return
        if store.mutate(EVENTS, namespace, name, count_up) is not None:
            return
        involved = {
            "kind": obj["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if obj["kind"] == "Pod":
            involved["fieldPath"] = f"spec.containers{{{obj['spec']['containers'][0]['name']}}}"
        event = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
        }
        try:
            store.create(EVENTS, namespace, event)
        except Exception:  # a namespace being deleted: the real recorder drops the event too
            pass
