"""networking.k8s.io/v1 Ingress as the real API server decodes, defaults and validates it.

Decoding (400, Go's typed JSON): ``spec`` and its parts must have their types (``rules``/``tls``/``paths``/
``hosts`` lists, ``host``/``path``/``pathType``/``ingressClassName``/``secretName`` and names strings,
``port.number`` an int32). Defaults: none for v1 Ingress (``pathType`` has none: it is required); its
``status`` reads ``{loadBalancer: {}}``, reset on create. Validation (422, ``ValidateIngressCreate`` /
``ValidateIngressSpec``): ``rules`` or ``defaultBackend`` required; a rule's host a DNS-1123 subdomain, or
with a ``*`` a wildcard one (``*.`` and a subdomain), never an IP address; ``http.paths`` required; each
path's ``pathType`` required and one of Exact, ImplementationSpecific, Prefix; an Exact/Prefix path
absolute, without ``//``, ``/./``, ``/../``, ``%2f``, ``%2F``, not ending ``/..`` or ``/.`` (an
ImplementationSpecific one absolute when given); a backend either a service or a resource, a service
backend's name a DNS-1035 label and exactly one of port name (IANA_SVC_NAME) or number (1-65535); tls
hosts as rule hosts (no IP check), ``secretName`` a DNS subdomain when given; ``ingressClassName`` a DNS
subdomain, and the ``kubernetes.io/ingress.class`` annotation equal to it when both are set (on create).
Messages follow the real ones.
"""

from __future__ import annotations

import ipaddress

from . import gotypes
from .names import bad_value, dns1035_problems, subdomain_problems, wildcard_problems
from .networkpolicy import port_name_problems

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")  # sorted, as the server lists them
BAD_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
BAD_SUFFIXES = ("/..", "/.")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
# Go type of each field (gotypes.py): IngressRule inlines IngressRuleValue, whose one field is ``http``
TYPES = {
    "IngressSpec": {
        "ingressClassName": "string",
        "defaultBackend": "IngressBackend",
        "tls": "[]IngressTLS",
        "rules": "[]IngressRule",
    },
    "IngressBackend": {"service": "IngressServiceBackend", "resource": "TypedLocalObjectReference"},
    "IngressServiceBackend": {"name": "string", "port": "ServiceBackendPort"},
    "ServiceBackendPort": {"name": "string", "number": "int32"},
    "TypedLocalObjectReference": {"apiGroup": "string", "kind": "string", "name": "string"},
    "IngressTLS": {"hosts": "[]string", "secretName": "string"},
    "IngressRule": {"host": "string", "http": "HTTPIngressRuleValue"},
    "HTTPIngressRuleValue": {"paths": "[]HTTPIngressPath"},
    "HTTPIngressPath": {"path": "string", "pathType": "string", "backend": "IngressBackend"},
}


def decode(resource, obj: dict) -> None:
    """The type checks of decoding an Ingress (400 BadRequest)."""
    gotypes.decode(resource, obj.get("spec"), "IngressSpec", TYPES, "Ingress", "spec")


def apply_defaults(obj: dict) -> None:
    """No spec defaults; the status struct always serialises (``omitempty`` does not omit a struct)."""
    obj.setdefault("spec", {})
    status = obj.get("status") or {}
    obj["status"] = {**status, "loadBalancer": status.get("loadBalancer") or {}}


def problems(obj: dict, old: dict | None) -> list[tuple[str, str]]:
    """``ValidateIngressCreate`` (``old`` None) or ``ValidateIngressUpdate``: (field, message) pairs."""
    spec = obj.get("spec") or {}
    found = []
    if not spec.get("rules") and spec.get("defaultBackend") is None:
        shown = "[]networking.IngressRule{}" if isinstance(spec.get("rules"), list) else "[]networking.IngressRule(nil)"
        found.append(("spec", f"Invalid value: {shown}: either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        found += _backend_problems(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(spec.get("rules") or []):
        found += _rule_problems(rule, f"spec.rules[{i}]")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            found += _host_problems(host, f"spec.tls[{i}].hosts[{j}]")
        if tls.get("secretName"):
            found += subdomain_problems(tls["secretName"], f"spec.tls[{i}].secretName")
    name = spec.get("ingressClassName")
    if name is not None:
        found += subdomain_problems(name, "spec.ingressClassName")
    annotated = ((obj.get("metadata") or {}).get("annotations") or {}).get(CLASS_ANNOTATION)
    if old is None and annotated is not None and name is not None and annotated != name:
        why = "must match `ingressClassName` when both are specified"
        found.append(bad_value(f"annotations.{CLASS_ANNOTATION}", annotated, why))
    return found


def _host_problems(host: str, field: str) -> list[tuple[str, str]]:
    return wildcard_problems(host, field) if "*" in host else subdomain_problems(host, field)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _rule_problems(rule: dict, field: str) -> list[tuple[str, str]]:
    host, found = rule.get("host") or "", []
    if host and _is_ip(host):
        found.append(bad_value(f"{field}.host", host, "must be a DNS name, not an IP address"))
    if host:
        found += _host_problems(host, f"{field}.host")
    http = rule.get("http")
    if http is None:
        return found
    if not http.get("paths"):
        found.append((f"{field}.http.paths", "Required value"))
    for i, path in enumerate(http.get("paths") or []):
        found += _path_problems(path, f"{field}.http.paths[{i}]")
    return found


def _path_problems(path: dict, field: str) -> list[tuple[str, str]]:
    kind, text = path.get("pathType"), path.get("path") or ""
    if kind is None:
        return [(f"{field}.pathType", "Required value: pathType must be specified")]
    found = []
    if kind in ("Exact", "Prefix"):
        if not text.startswith("/"):
            found.append(bad_value(f"{field}.path", text, "must be an absolute path"))
        found += [bad_value(f"{field}.path", text, f"must not contain '{s}'") for s in BAD_SEQUENCES if s in text]
        found += [bad_value(f"{field}.path", text, f"cannot end with '{s}'") for s in BAD_SUFFIXES if text.endswith(s)]
    elif kind == "ImplementationSpecific":
        if text and not text.startswith("/"):
            found.append(bad_value(f"{field}.path", text, "must be an absolute path"))
    else:
        supported = ", ".join(f'"{t}"' for t in PATH_TYPES)
        found.append((f"{field}.pathType", f'Unsupported value: "{kind}": supported values: {supported}'))
    return found + _backend_problems(path.get("backend") or {}, f"{field}.backend")


def _backend_problems(backend: dict, field: str) -> list[tuple[str, str]]:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [bad_value(field, "", "cannot set both resource and service backends")]
    if resource is not None:
        return [(f"{field}.resource.{key}", "Required value") for key in ("kind", "name") if not resource.get(key)]
    if service is None:
        return [bad_value(field, "", "resource or service backend is required")]
    name = service.get("name") or ""
    found = dns1035_problems(name, f"{field}.service.name") if name else [(f"{field}.service.name", "Required value")]
    port = service.get("port") or {}
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        return found + [bad_value(field, "", "cannot set both port name & port number")]
    if port_name:
        return found + [
            bad_value(f"{field}.service.port.name", port_name, why) for why in port_name_problems(port_name)
        ]
    if number:
        if 1 <= number <= 65535:
            return found
        return found + [bad_value(f"{field}.service.port.number", number, "must be between 1 and 65535, inclusive")]
    return found + [(field, "Required value: port name or number is required")]
