"""The syntax of the Kubernetes values vci writes, checked where settings are loaded and where objects render.

Each ``*_problem`` function returns what is wrong in words (None when nothing is), so that the settings
(``vci.config``, a ConfigError naming the key) and rendering (``vci.deploy.manifests``, a UsageError) apply
one rule set. The rules are the API server's: names (RFC 1123 / RFC 1035 labels, subdomains), label and
annotation keys and values, resource names and quantities (requests never above limits), environment
variable names, the peers of vci's NetworkPolicy and the settings of its Ingress.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: namespaces, most objects
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # RFC 1035 label: Service names start with a letter
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|[KMGTPE]i|[numkMGTPE])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # what the API server accepts for a container's env
RESERVED_PREFIXES = ("vci.dev/", "app.kubernetes.io/", "prometheus.io/")  # vci's own label/annotation keys
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")  # and hugepages-<size>; others are domain/name
GPU = "gpu"  # resources: {gpu: N}, rendered as the limit of the environment's gpu_resource (default below)
GPU_RESOURCE = "nvidia.com/gpu"  # the extended resource NVIDIA's device plugin advertises (AMD's: amd.com/gpu)
TOLERATION = ("key", "operator", "value", "effect", "tolerationSeconds")  # a pod toleration's fields
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
AFFINITY = ("nodeAffinity", "podAffinity", "podAntiAffinity")  # a pod's affinity, as Kubernetes writes it
NETWORK_PEERS = ("from_namespaces", "from_pod_labels", "from_cidrs")
INGRESS = ("host", "class", "tls_secret", "path")  # an environment's Ingress (vci.deploy.manifests.render_ingress)
BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")  # what the API server refuses in an Exact/Prefix path
BAD_PATH_ENDS = ("/..", "/.")
_SUFFIXES = {
    **{s: Decimal(1024) ** (n + 1) for n, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** e for s, e in {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12}.items()},
    **{"P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "": Decimal(1)},
}


def is_dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and all(DNS_LABEL.match(part) for part in name.split("."))


def quantity(value) -> Decimal:
    """``"500m"`` -> 0.5, ``"1Gi"`` -> 1073741824, ``2`` -> 2; ValueError for anything else."""
    text = str(value).strip()
    match = QUANTITY.match(text) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    suffix = match.group(3) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(text)
        return Decimal(text[: len(text) - len(suffix)].lstrip("+")) * _SUFFIXES[suffix]
    except (InvalidOperation, KeyError) as exc:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from exc


def resources_problem(resources: dict) -> str | None:
    """``{cpu, memory, ...}`` (requests and limits alike) or ``{requests: {...}, limits: {...}}``, not both;
    standard or domain-qualified resource names, valid quantities, no request above its limit."""
    sections = [k for k in resources if k in ("requests", "limits")]
    if sections and len(sections) != len(resources):
        mixed = sorted(set(resources) - set(sections))
        return f"mixes requests/limits with {', '.join(mixed)}: put every quantity under requests or limits"
    split = {k: resources[k] for k in sections} if sections else {"requests": resources, "limits": resources}
    for section, values in split.items():
        if not isinstance(values, dict):
            return f"{section} must be a mapping of resource name -> quantity, got {values!r}"
        for name, value in values.items():
            problem = _resource_problem(str(name), value)
            if problem:
                return f"{section}.{name}: {problem}" if sections else f"{name}: {problem}"
    requests, limits = split.get("requests") or {}, split.get("limits") or {}
    if sections and GPU in requests:
        return "gpu goes under limits (a GPU is not shared: its request is its limit)"
    for name in sorted(requests.keys() & limits.keys()):
        if quantity(requests[name]) > quantity(limits[name]):
            return (
                f"the {name} request {requests[name]} is above its limit {limits[name]}: a request is at most its limit"
            )
    return None


def _resource_problem(name: str, value) -> str | None:
    if name == GPU:
        whole = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value.isdigit()
        return None if whole and int(value) >= 1 else f"gpu must be a whole number of GPUs (>= 1), got {value!r}"
    if name not in STANDARD_RESOURCES and not name.startswith("hugepages-") and "/" not in name:
        return (
            f"unknown resource {name!r}: use {', '.join(STANDARD_RESOURCES)}, hugepages-<size> "
            "or an extended resource such as nvidia.com/gpu"
        )
    if "/" in name and not QUALIFIED_NAME.match(name):
        return f"invalid resource name {name!r}"
    try:
        quantity(value)
    except ValueError:
        return f"invalid quantity {value!r} (e.g. cpu: 500m, memory: 1Gi)"
    return None


def metadata_problem(key, value, *, label: bool) -> str | None:
    """A label (``label``) or annotation entry as the API server checks it: a ``[prefix/]name`` key, a string
    value (a label's: at most 63 letters, digits, '-', '_', '.'), and not one of vci's own keys."""
    key_ok = isinstance(key, str) and len(key.rpartition("/")[2]) <= 63 and QUALIFIED_NAME.match(key)
    value_ok = isinstance(value, str) and (not label or (len(value) <= 63 and LABEL_VALUE.match(value)))
    if not (key_ok and value_ok):
        return (
            f"invalid entry {key!r}: {value!r} (keys are [prefix/]name; values are strings"
            + (", at most 63 letters, digits, '-', '_', '.'" if label else "")
            + '; quote values like "true" in vci.yaml)'
        )
    if key.startswith(RESERVED_PREFIXES):
        return f"may not set {key!r}: vci sets the keys under {', '.join(RESERVED_PREFIXES)}"
    return None


def _unknown_key(values: dict, known: tuple[str, ...]) -> str | None:
    unknown = sorted(set(values) - set(known))
    return f"unknown setting {unknown[0]!r} (known: {', '.join(known)})" if unknown else None


def network_policy_problem(policy) -> str | None:
    """``true``/``false`` or ``{from_namespaces: [NAME...], from_pod_labels: {KEY: VALUE}, from_cidrs: [CIDR...]}``."""
    if isinstance(policy, bool) or policy is None:
        return None
    if not isinstance(policy, dict):
        return f"must be true, false or a mapping of {', '.join(NETWORK_PEERS)}, got {policy!r}"
    unknown = _unknown_key(policy, NETWORK_PEERS)
    if unknown:
        return unknown
    for key, kind in (("from_namespaces", list), ("from_pod_labels", dict), ("from_cidrs", list)):
        if not isinstance(policy.get(key) or kind(), kind):
            return f"{key} must be a {'list' if kind is list else 'mapping of label -> value'}, got {policy[key]!r}"
    for name in policy.get("from_namespaces") or []:
        if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.match(name):
            return f"from_namespaces: {name!r} is not a namespace name (lower-case letters, digits and '-')"
    for key, value in (policy.get("from_pod_labels") or {}).items():
        problem = metadata_problem(key, value, label=True)
        if problem and not problem.startswith("may not"):  # selecting pods by vci's own labels is fine
            return f"from_pod_labels: {problem}"
    for cidr in policy.get("from_cidrs") or []:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            return f"from_cidrs: {cidr!r} is not a CIDR (e.g. 10.0.0.0/16)"
    return None


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def ingress_problem(ingress) -> str | None:
    """``{host, class, tls_secret, path}``: host required (``*.example.com`` allowed), class an IngressClass
    name, tls_secret a Secret name, path absolute (default ``/``) without what the API server refuses in it."""
    if not ingress:
        return None
    if not isinstance(ingress, dict):
        return f"must be a mapping of {', '.join(INGRESS)}, got {ingress!r}"
    unknown = _unknown_key(ingress, INGRESS)
    if unknown:
        return unknown
    for key, value in ingress.items():
        if not isinstance(value, str):
            return f"{key} must be a string, got {value!r}"
    host = ingress.get("host")
    if not host:
        return "host is required: the name clients reach the model at (e.g. iris.example.com)"
    if is_ip_address(host):
        return f"host {host!r} is an IP address: an Ingress routes by DNS name (e.g. iris.example.com)"
    if len(host) > 253 or not is_dns_subdomain(host.removeprefix("*.")):  # '*.' may lead, as the API allows
        return f"host {host!r} is not a DNS name (lower-case letters, digits, '-' and '.'; '*.' may lead)"
    for key, what in (("class", "an IngressClass name"), ("tls_secret", "a Secret name")):
        if key in ingress and not is_dns_subdomain(ingress[key]):
            return f"{key} {ingress[key]!r} is not {what} (lower-case letters, digits, '-' and '.')"
    return _path_problem(ingress.get("path", "/"))


def _path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return f"path {path!r} must be absolute (start with '/')"
    bad = [part for part in BAD_PATH_PARTS if part in path] + [end for end in BAD_PATH_ENDS if path.endswith(end)]
    if bad:
        return f"path {path!r} may not contain {bad[0]!r}, nor end with '/.' or '/..'"
    return None


def gpu_resource_problem(name) -> str | None:
    """The extended resource a GPU is asked for by: ``vendor-domain/name``, as its device plugin advertises it."""
    if not isinstance(name, str) or "/" not in name or not QUALIFIED_NAME.match(name):
        return f"{name!r} is not an extended resource name (e.g. {GPU_RESOURCE}, amd.com/gpu)"
    return None


def node_selector_problem(values) -> str | None:
    """``{node label: value}``: label keys and values as the API server checks them."""
    if not isinstance(values, dict):
        return f"must be a mapping of node label -> value, got {values!r}"
    for key, value in values.items():
        key_ok = isinstance(key, str) and len(key.rpartition("/")[2]) <= 63 and QUALIFIED_NAME.match(key)
        if not key_ok or not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            return f'invalid entry {key!r}: {value!r} (a node label [prefix/]name and its value; quote "true")'
    return None


def tolerations_problem(values) -> str | None:
    """A list of pod tolerations, each checked as the API server checks it."""
    if not isinstance(values, list):
        return f"must be a list of tolerations ({{key, operator, value, effect}}), got {values!r}"
    for n, toleration in enumerate(values):
        problem = _toleration_problem(toleration)
        if problem:
            return f"[{n}]: {problem}"
    return None


def _toleration_problem(t) -> str | None:
    if not isinstance(t, dict):
        return f"a toleration is a mapping of {', '.join(TOLERATION)}, got {t!r}"
    key, operator, value, effect = t.get("key", ""), t.get("operator", "Equal"), t.get("value", ""), t.get("effect", "")
    checks = [
        (_unknown_key(t, TOLERATION), None),
        (operator not in ("Equal", "Exists"), f"operator must be Equal or Exists, got {operator!r}"),
        (bool(key) and not (isinstance(key, str) and QUALIFIED_NAME.match(key)), f"invalid key {key!r}"),
        (not key and operator != "Exists", "an empty key needs operator Exists (it tolerates every taint)"),
        (operator == "Exists" and bool(value), "operator Exists takes no value"),
        (not isinstance(value, str) or not LABEL_VALUE.match(value), f"value {value!r} is not a label value"),
        (effect not in ("", *TAINT_EFFECTS), f"effect must be one of {', '.join(TAINT_EFFECTS)}, got {effect!r}"),
        ("tolerationSeconds" in t and effect != "NoExecute", "tolerationSeconds needs effect NoExecute"),
        (
            "tolerationSeconds" in t and (not isinstance(t["tolerationSeconds"], int) or t["tolerationSeconds"] < 0),
            f"tolerationSeconds must be a whole number of seconds >= 0, got {t.get('tolerationSeconds')!r}",
        ),
    ]
    return next((message or str(failed) for failed, message in checks if failed), None)


def affinity_problem(values) -> str | None:
    """A pod's affinity as Kubernetes writes it: ``nodeAffinity``, ``podAffinity``, ``podAntiAffinity``
    mappings (their terms are the API server's to check; vci's own spread term is added to it)."""
    if not isinstance(values, dict):
        return f"must be a mapping with {', '.join(AFFINITY)}, got {values!r}"
    unknown = _unknown_key(values, AFFINITY)
    if unknown:
        return unknown
    wrong = [k for k, v in values.items() if not isinstance(v, dict)]
    return f"{wrong[0]} must be a mapping, as in a pod spec" if wrong else None


def object_name_problem(name) -> str | None:
    """A PriorityClass or ServiceAccount name: a DNS subdomain."""
    if not isinstance(name, str) or not is_dns_subdomain(name) or not name:
        return f"{name!r} is not an object name (lower-case letters, digits, '-' and '.')"
    return None
