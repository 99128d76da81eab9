"""Server-side defaults the real API server fills in, so reads return what a real cluster returns.

Deployments: replicas 1, strategy RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600.
Pod specs (pods and templates): restartPolicy Always, dnsPolicy ClusterFirst, terminationGracePeriodSeconds
30, schedulerName default-scheduler, securityContext {}; containers: terminationMessagePath/Policy,
imagePullPolicy (Always for ``:latest`` or untagged images, else IfNotPresent), port protocol TCP, probe
timeouts/periods/ thresholds and httpGet scheme HTTP. Services: type ClusterIP, a clusterIP from 10.96.0.0/16,
port protocol TCP, targetPort = port, sessionAffinity None. Namespaces: spec.finalizers [kubernetes],
status.phase Active, the label kubernetes.io/metadata.name (what namespaceSelectors select by name).
NetworkPolicies: see networkpolicy.py; Ingresses: ingress.py.
"""

from __future__ import annotations

import itertools

from . import ingress, networkpolicy

_cluster_ips = itertools.count(10)

PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def _container(container: dict) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _pull_policy(container.get("image") or ""))
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(key)
        if probe:
            for field, value in PROBE.items():
                probe.setdefault(field, value)
            if "httpGet" in probe:
                probe["httpGet"].setdefault("scheme", "HTTP")


def pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        _container(container)


def _workload(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec(template.setdefault("spec", {}))
    if obj["kind"] == "Deployment":
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)


def _service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        number = next(_cluster_ips)
        spec["clusterIP"] = f"10.96.{number // 250}.{number % 250 + 1}"
    if spec.get("clusterIP"):
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def apply_defaults(obj: dict) -> None:
    """Fill in the real server's defaults for ``obj`` in place."""
    kind = obj.get("kind")
    if kind in ("Deployment", "ReplicaSet"):
        _workload(obj)
    elif kind == "Pod":
        pod_spec(obj.setdefault("spec", {}))
    elif kind == "Service":
        _service(obj)
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        meta = obj.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta.get("name", "")}
        obj["status"] = {"phase": obj.get("status", {}).get("phase", "Active")}
    elif kind == "NetworkPolicy":
        networkpolicy.apply_defaults(obj)
    elif kind == "Ingress":
        ingress.apply_defaults(obj)
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
