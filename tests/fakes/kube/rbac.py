"""RBAC as the API server's authorizer decides it: a request is denied unless a bound rule grants it.

``Rbac(objects, superusers)`` takes Role, ClusterRole, RoleBinding and ClusterRoleBinding objects (as
``kubectl apply`` would create them; ``load`` replaces them while the server runs). A request by user U
for verb V on resource R (``plural`` or ``plural/subresource``) in API group G, namespace N, name X is
allowed when U is a superuser (as the ``system:masters`` group is) or a rule matches, from

* a RoleBinding in N whose subjects include U, through its roleRef (a Role in N, or a ClusterRole), or
* a ClusterRoleBinding whose subjects include U, through its ClusterRole (in every namespace);

a rule matches when its ``verbs``, ``apiGroups`` and ``resources`` contain V, G and R (or ``*``; a
resource ``*/sub`` matches every ``sub`` subresource), and its ``resourceNames``, if any, contain X.
Subjects are ``User`` names and ``ServiceAccount`` {namespace, name}, authenticated as
``system:serviceaccount:<namespace>:<name>``. Discovery (/api, /apis, /version, /healthz) stays open to
every authenticated user, as the ``system:discovery`` ClusterRole makes it. Denials are the real 403
(status.py ``forbidden``: ``... is forbidden: User "U" cannot V resource "R" in API group "G" in the
namespace "N"``). Not modelled: Groups other than superusers, nonResourceURLs, aggregated ClusterRoles,
the escalation checks on writing RBAC objects (they are not served: they come from the test).
"""

from __future__ import annotations

import threading

from .routes import Route


def user_of(subject: dict, binding_namespace: str) -> str | None:
    """The user name a RoleBinding subject stands for (None for groups)."""
    if subject.get("kind") == "User":
        return subject.get("name")
    if subject.get("kind") == "ServiceAccount":
        return f"system:serviceaccount:{subject.get('namespace') or binding_namespace}:{subject.get('name')}"
    return None


def rule_allows(rule: dict, verb: str, group: str, resource: str, subresource: str, name: str | None) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    resources = rule.get("resources") or []
    return (
        any(v in ("*", verb) for v in rule.get("verbs") or [])
        and any(g in ("*", group) for g in rule.get("apiGroups") or [])
        and any(r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in resources)
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
    )


class Rbac:
    def __init__(self, objects=(), superusers=()):
        self.superusers = set(superusers)
        self._lock = threading.Lock()
        self.load(objects)

    def load(self, objects) -> None:
        """Replace every Role, ClusterRole and binding with ``objects``."""
        by_kind: dict[str, list[dict]] = {}
        for obj in objects:
            by_kind.setdefault(obj["kind"], []).append(obj)
        with self._lock:
            self.roles = {(r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in by_kind.get("Role", [])}
            self.cluster_roles = {r["metadata"]["name"]: r for r in by_kind.get("ClusterRole", [])}
            self.bindings = by_kind.get("RoleBinding", []) + by_kind.get("ClusterRoleBinding", [])

    def _rules(self, user: str, namespace: str | None) -> list[dict]:
        rules = []
        for binding in self.bindings:
            meta, ref = binding["metadata"], binding.get("roleRef") or {}
            scoped = binding["kind"] == "RoleBinding"
            if scoped and meta.get("namespace") != namespace:
                continue
            if user not in {user_of(s, meta.get("namespace")) for s in binding.get("subjects") or []}:
                continue
            if ref.get("kind") == "Role" and scoped:
                role = self.roles.get((meta.get("namespace"), ref.get("name")))
            else:
                role = self.cluster_roles.get(ref.get("name")) if ref.get("kind") == "ClusterRole" else None
            rules.extend((role or {}).get("rules") or [])
        return rules

    def allows(self, user: str, verb: str, route: Route) -> bool:
        if user in self.superusers:
            return True
        with self._lock:
            rules = self._rules(user, route.namespace)
        return any(
            rule_allows(rule, verb, route.resource.group, route.resource.plural, route.subresource, route.name)
            for rule in rules
        )
