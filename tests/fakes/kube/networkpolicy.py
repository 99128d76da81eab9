"""networking.k8s.io/v1 NetworkPolicy as the real API server decodes, defaults and validates it.

Decoding (400, Go's typed JSON): ``spec`` and its parts must have their types (``podSelector`` an object,
``ingress``/``egress``/``from``/``to``/``ports``/``policyTypes``/``except`` lists, ``cidr``/``protocol``
strings, ``port`` an int or a string, ``endPort`` an int, ``matchLabels`` a string map). Defaults (the
networking/v1 defaulters): ``podSelector: {}`` when absent, ``protocol: TCP`` on every port, ``policyTypes``
``[Ingress]`` (+ ``Egress`` when egress rules are given) when empty. Validation (422,
``ValidateNetworkPolicySpec``): label selectors (keys, values, operators and their values), each peer
naming something (``must specify a peer``) and an ipBlock alone (``may not specify both ipBlock and
another peer``), ipBlock ``cidr`` required and a CIDR, ``except`` a strict subset of it, ports' protocol
TCP/UDP/SCTP, numbers 1-65535 or IANA service names, ``endPort`` only after a numeric port and not below
it, at most two ``policyTypes`` of Ingress/Egress. Messages follow the real ones.
"""

from __future__ import annotations

import ipaddress
import re

from . import gotypes

LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
PROTOCOLS = ("TCP", "UDP", "SCTP")
# Go type of each field: a struct name (below), "[]T" a list of T, "map" a map[string]string
TYPES = {
    "NetworkPolicySpec": {
        "podSelector": "LabelSelector",
        "ingress": "[]NetworkPolicyIngressRule",
        "egress": "[]NetworkPolicyEgressRule",
        "policyTypes": "[]string",
    },
    "NetworkPolicyIngressRule": {"from": "[]NetworkPolicyPeer", "ports": "[]NetworkPolicyPort"},
    "NetworkPolicyEgressRule": {"to": "[]NetworkPolicyPeer", "ports": "[]NetworkPolicyPort"},
    "NetworkPolicyPeer": {"podSelector": "LabelSelector", "namespaceSelector": "LabelSelector", "ipBlock": "IPBlock"},
    "IPBlock": {"cidr": "string", "except": "[]string"},
    "NetworkPolicyPort": {"protocol": "string", "port": "intstr", "endPort": "int32"},
    "LabelSelector": {"matchLabels": "map", "matchExpressions": "[]LabelSelectorRequirement"},
    "LabelSelectorRequirement": {"key": "string", "operator": "string", "values": "[]string"},
}


def decode(resource, obj: dict) -> None:
    """The type checks of decoding a NetworkPolicy (400 BadRequest)."""
    gotypes.decode(resource, obj.get("spec"), "NetworkPolicySpec", TYPES, "NetworkPolicy", "spec")


def apply_defaults(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("podSelector", {})
    for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
        for port in rule.get("ports") or []:
            port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def problems(spec: dict) -> list[tuple[str, str]]:
    """``ValidateNetworkPolicySpec``: (field, message) pairs."""
    found = _selector_problems(spec.get("podSelector") or {}, "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for n, rule in enumerate(spec.get(direction) or []):
            base = f"spec.{direction}[{n}]"
            for i, port in enumerate(rule.get("ports") or []):
                found += _port_problems(port, f"{base}.ports[{i}]")
            for i, peer in enumerate(rule.get(peers) or []):
                found += _peer_problems(peer, f"{base}.{peers}[{i}]")
    types = spec.get("policyTypes") or []
    if len(types) > 2:
        return found + [("spec.policyTypes", f"Invalid value: {types}: may not specify more than two policyTypes")]
    for i, kind in enumerate(types):
        if kind not in ("Ingress", "Egress"):
            found.append(
                (f"spec.policyTypes[{i}]", f'Unsupported value: "{kind}": supported values: "Ingress", "Egress"')
            )
    return found


def _selector_problems(selector: dict, field: str) -> list[tuple[str, str]]:
    found = []
    for key, value in (selector.get("matchLabels") or {}).items():
        if len(key.rpartition("/")[2]) > 63 or not LABEL_KEY.match(key):
            found.append(
                (
                    f"{field}.matchLabels",
                    f'Invalid value: "{key}": name part must consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if len(value) > 63 or not LABEL_VALUE.match(value):
            found.append(
                (
                    f"{field}.matchLabels",
                    f'Invalid value: "{value}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                )
            )
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        found += _expression_problems(expression, f"{field}.matchExpressions[{i}]")
    return found


def _expression_problems(expression: dict, field: str) -> list[tuple[str, str]]:
    operator, values = expression.get("operator", ""), expression.get("values") or []
    found = []
    if operator in ("In", "NotIn") and not values:
        found.append((f"{field}.values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist") and values:
        found.append(
            (f"{field}.values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        )
    elif operator not in OPERATORS:
        supported = ", ".join(f'"{o}"' for o in OPERATORS)
        found.append((f"{field}.operator", f'Unsupported value: "{operator}": supported values: {supported}'))
    if not LABEL_KEY.match(expression.get("key") or ""):
        found.append((f"{field}.key", f'Invalid value: "{expression.get("key", "")}": name part must be non-empty'))
    return found


def _peer_problems(peer: dict, field: str) -> list[tuple[str, str]]:
    named = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    found = []
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            found += _selector_problems(peer[key], f"{field}.{key}")
    if peer.get("ipBlock") is not None:
        found += _ip_block_problems(peer["ipBlock"], f"{field}.ipBlock")
    if not named:
        found.append((field, "Required value: must specify a peer"))
    elif len(named) > 1 and "ipBlock" in named:
        found.append((field, "Forbidden: may not specify both ipBlock and another peer"))
    return found


def _ip_block_problems(block: dict, field: str) -> list[tuple[str, str]]:
    if not block.get("cidr"):
        return [(f"{field}.cidr", "Required value")]
    try:
        network = ipaddress.ip_network(block["cidr"], strict=False)
    except ValueError:
        return [(f"{field}.cidr", f'Invalid value: "{block["cidr"]}": not a valid CIDR')]
    for i, text in enumerate(block.get("except") or []):
        try:
            inner = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return [(f"{field}.except[{i}]", f'Invalid value: "{text}": not a valid CIDR')]
        if inner.version != network.version or not inner.subnet_of(network) or inner.prefixlen <= network.prefixlen:
            return [(f"{field}.except[{i}]", f'Invalid value: "{text}": must be a strict subset of `cidr`')]
    return []


def _port_problems(port: dict, field: str) -> list[tuple[str, str]]:
    found = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        supported = ", ".join(f'"{p}"' for p in PROTOCOLS)
        found.append((f"{field}.protocol", f'Unsupported value: "{protocol}": supported values: {supported}'))
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, int):
        if not 1 <= number <= 65535:
            found.append((f"{field}.port", f"Invalid value: {number}: must be between 1 and 65535, inclusive"))
        if end is not None and end < number:
            found.append((f"{field}.endPort", f"Invalid value: {number}: must be greater than or equal to `port`"))
    elif number is not None:
        found += [(f"{field}.port", f'Invalid value: "{number}": {why}') for why in port_name_problems(number)]
        if end is not None:
            found.append((f"{field}.endPort", f"Invalid value: {end}: may not be specified when `port` is non-numeric"))
    elif end is not None:
        found.append((f"{field}.endPort", f"Invalid value: {end}: may not be specified when `port` is not specified"))
    if end is not None and not 1 <= end <= 65535:
        found.append((f"{field}.endPort", f"Invalid value: {end}: must be between 1 and 65535, inclusive"))
    return found


def port_name_problems(name: str) -> list[str]:
    """``IsValidPortName`` (an IANA_SVC_NAME)."""
    found = []
    if len(name) > 15:
        found.append("must be no more than 15 characters")
    if not re.match(r"^[-a-z0-9]+$", name):
        found.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        found.append("must contain at least one letter (a-z)")
    if "--" in name:
        found.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        found.append("must not begin or end with a hyphen")
    return found
