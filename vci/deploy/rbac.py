"""The least access vci needs in an environment's namespace, rendered as a Role and a RoleBinding (pure).

Each rule names what uses it; the end-to-end test on the API test server runs deploy, status, predict,
a canary promotion, rollback and undeploy with exactly this Role and nothing else allowed, so a call vci
starts to make without a rule here fails that test with the Forbidden hint naming the verb::

    vci render --rbac --env production --service-account ci/vci-deployer | kubectl apply -f -
"""

from __future__ import annotations

import re

from ..errors import UsageError

ROLE_NAME = "vci-deployer"
WRITE = ["get", "create", "patch", "delete"]  # server-side apply: patch, and create when it creates
RULES = (  # (API group, resource, verbs, what needs it)
    ("apps", "deployments", [*WRITE, "watch"], "the stable and canary Deployments; watch: rollout status"),
    ("", "services", WRITE, "the Service in front of stable and canary pods; a shadow's own"),
    ("", "configmaps", WRITE, "a shadow's mirror config, which the stable pods mount"),
    ("autoscaling", "horizontalpodautoscalers", [*WRITE, "list"], "autoscaling; list: pruning one no longer rendered"),
    ("policy", "poddisruptionbudgets", [*WRITE, "list"], "more than one replica; list: pruning one no longer rendered"),
    (
        "networking.k8s.io",
        "networkpolicies",
        [*WRITE, "list"],
        "ingress to the model pods from the namespace (or what network_policy names); list: pruning",
    ),
    ("networking.k8s.io", "ingresses", [*WRITE, "list"], "the environment's ingress (host, path, TLS); list: pruning"),
    (
        "monitoring.coreos.com",
        "servicemonitors",
        [*WRITE, "list"],
        "service_monitor (Prometheus Operator); list: pruning",
    ),
    ("", "pods", ["list"], "diagnosing a failed rollout; finding the canary's pods"),
    ("", "pods/log", ["get"], "a failed rollout's last log lines"),
    ("", "events", ["list"], "a failed rollout's warning events"),
    ("", "services/proxy", ["get", "create"], "vci predict, vci test and the smoke test (GET, POST)"),
    ("", "pods/proxy", ["get", "create"], "pods' /metrics (canary, stable); a blue-green candidate's smoke test"),
)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def role(namespace: str, name: str = ROLE_NAME) -> dict:
    """The Role granting ``RULES`` in ``namespace``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "vci"}},
        "rules": [
            {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)} for group, resource, verbs, _ in RULES
        ],
    }


def subject(service_account: str | None, user: str | None, namespace: str) -> dict:
    """A RoleBinding subject: ``[NAMESPACE/]NAME`` of a ServiceAccount (default: the Role's namespace),
    or a user name as the cluster authenticates it."""
    if bool(service_account) == bool(user):
        raise UsageError(
            "name who gets the Role: --service-account [NAMESPACE/]NAME or --user NAME",
            hint="e.g. vci render --rbac --env production --service-account ci/vci-deployer",
        )
    if user:
        return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}
    assert service_account is not None  # exactly one of the two was given (checked above)
    sa_namespace, _, name = service_account.rpartition("/")
    for part in (sa_namespace or namespace, name):
        if len(part) > 253 or not _NAME.match(part):
            raise UsageError(
                f"invalid service account {service_account!r}",
                hint="[NAMESPACE/]NAME, lower-case letters, digits, '-' and '.'",
            )
    return {"kind": "ServiceAccount", "name": name, "namespace": sa_namespace or namespace}


def render_rbac(namespace: str, who: dict, name: str = ROLE_NAME) -> list[dict]:
    """``[Role, RoleBinding]`` giving ``who`` (a subject) what vci needs in ``namespace``."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "vci"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [who],
    }
    return [role(namespace, name), binding]
