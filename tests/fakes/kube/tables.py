"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for (``Accept: ...;as=Table``) on get/list.

Columns follow the real server's for the kinds a deployer looks at: deployments (Name, Ready, Up-to-date,
Available, Age), replicasets (Name, Desired, Current, Ready, Age), pods (Name, Ready, Status, Restarts, Age),
services (Name, Type, Cluster-IP, External-IP, Port(s), Age), namespaces (Name, Status, Age), events (Name,
Type, Reason, Object, Message, Age), networkpolicies (Name, Pod-Selector, Age); anything else gets Name and
Age. Each row carries the object's metadata (PartialObjectMetadata), as kubectl expects.
"""

from __future__ import annotations

import datetime


def _age(meta: dict) -> str:
    created = meta.get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_cells(pod: dict) -> list:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = (pod.get("status") or {}).get("phase") or "Pending"
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    return [f"{ready}/{len(pod['spec']['containers'])}", reason, restarts]


def _service_cells(service: dict) -> list:
    spec = service.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", "<none>", ports or "<none>"]


def _involved(event: dict) -> str:
    involved = event.get("involvedObject") or {}
    return f"{involved.get('kind', '').lower()}/{involved.get('name')}"


def _pod_selector(policy: dict) -> str:
    labels = ((policy.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


COLUMNS = {
    "Deployment": (
        ["Ready", "Up-to-date", "Available"],
        lambda d: [
            f"{(d.get('status') or {}).get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
            (d.get("status") or {}).get("updatedReplicas", 0),
            (d.get("status") or {}).get("availableReplicas", 0),
        ],
    ),
    "ReplicaSet": (
        ["Desired", "Current", "Ready"],
        lambda r: [
            r["spec"].get("replicas", 1),
            (r.get("status") or {}).get("replicas", 0),
            (r.get("status") or {}).get("readyReplicas", 0),
        ],
    ),
    "Pod": (["Ready", "Status", "Restarts"], _pod_cells),
    "Service": (["Type", "Cluster-IP", "External-IP", "Port(s)"], _service_cells),
    "NetworkPolicy": (["Pod-Selector"], lambda p: [_pod_selector(p)]),
    "Namespace": (["Status"], lambda n: [(n.get("status") or {}).get("phase", "Active")]),
    "Event": (
        ["Type", "Reason", "Object", "Message"],
        lambda e: [e.get("type", ""), e.get("reason", ""), _involved(e), e.get("message", "")],
    ),
}


def wants_table(accept: str | None) -> bool:
    return bool(accept) and "as=Table" in accept.split(",")[0]


def to_table(resource, objects: list[dict], resource_version: str) -> dict:
    """A Table of ``objects`` (full objects, kind set or not) for kubectl's human-readable output."""
    names, cells = COLUMNS.get(resource.kind, ([], lambda _obj: []))
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    columns += [{"name": n, "type": "string", "format": "", "description": n, "priority": 0} for n in names]
    columns.append({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})
    rows = [
        {
            "cells": [o["metadata"]["name"], *cells(o), _age(o["metadata"])],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            },
        }
        for o in objects
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
