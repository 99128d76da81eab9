"""Parsing API paths into (resource, namespace, name, subresource) and deny rules (who may not, 403).

Paths: ``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` for the others; then
``<plural>[/<name>[/<subresource>[/<rest>]]]`` for cluster-wide lists and cluster-scoped objects, or
``namespaces/<ns>/<plural>[/<name>[/<subresource>[/<rest>]]]``. The verb is the RBAC verb the real server
derives: get/list/watch (GET, ``?watch=1``), create (POST), update (PUT), patch (PATCH), delete (DELETE);
proxy requests use the HTTP method's verb on ``services/proxy`` or ``pods/proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from .resources import BY_PATH, Resource


@dataclass
class Route:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str = ""
    rest: str = ""  # what follows proxy/ (the forwarded path)


def parse_route(path: str, custom: dict | None = None) -> Route | None:
    """The route of an API path; ``custom``: the resources stored CRDs serve (crds.served)."""
    served = {**BY_PATH, **(custom or {})}
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, tail = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, tail = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(tail) >= 3 and tail[0] == "namespaces" and (group, version, tail[2]) in served:
        namespace, tail = tail[1], tail[2:]
    if not tail or (group, version, tail[0]) not in served:
        return None
    resource = served[(group, version, tail[0])]
    if resource.namespaced is False and namespace is not None:
        return None
    name = tail[1] if len(tail) > 1 else None
    sub = tail[2] if len(tail) > 2 else ""
    if sub and sub not in resource.subresources:
        return None
    if len(tail) > 3 and sub != "proxy":
        return None
    rest = "/".join(path.strip("/").split("/")[len(parts) - len(tail) + 3 :]) if sub == "proxy" else ""
    if path.endswith("/") and rest:
        rest += "/"
    return Route(resource, namespace, name, sub, rest)


def rbac_verb(method: str, route: Route, watch: bool) -> str:
    if route.subresource == "proxy":
        return {
            "GET": "get",
            "HEAD": "get",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method, "get")
    if method in ("GET", "HEAD"):
        return "watch" if watch else ("get" if route.name else "list")
    if method == "DELETE" and not route.name:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


@dataclass(frozen=True)
class Forbid:
    """A deny rule: matching requests get 403 Forbidden. ``*`` (or None for namespace/user) matches anything.

    ``resource`` may name a subresource (``deployments/scale``, ``services/proxy``, ``pods/log``).
    """

    verb: str = "*"
    resource: str = "*"
    namespace: str | None = None
    user: str | None = None

    def matches(self, user: str, verb: str, route: Route) -> bool:
        what = route.resource.plural + (f"/{route.subresource}" if route.subresource else "")
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", what)
            and (self.namespace is None or self.namespace == route.namespace)
            and (self.user is None or self.user == user)
        )
