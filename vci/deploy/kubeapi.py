"""The Kubernetes API as vci uses it: objects as dicts, create-or-replace with resourceVersion, errors mapped.

Writes are read-modify-replace with the live ``resourceVersion``: a 409 Conflict is retried from a
fresh read, never overwritten blindly. An object whose live state already holds everything vci would
send is left alone, so a second identical deploy changes nothing.
"""

from __future__ import annotations

import copy
import logging
import os
import time

from ..errors import AuthError, ConfigError, ConflictError, DeployError, NotFoundError

log = logging.getLogger("vci")
CONFLICT_RETRIES = 5

# kind -> (api class, read, create, replace, delete) method suffixes of the official client
KINDS = {
    "Deployment": ("AppsV1Api", "namespaced_deployment"),
    "Service": ("CoreV1Api", "namespaced_service"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "namespaced_horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("PolicyV1Api", "namespaced_pod_disruption_budget"),
}


def api_error(exc, what: str) -> Exception:
    """Map a kubernetes ApiException to the vci error tree with the server's own message."""
    import json
    status = getattr(exc, "status", None)
    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = getattr(exc, "reason", None) or str(exc)
    if status == 401:
        return AuthError(f"the cluster rejected the credentials for {what}: {message}",
                         hint="check the kubeconfig user or token (KUBECONFIG, environments.<env>.context)")
    if status == 403:
        return AuthError(f"forbidden: {what}: {message}",
                         hint="the kubeconfig's user needs RBAC rights on deployments, services, hpa and pdb here")
    if status == 404:
        return NotFoundError(f"{what}: {message}")
    if status == 409:
        return ConflictError(f"{what}: {message}")
    if status == 422:
        return DeployError(f"the cluster refused {what} as invalid: {message}")
    return DeployError(f"{what} failed ({status}): {message}")


def load_api_client(environment):
    """An ApiClient from the environment's kubeconfig/context, else KUBECONFIG/~/.kube/config, else in-cluster."""
    from kubernetes import client, config
    path = environment.get("kubeconfig") or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    context = environment.get("context")
    if os.path.isfile(path):
        try:
            return config.new_client_from_config(config_file=path, context=context)
        except config.ConfigException as exc:
            raise ConfigError(f"kubeconfig {path}: {exc}", hint="check the context name and the file") from exc
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    raise ConfigError(f"no kubeconfig at {path} and not running in a cluster",
                      hint=f"set KUBECONFIG or environments.{environment.name}.kubeconfig")


def subset_equal(desired, live, *, quantities: bool = False) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (which has server defaults).

    Under ``resources`` the server stores quantities in canonical form ("0.5" becomes "500m"), so
    there they are compared by value."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            subset_equal(v, live.get(k), quantities=quantities or k == "resources") for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(
            subset_equal(d, lv, quantities=quantities) for d, lv in zip(desired, live))
    if desired == live:
        return True
    if quantities and isinstance(desired, (int, str)) and isinstance(live, (int, str)):
        return _quantity(desired) is not None and _quantity(desired) == _quantity(live)
    return isinstance(desired, (int, str)) and isinstance(live, (int, str)) and str(desired) == str(live)


def _quantity(value):
    from kubernetes.utils.quantity import parse_quantity
    try:
        return parse_quantity(value)
    except (ValueError, TypeError):
        return None


class Cluster:
    """Thin typed access to the objects vci manages, as plain dicts."""

    def __init__(self, api_client):
        from kubernetes import client
        self.api_client = api_client
        self.apis = {name: getattr(client, name)(api_client) for name, _ in KINDS.values()}
        self.core = self.apis["CoreV1Api"]
        self.apps = self.apis["AppsV1Api"]

    def _call(self, verb: str, kind: str, *args, **kwargs):
        from kubernetes.client.rest import ApiException
        api, suffix = KINDS[kind]
        try:
            return getattr(self.apis[api], f"{verb}_{suffix}")(*args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, f"{verb} {kind} {args[0] if args else ''}".strip()) from exc

    def read(self, kind: str, name: str, namespace: str) -> dict | None:
        try:
            obj = self._call("read", kind, name, namespace)
        except NotFoundError:
            return None
        return self.api_client.sanitize_for_serialization(obj)

    def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        return self.api_client.sanitize_for_serialization(self._call("create", obj["kind"], meta["namespace"], obj))

    def replace(self, obj: dict) -> dict:
        meta = obj["metadata"]
        return self.api_client.sanitize_for_serialization(
            self._call("replace", obj["kind"], meta["name"], meta["namespace"], obj))

    def delete(self, kind: str, name: str, namespace: str) -> bool:
        try:
            self._call("delete", kind, name, namespace, propagation_policy="Background")
        except NotFoundError:
            return False
        return True

    def apply(self, desired: dict) -> str:
        """Create or update one object; returns ``created``, ``updated`` or ``unchanged``."""
        meta = desired["metadata"]
        for _ in range(CONFLICT_RETRIES):
            live = self.read(desired["kind"], meta["name"], meta["namespace"])
            if live is None:
                self.create(desired)
                return "created"
            if subset_equal(_comparable(desired), _comparable(live)):
                return "unchanged"
            merged = copy.deepcopy(desired)
            merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            keep_fields_of_other_owners(merged, live)
            try:
                self.replace(merged)
                return "updated"
            except ConflictError:
                log.info("conflict writing %s %s; retrying from a fresh read", desired["kind"], meta["name"])
        raise ConflictError(f"{desired['kind']} {meta['name']} kept changing under vci ({CONFLICT_RETRIES} tries)",
                            hint="another controller or person is editing it; try again")


def keep_fields_of_other_owners(replacement: dict, live: dict) -> None:
    """Copy into a replacement what another owner set and vci leaves out: a PUT would reset it.

    A Service's cluster IP is the API server's; a Deployment rendered without ``replicas`` leaves them
    to its HorizontalPodAutoscaler, and the API server would default a missing count to 1, killing all
    pods but one of a scaled-out environment until the HPA scales it back up."""
    spec, live_spec = replacement["spec"], live.get("spec") or {}
    if replacement["kind"] == "Service":
        spec["clusterIP"] = live_spec.get("clusterIP")
    if replacement["kind"] == "Deployment" and "replicas" not in spec and "replicas" in live_spec:
        spec["replicas"] = live_spec["replicas"]


def _comparable(obj: dict) -> dict:
    """What decides whether an update is needed: labels, annotations but the release id, and the spec."""
    meta = obj.get("metadata") or {}
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k != "vci.dev/release-id"}
    return {"metadata": {"labels": meta.get("labels") or {}, "annotations": notes}, "spec": obj.get("spec")}
