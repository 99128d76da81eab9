"""The Kubernetes API as vci uses it: objects as dicts, server-side apply as field manager ``vci``, errors mapped.

Every write is a server-side apply (``application/apply-patch+yaml``, ``fieldManager=vci``), so fields that
other tools set (a mesh's annotations, a platform team's tolerations, an HPA's replica count) stay theirs
and survive a release; a field vci sets that another manager changed is reported and taken back. A dry-run
apply first lets the server validate every object before any is written, and tells whether anything
would change: a second identical deploy writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re

from ..errors import AuthError, ConfigError, ConflictError, DeployError, NotFoundError
from ..redact import mask_url

log = logging.getLogger("vci")
FIELD_MANAGER = "vci"

# kind -> (api class, read, create, replace, delete) method suffixes of the official client
KINDS = {
    "Deployment": ("AppsV1Api", "namespaced_deployment"),
    "Service": ("CoreV1Api", "namespaced_service"),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "namespaced_horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("PolicyV1Api", "namespaced_pod_disruption_budget"),
    "NetworkPolicy": ("NetworkingV1Api", "namespaced_network_policy"),
    "Ingress": ("NetworkingV1Api", "namespaced_ingress"),
}
# custom resources (an operator's CRD), through CustomObjectsApi: kind -> (group, version, plural)
CUSTOM_KINDS = {"ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors")}
CUSTOM_VERBS = {"read": "get", "list": "list", "delete": "delete", "patch": "patch"}


def api_error(exc, what: str) -> Exception:
    """Map a kubernetes ApiException to the vci error tree with the server's own message."""
    status = getattr(exc, "status", None)
    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = getattr(exc, "reason", None) or str(exc)
    return status_error(status, message, what)


def status_error(status: int | None, message: str, what: str) -> Exception:
    """The vci error for an API server answer ``status`` with its Status ``message``."""
    if status == 401:
        return AuthError(
            f"the cluster rejected the credentials for {what}: {message}",
            hint="check the kubeconfig user or token (KUBECONFIG, environments.<env>.context)",
        )
    if status == 403:
        return AuthError(f"forbidden: {what}: {message}", hint=forbidden_hint(message))
    if status == 404:
        return NotFoundError(f"{what}: {message}")
    if status == 409:
        return ConflictError(f"{what}: {message}")
    if status == 422:
        return DeployError(f"the cluster refused {what} as invalid: {message}")
    return DeployError(f"{what} failed ({status}): {message}")


_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" in API group '
    r'"(?P<group>[^"]*)"(?: in the namespace "(?P<namespace>[^"]+)")?'
)


def forbidden_hint(message: str) -> str:
    """What to grant, read from the API server's Forbidden message (the RBAC authorizer's wording:
    ``deployments.apps "x" is forbidden: User "u" cannot patch resource "deployments" in API group "apps"
    in the namespace "n"``)."""
    match = _FORBIDDEN.search(message or "")
    if not match:
        return "the kubeconfig's user lacks a right vci needs here: `vci render --rbac` prints the Role vci needs"
    group = f' (API group "{match["group"]}")' if match["group"] else " (core API group)"
    where = f" in namespace {match['namespace']}" if match["namespace"] else " cluster-wide"
    return (
        f'grant {match["user"]} "{match["verb"]}" on "{match["resource"]}"{group}{where}: '
        "`vci render --rbac --env ENV` prints the Role vci needs"
    )


def load_api_client(environment):
    """An ApiClient from the environment's kubeconfig/context, else KUBECONFIG/~/.kube/config, else in-cluster."""
    from kubernetes import client, config

    path = environment.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    context = environment.context
    if os.path.isfile(path):
        try:
            return config.new_client_from_config(config_file=path, context=context)
        except config.ConfigException as exc:
            raise ConfigError(f"kubeconfig {path}: {exc}", hint="check the context name and the file") from exc
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    raise ConfigError(
        f"no kubeconfig at {path} and not running in a cluster",
        hint=f"set KUBECONFIG or environments.{environment.name}.kubeconfig",
    )


def unreachable(host: str, exc: Exception) -> DeployError:
    """The API server did not answer: a one-line error naming it, not urllib3's retry chain."""
    reason = getattr(exc, "reason", None) or exc
    return DeployError(
        f"cannot reach the Kubernetes API server {mask_url(host)}: {type(reason).__name__}",
        hint="check the kubeconfig's server address and that the cluster is reachable (kubectl cluster-info)",
    )


class Cluster:
    """Thin typed access to the objects vci manages, as plain dicts; every write is a server-side apply."""

    def __init__(self, api_client):
        from kubernetes import client

        self.api_client = api_client
        self.apis = {name: getattr(client, name)(api_client) for name, _ in KINDS.values()}
        self.custom = client.CustomObjectsApi(api_client)
        self.core = self.apis["CoreV1Api"]
        self.apps = self.apis["AppsV1Api"]

    def _call(self, verb: str, kind: str, what: str, *args, **kwargs):
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            if kind in CUSTOM_KINDS:
                return self._custom_call(verb, kind, *args, **kwargs)
            api, suffix = KINDS[kind]
            return getattr(self.apis[api], f"{verb}_{suffix}")(*args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, f"{verb} {kind} {what}") from exc
        except HTTPError as exc:  # no answer at all: refused, timed out, TLS failed (urllib3 gave up)
            raise unreachable(self.api_client.configuration.host, exc) from exc

    def _custom_call(self, verb: str, kind: str, *args, **kwargs):
        """The CustomObjectsApi call for the typed one ``verb``: (group, version, namespace, plural) first, the
        name (and body) after, where the typed methods take (name, namespace[, body])."""
        group, version, plural = CUSTOM_KINDS[kind]
        method = getattr(self.custom, f"{CUSTOM_VERBS[verb]}_namespaced_custom_object")
        if verb == "list":
            return method(group, version, args[0], plural, **kwargs)
        name, namespace, *body = args
        if verb != "patch":
            return method(group, version, namespace, plural, name, *body, **kwargs)
        # the client maps only a 200 answer to an object: an apply that creates answers 201, read it raw
        answer = method(group, version, namespace, plural, name, *body, _preload_content=False, **kwargs)
        return json.loads(answer.data)

    def serves(self, kind: str) -> bool:
        """Whether the cluster serves custom ``kind`` (its CRD is installed): its group version's discovery."""
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        group, version, plural = CUSTOM_KINDS[kind]
        try:
            found = self.api_client.call_api(
                f"/apis/{group}/{version}", "GET", header_params={"Accept": "application/json"},
                response_types_map={200: "object"}, auth_settings=["BearerToken"], _return_http_data_only=True,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise api_error(exc, f"discovery of {group}/{version}") from exc
        except HTTPError as exc:
            raise unreachable(self.api_client.configuration.host, exc) from exc
        return any(r.get("name") == plural for r in (found or {}).get("resources") or [])

    def read(self, kind: str, name: str, namespace: str) -> dict | None:
        try:
            obj = self._call("read", kind, f"{namespace}/{name}", name, namespace)
        except NotFoundError:
            return None
        return self.api_client.sanitize_for_serialization(obj)

    def list(self, kind: str, namespace: str, selector: dict[str, str]) -> list[dict]:
        """The objects of ``kind`` in ``namespace`` whose labels include ``selector``."""
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        found = self._call("list", kind, f"in {namespace} ({labels})", namespace, label_selector=labels)
        items = found["items"] if isinstance(found, dict) else found.items  # custom objects come as dicts
        return [self.api_client.sanitize_for_serialization(item) for item in items]

    def delete(self, kind: str, name: str, namespace: str, *, dry_run: bool = False) -> bool:
        """Delete one object; False when there was none. ``dry_run``: the server checks, deletes nothing."""
        options = {"propagation_policy": "Background", **({"dry_run": "All"} if dry_run else {})}
        try:
            self._call("delete", kind, f"{namespace}/{name}", name, namespace, **options)
        except NotFoundError:
            return False
        return True

    def server_apply(self, obj: dict, *, dry_run: bool = False, force: bool = False) -> dict:
        """One server-side apply as field manager ``vci``: the object as the server has (or would have) it."""
        meta = obj["metadata"]
        options: dict[str, object] = {"field_manager": FIELD_MANAGER, "_content_type": "application/apply-patch+yaml"}
        options.update({"force": True} if force else {}, **({"dry_run": "All"} if dry_run else {}))
        applied = self._call(
            "patch", obj["kind"], f"{meta['namespace']}/{meta['name']}", meta["name"], meta["namespace"], obj, **options
        )
        return self.api_client.sanitize_for_serialization(applied)

    def apply(self, desired: dict, live: dict | None = None) -> str:
        """Apply one object; ``created``, ``updated`` or ``unchanged`` (nothing vci compares would change).

        Fields vci does not set stay with their owners. On a conflict (a field vci sets was last set by
        another manager to another value) vci reads afresh, says so, and takes the field over."""
        meta = desired["metadata"]
        live = live or self.read(desired["kind"], meta["name"], meta["namespace"])
        if live is not None and self.planned(desired, live) is None:
            return "unchanged"
        try:
            result = self.server_apply(with_live_replicas(desired, live))
        except ConflictError as exc:
            log.warning("%s; vci sets these fields and takes them over", exc)
            live = self.read(desired["kind"], meta["name"], meta["namespace"])
            result = self.server_apply(with_live_replicas(desired, live), force=True)
        same = live is not None and _version(result) == _version(live)
        return "created" if live is None else "unchanged" if same else "updated"

    def planned(self, desired: dict, live: dict | None) -> dict | None:
        """The object as a dry-run apply would leave it, or None when that changes nothing vci compares.

        The server validates (and admits) the object as it would a real write, so a refusal comes before
        anything is written. A controller may write the object between vci's read and the dry run (the
        Deployment controller's revision annotation, just after a create); the dry run is then compared
        with the object it was run on, read afresh, not with the older copy."""
        meta = desired["metadata"]
        for attempt in range(4):
            after = self.server_apply(with_live_replicas(desired, live), dry_run=True, force=True)
            if live is None or _version(after) == _version(live) or attempt == 3:
                break
            live = self.read(desired["kind"], meta["name"], meta["namespace"])
        return None if live is not None and _comparable(after) == _comparable(live) else after


def with_live_replicas(desired: dict, live: dict | None) -> dict:
    """A Deployment rendered without ``replicas`` (its HPA owns them), applied with the live count.

    Left out of an apply, a count vci owned would be removed and the API server would default it to 1,
    killing all pods but one of a scaled-out environment until the HPA scales it back up; sent with the
    live value, vci shares the field with the HPA, which keeps changing it."""
    if desired["kind"] != "Deployment" or "replicas" in desired["spec"] or not live:
        return desired
    if "replicas" not in (live.get("spec") or {}):
        return desired
    return {**desired, "spec": {**desired["spec"], "replicas": live["spec"]["replicas"]}}


def _version(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


def _comparable(obj: dict) -> dict:
    """What decides whether an update is needed: labels, annotations but the release id, and the spec."""
    meta = obj.get("metadata") or {}
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k != "vci.dev/release-id"}
    return {"metadata": {"labels": meta.get("labels") or {}, "annotations": notes}, "spec": obj.get("spec")}
