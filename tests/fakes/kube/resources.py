"""The resource types the fake serves (group, version, kind, scope, subresources) and their discovery.

Served: v1 namespaces, pods (+log, +proxy, +eviction), services (+proxy), events, configmaps, secrets,
resourcequotas (+status); apps/v1 deployments (+status, +scale), replicasets (+status, +scale);
autoscaling/v2 horizontalpodautoscalers (+status); policy/v1 poddisruptionbudgets (+status);
networking.k8s.io/v1 networkpolicies, ingresses (+status); apiextensions.k8s.io/v1 customresourcedefinitions, and
the resources of the CRDs stored (crds.py). Discovery answers the legacy (non-aggregated) documents /api,
/api/v1, /apis, /apis/<group>/<version>, which kubectl and the official client accept.
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple = ()
    subresources: tuple = ()
    has_status: bool = True  # status is written only through /status (and by the fake's controllers)
    schema: str | None = None  # a custom resource's openAPIV3Schema, as JSON (crds.py)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: how the server names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status",)),
    Resource("", "v1", "pods", "Pod", short_names=("po",), subresources=("status", "log", "proxy", "eviction")),
    Resource("", "v1", "services", "Service", short_names=("svc",), subresources=("status", "proxy")),
    Resource("", "v1", "events", "Event", short_names=("ev",), has_status=False),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",), has_status=False),
    Resource("", "v1", "secrets", "Secret", has_status=False),
    Resource("", "v1", "resourcequotas", "ResourceQuota", short_names=("quota",), subresources=("status",)),
    Resource("apps", "v1", "deployments", "Deployment", short_names=("deploy",), subresources=("status", "scale")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), subresources=("status", "scale")),
    Resource(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        subresources=("status",),
    ),
    Resource(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=("pdb",),
        subresources=("status",),
    ),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",), has_status=False),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), subresources=("status",)),
    Resource(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd",),
        subresources=("status",),
    ),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {r.kind: r for r in RESOURCES}
GROUPS = {"apps": "v1", "autoscaling": "v2", "policy": "v1", "networking.k8s.io": "v1", "apiextensions.k8s.io": "v1"}
GENERATION_KINDS = {
    "Deployment",
    "ReplicaSet",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Pod",
    "NetworkPolicy",
    "Ingress",
}


def resource_list(group: str, version: str, custom: dict | None = None) -> dict | None:
    """The APIResourceList of one group version, or None when the fake does not serve it (``custom``: the
    resources stored CRDs serve, crds.served)."""
    served = [r for r in [*RESOURCES, *(custom or {}).values()] if (r.group, r.version) == (group, version)]
    if not served:
        return None
    entries = []
    for r in served:
        entries.append(
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
                "shortNames": list(r.short_names),
            }
        )
        for sub in r.subresources:
            verbs = {
                "log": ["get"],
                "proxy": ["create", "delete", "get", "patch", "update"],
                "eviction": ["create"],
            }.get(sub, ["get", "patch", "update"])
            kind = {"scale": "Scale", "log": "Pod", "proxy": "PodProxyOptions", "eviction": "Eviction"}.get(sub, r.kind)
            gv = {
                "scale": {"group": "autoscaling", "version": "v1"},
                "eviction": {"group": "policy", "version": "v1"},
            }.get(sub, {})
            entries.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                    **gv,
                }
            )
    api_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": entries}


def api_versions(address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _groups(custom: dict | None) -> dict[str, str]:
    return {**GROUPS, **{group: version for group, version, _ in custom or {}}}


def api_group_list(custom: dict | None = None) -> dict:
    groups = []
    for name, version in _groups(custom).items():
        gv = {"groupVersion": f"{name}/{version}", "version": version}
        groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str, custom: dict | None = None) -> dict | None:
    groups = _groups(custom)
    if name not in groups:
        return None
    gv = {"groupVersion": f"{name}/{groups[name]}", "version": groups[name]}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [gv], "preferredVersion": gv}


def version_info() -> dict:
    return {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-vci-fake",
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
