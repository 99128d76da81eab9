"""CustomResourceDefinitions: a CRD (apiextensions.k8s.io/v1) makes the server serve its resource, as upstream.

Once a CRD is stored, each of its ``served`` versions answers at ``/apis/<group>/<version>/[namespaces/<ns>/]
<plural>`` and in discovery; before it exists (or after it is deleted) those paths are the real server's
404 ``the server could not find the requested resource``, which is what a client meets on a cluster
without the operator. Objects are validated against the version's ``schema.openAPIV3Schema`` (jsonschema:
type, enum, pattern, required, ...; 422 Invalid naming the field), and unknown fields are pruned as a
structural schema prunes them (``x-kubernetes-preserve-unknown-fields`` keeps them). The CRD's own name
must be ``<plural>.<group>``. Not modelled: conversion between versions, the ``scale`` subresource,
printer columns, CEL rules, the deletion of a CRD's objects with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .resources import BY_KIND, Resource
from .status import invalid

CRDS = BY_KIND["CustomResourceDefinition"]
SERVICE_MONITOR_SCHEMA = Path(__file__).resolve().parents[2] / "deploy" / "prometheus_operator_schemas"


def served(store) -> dict[tuple[str, str, str], Resource]:
    """(group, version, plural) -> Resource for every served version of every stored CRD (asked on every
    request: worked out again only when the store changed)."""
    cached = getattr(store, "_served_crds", None)
    if cached is not None and cached[0] == store.revision:
        return cached[1]
    revision, found = store.revision, _served(store)
    store._served_crds = (revision, found)
    return found


def _served(store) -> dict[tuple[str, str, str], Resource]:
    out = {}
    for crd in store.list(CRDS)[0]:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if not version.get("served"):
                continue
            out[(spec["group"], version["name"], names["plural"])] = Resource(
                spec["group"],
                version["name"],
                names["plural"],
                names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                subresources=("status",) if "status" in (version.get("subresources") or {}) else (),
                has_status="status" in (version.get("subresources") or {}),
                schema=json.dumps(((version.get("schema") or {}).get("openAPIV3Schema")) or {}),
            )
    return out


def crd_problems(obj: dict) -> list[tuple[str, str]]:
    """What the server refuses in a CRD: a name other than ``<plural>.<group>``, no served version."""
    spec, name = obj.get("spec") or {}, (obj.get("metadata") or {}).get("name", "")
    plural, group = (spec.get("names") or {}).get("plural", ""), spec.get("group", "")
    problems = []
    if name != f"{plural}.{group}":
        problems.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if not any(v.get("served") for v in spec.get("versions") or []):
        problems.append(("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    return problems


def check_custom(resource: Resource, obj: dict) -> None:
    """Prune what the schema does not declare, then refuse (422) what it does not allow."""
    import jsonschema

    schema = json.loads(resource.schema or "{}")
    if not schema:
        return
    _prune(obj, schema, top=True)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    causes = [(_field(e.absolute_path), f"Invalid value: {json.dumps(e.instance)}: {e.message}") for e in errors]
    if causes:
        raise invalid(resource, (obj.get("metadata") or {}).get("name", ""), causes)


def _prune(value, schema: dict, top: bool = False) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and "properties" in schema:
        for key in list(value):
            if key in schema["properties"]:
                _prune(value[key], schema["properties"][key])
            elif not (top and key in ("apiVersion", "kind", "metadata")):
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _prune(item, schema["items"])


def _field(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


def service_monitor_crd() -> dict:
    """The Prometheus Operator's ServiceMonitor CRD, with the published schema (tests/deploy/prometheus_operator_
    schemas) as its openAPIV3Schema."""
    schema = json.loads((SERVICE_MONITOR_SCHEMA / "servicemonitor-v1.json").read_text())
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "plural": "servicemonitors",
                "singular": "servicemonitor",
                "kind": "ServiceMonitor",
                "listKind": "ServiceMonitorList",
                "shortNames": ["smon"],
            },  # fmt: skip
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }
