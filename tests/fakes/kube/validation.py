"""The field validation the real API server does on what a deployer writes (422 Invalid), and decoding.

Decoding (400, like Go's typed JSON decoding): string-valued labels, annotations and env values, integer
replicas, resource quantities. Checked: object names (RFC 1123 subdomain; namespaces RFC 1123 labels; services
RFC 1035 labels), label keys and values, container names/images/env names/port names, resource quantities
(decoded first: a bad one is a 400, see quantity.py; requests above limits are a 422), Deployment/ReplicaSet
selectors (required, must match the template labels, immutable on update), rolling-update parameters, Service
ports and clusterIP immutability, PDB minAvailable/maxUnavailable exclusivity, HPA replica bounds,
NetworkPolicy and Ingress specs (networkpolicy.py, ingress.py: decoding and validation; names.py: DNS names).
Messages follow the real ones.
"""

from __future__ import annotations

import re

from . import crds, ingress, networkpolicy, quantity
from .names import LABEL, MSG_LABEL, SUBDOMAIN, bad_value, name_problems
from .selectors import selector_matches
from .status import invalid, undecodable

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
MSG_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def label_problems(labels: dict | None, field: str) -> list[tuple[str, str]]:
    problems = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if (prefix and not SUBDOMAIN.match(prefix)) or not name or len(name) > 63 or not LABEL_VALUE.match(name):
            problems.append(bad_value(field, key, "name part must consist of alphanumeric characters, '-', '_' or '.'"))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            why = "must be no more than 63 characters" if isinstance(value, str) and len(value) > 63 else MSG_VALUE
            problems.append(bad_value(field, value, why))
    return problems


def _json_type(value) -> str:
    names = {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "value")


def _string_map_problem(value, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        kind = _json_type(value)
        return f"json: cannot unmarshal {kind} into Go struct field {field} of type map[string]string"
    for item in value.values():
        if not isinstance(item, str):
            return f"json: cannot unmarshal {_json_type(item)} into Go struct field {field} of type string"
    return None


def decode_typed(resource, obj: dict) -> None:
    """The type checks of decoding into Go structs (400 BadRequest): string maps, env values, int replicas."""
    if obj.get("kind") == "NetworkPolicy":
        networkpolicy.decode(resource, obj)
    if obj.get("kind") == "Ingress":
        ingress.decode(resource, obj)
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    checks = [
        (m.get(k), f"ObjectMeta.metadata.{k}")
        for m in (obj.get("metadata") or {}, template)
        for k in ("labels", "annotations")
    ]
    checks += [
        (
            {e.get("name", ""): e.get("value") for e in c.get("env") or [] if "value" in e},
            "EnvVar.spec.template.spec.containers.env.value",
        )
        for c, _ in _containers(obj)
    ]
    for value, field in checks:
        problem = _string_map_problem(value, field)
        if problem:
            raise undecodable(resource, problem)
    replicas = (obj.get("spec") or {}).get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
        raise undecodable(
            resource,
            f"json: cannot unmarshal {_json_type(replicas)} into Go struct field "
            f"{resource.kind}Spec.spec.replicas of type int32",
        )
    decode_quantities(resource, obj)


def decode_quantities(resource, obj: dict) -> None:
    """Canonicalize every container resource quantity in place; a malformed one is the server's 400."""
    for container, _ in _containers(obj):
        for section in ("requests", "limits"):
            values = (container.get("resources") or {}).get(section) or {}
            for key, value in values.items():
                try:
                    values[key] = quantity.canonical(value)
                except quantity.QuantityError as exc:
                    raise undecodable(resource, str(exc)) from exc


def _pod_spec(obj: dict) -> tuple[dict | None, str]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec, "spec"
    template = spec.get("template")
    return ((template or {}).get("spec"), "spec.template.spec") if template is not None else (None, "")


def _containers(obj: dict):
    pod, base = _pod_spec(obj)
    for index, container in enumerate((pod or {}).get("containers") or []):
        yield container, f"{base}.containers[{index}]"


def container_problems(obj: dict) -> list[tuple[str, str]]:
    pod, base = _pod_spec(obj)
    if pod is None:
        return []
    if not pod.get("containers"):
        return [(f"{base}.containers", "Required value")]
    problems = []
    for container, field in _containers(obj):
        if not container.get("name"):
            problems.append((f"{field}.name", "Required value"))
        elif not LABEL.match(container["name"]):
            problems.append(bad_value(f"{field}.name", container["name"], MSG_LABEL))
        if not container.get("image"):
            problems.append((f"{field}.image", "Required value"))
        for env in container.get("env") or []:
            if not ENV_NAME.match(env.get("name") or ""):
                problems.append(
                    bad_value(
                        f"{field}.env.name",
                        env.get("name", ""),
                        "a valid environment variable name "
                        "must consist of alphabetic characters, digits, '_', '-', or '.', and must "
                        "not start with a digit",
                    )
                )
        for port in container.get("ports") or []:
            name = port.get("name")
            if name and (len(name) > 15 or not re.match(r"^[a-z0-9-]*[a-z][a-z0-9-]*$", name)):
                problems.append(bad_value(f"{field}.ports.name", name, "must be an IANA_SVC_NAME"))
        problems += _request_limit_problems(container, field)
    return problems


def _request_limit_problems(container: dict, field: str) -> list[tuple[str, str]]:
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    problems = []
    for key, value in requests.items():
        if key in limits and quantity.parse(value)[0] > quantity.parse(limits[key])[0]:
            problems.append(
                bad_value(
                    f"{field}.resources.requests", value, f"must be less than or equal to {key} limit of {limits[key]}"
                )
            )
    return problems


def kind_problems(obj: dict, old: dict | None) -> list[tuple[str, str]]:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet"):
        return _workload_problems(spec, (old or {}).get("spec"))
    if kind == "Service":
        return _service_problems(spec, (old or {}).get("spec"))
    if kind == "PodDisruptionBudget" and "minAvailable" in spec and "maxUnavailable" in spec:
        return [("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")]
    policy = spec.get("unhealthyPodEvictionPolicy")
    if kind == "PodDisruptionBudget" and policy not in (None, "AlwaysAllow", "IfHealthyBudget"):
        return [
            (
                "spec.unhealthyPodEvictionPolicy",
                f'Unsupported value: "{policy}": supported values: "AlwaysAllow", "IfHealthyBudget"',
            )
        ]
    if kind == "NetworkPolicy":
        return networkpolicy.problems(spec)
    if kind == "Ingress":
        return ingress.problems(obj, old)
    if kind == "HorizontalPodAutoscaler":
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
        if low < 1:
            return [bad_value("spec.minReplicas", low, "must be greater than or equal to 1")]
        if high < low:
            return [bad_value("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`")]
    return []


def _workload_problems(spec: dict, old: dict | None) -> list[tuple[str, str]]:
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [("spec.selector", "Required value")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    problems = []
    if not selector_matches(selector, labels):
        problems.append(
            bad_value("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    if old is not None and old.get("selector") != selector:
        problems.append(bad_value("spec.selector", selector, "field is immutable"))
    if (spec.get("replicas") or 0) < 0:
        problems.append(bad_value("spec.replicas", spec["replicas"], "must be greater than or equal to 0"))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate") is not None:
        problems.append(
            bad_value(
                "spec.strategy.rollingUpdate",
                strategy["rollingUpdate"],
                "may not be specified when strategy `type` is 'Recreate'",
            )
        )
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    if (
        rolling
        and str(rolling.get("maxSurge", 1)) in ("0", "0%")
        and str(rolling.get("maxUnavailable", 1)) in ("0", "0%")
    ):
        problems.append(bad_value("spec.strategy.rollingUpdate.maxUnavailable", 0, "may not be 0 when `maxSurge` is 0"))
    restart = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy", "Always")
    if restart != "Always":
        problems.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{restart}": supported values: "Always"',
            )
        )
    return problems


def _service_problems(spec: dict, old: dict | None) -> list[tuple[str, str]]:
    ports = spec.get("ports") or []
    if not ports and spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None":
        return [("spec.ports", "Required value")]
    problems = []
    if len(ports) > 1 and any(not p.get("name") for p in ports):
        problems.append(("spec.ports[0].name", "Required value"))
    if old and old.get("clusterIP") and spec.get("clusterIP") not in (None, "", old["clusterIP"]):
        problems.append(bad_value("spec.clusterIPs[0]", spec["clusterIP"], "may not change once set"))
    return problems


def validate(resource, obj: dict, old: dict | None = None) -> None:
    """Raise the server's 422 Invalid when ``obj`` (already decoded and defaulted) would be refused."""
    meta = obj.get("metadata") or {}
    problems = name_problems(resource.kind, meta.get("name", ""))
    problems += label_problems(meta.get("labels"), "metadata.labels")
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    problems += label_problems(template.get("labels"), "spec.template.metadata.labels")
    problems += container_problems(obj) + kind_problems(obj, old)
    if resource.kind == "CustomResourceDefinition":
        problems += crds.crd_problems(obj)
    if problems:
        raise invalid(resource, meta.get("name", ""), problems)
    if resource.schema is not None:
        crds.check_custom(resource, obj)
