"""Label and field selectors as the API server parses them (labelSelector, fieldSelector, LabelSelector).

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) and ``!k``,
comma-separated (AND). Field selectors: ``f=v``, ``f==v``, ``f!=v`` on the fields the real server indexes for
the resource (``metadata.name``, ``metadata.namespace`` everywhere, ``status.phase``/``spec.nodeName`` on
pods, ``involvedObject.*``/``reason``/``type`` on events); any other field is a 400 like the real server's
``field label not supported``.
"""

from __future__ import annotations

import re

from .status import bad_request

FIELDS = {"metadata.name", "metadata.namespace"}
EXTRA_FIELDS = {
    "pods": {
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "status.podIP",
        "spec.serviceAccountName",
    },
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "secrets": {"type"},
    "replicasets": {"status.replicas"},
}
_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*$")


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (part.strip() for part in parts) if p]


def parse_label_selector(text: str | None) -> list[tuple[str, str, set]]:
    """Requirements (key, operator, values); operators: In, NotIn, Exists, DoesNotExist."""
    requirements = []
    for part in _split(text or ""):
        match = _SET.match(part)
        if not match:
            raise bad_request(f"unable to parse requirement: found '{part}', expected: identifier")
        negate, key, set_op, values, eq_op, value = match.groups()
        if negate and (set_op or eq_op):
            raise bad_request(f"unable to parse requirement: {part}")
        if set_op:
            items = {v.strip() for v in values.split(",") if v.strip()}
            requirements.append((key, "In" if set_op == "in" else "NotIn", items))
        elif eq_op:
            requirements.append((key, "NotIn" if eq_op == "!=" else "In", {value}))
        else:
            requirements.append((key, "DoesNotExist" if negate else "Exists", set()))
    return requirements


def requirements_match(requirements, labels: dict | None) -> bool:
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present or op == "DoesNotExist" and present:
            return False
    return True


def selector_requirements(selector: dict | None) -> list[tuple[str, str, set]]:
    """A LabelSelector object (matchLabels + matchExpressions) as requirements."""
    selector = selector or {}
    reqs = [(k, "In", {v}) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        reqs.append((expr["key"], expr["operator"], set(expr.get("values") or [])))
    return reqs


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """True when a LabelSelector object selects ``labels``; an empty selector selects everything."""
    return requirements_match(selector_requirements(selector), labels)


def parse_field_selector(text: str | None, plural: str) -> list[tuple[str, bool, str]]:
    """Terms (field, equal?, value); unsupported fields are refused like the real server does."""
    terms = []
    for part in _split(text or ""):
        match = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in FIELDS | EXTRA_FIELDS.get(plural, set()):
            raise bad_request(f"field label not supported: {field}")
        terms.append((field, op != "!=", value))
    return terms


def field_value(obj: dict, field: str) -> str:
    value = obj
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def fields_match(terms, obj: dict) -> bool:
    return all((field_value(obj, field) == value) == equal for field, equal, value in terms)
