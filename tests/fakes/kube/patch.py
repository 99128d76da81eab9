"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902), apply configs.

Strategic merge patch merges these lists by key, as the Kubernetes types declare (``patchMergeKey``):
containers/initContainers/volumes/env/imagePullSecrets/ownerReferences by ``name``/``uid``, ports by
``containerPort`` (Service ports by ``port``), volumeMounts by ``mountPath``, conditions by ``type``; other
lists are replaced. Directives kubectl sends are honoured: ``$patch: delete|replace|merge``, ``$retainKeys``,
``$deleteFromPrimitiveList/<key>``; ``$setElementOrder/<key>`` is accepted and ignored (order is kept).
"""

from __future__ import annotations

import copy

from .status import bad_request

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "volumeMounts": "mountPath",
    "conditions": "type",
    "hostAliases": "ip",
    "tolerations": None,
    "finalizers": None,
}


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(key: str, items: list, parent_is_service: bool) -> str | None:
    if key == "ports":
        return "port" if parent_is_service else "containerPort"
    key_name = MERGE_KEYS.get(key)
    if key_name and all(isinstance(i, dict) for i in items):
        return key_name
    return None


def _merge_list(key: str, live: list, patch: list, service: bool) -> list:
    merge_key = _merge_key(key, patch + (live or []), service)
    if merge_key is None:
        if patch and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace":
            return [i for i in patch[1:]]
        return copy.deepcopy(patch)
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [strategic_merge({}, i) for i in patch if i.get("$patch") != "replace"]
    result = copy.deepcopy(live or [])
    for item in patch:
        if merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        index = next((n for n, old in enumerate(result) if old.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(live, patch, service: bool = False):
    """Apply a strategic merge patch to ``live`` (a dict); returns a new dict."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "delete":
        return None
    if patch.get("$patch") == "replace":
        live = {}
    result = copy.deepcopy(live) if isinstance(live, dict) else {}
    retain = patch.get("$retainKeys")
    service = service or patch.get("kind") == "Service"
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value, service)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, service and key == "spec")
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def json_patch(target, operations: list):
    """RFC 6902 add/remove/replace/test (what ``kubectl patch --type json`` sends)."""
    doc = copy.deepcopy(target)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, op["value"])
            elif kind == "remove":
                parent.pop(index)
            elif kind == "replace":
                parent[index] = op["value"]
        elif kind in ("add", "replace"):
            if kind == "replace" and last not in parent:
                raise bad_request(f"replace operation does not apply: doc is missing key: {op['path']}")
            parent[last] = op["value"]
        elif kind == "remove":
            if last not in parent:
                raise bad_request(f"remove operation does not apply: doc is missing path: {op['path']}")
            del parent[last]
        elif kind == "test" and parent.get(last) != op.get("value"):
            raise bad_request(f"testing value {op['path']} failed")
    return doc
