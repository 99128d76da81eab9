"""The REST verbs over the store: get, list, watch, create, replace, patch (4 types), delete, scale, log.

Each handler takes a parsed route, the query (first value per key) and the decoded body, and returns ``(code,
json_body)``; refusals are ``ApiError`` (status.py). ``watch`` returns a generator of event dicts ``{"type":
ADDED|MODIFIED|DELETED|ERROR, "object": ...}`` that the HTTP layer streams one JSON per line. Server-side
apply (``application/apply-patch+yaml``) requires ``fieldManager``, creates a missing object, and otherwise
merges the configuration strategically, recording the manager in ``metadata.managedFields`` (the owned leaf
paths are kept as JSON in ``fieldsV1["f:paths"]``, not in the real FieldsV1 trie); fields one apply manager
set are removed when it stops applying them, and so are the items of keyed lists (env, containers, ports...,
by ``name``) it stops applying, while items other managers added stay. Setting a field another *apply* manager
owns to a different value is a 409 Conflict ("Apply failed with 1 conflict: conflict with "other" using
apps/v1: .spec.replicas") unless ``force=true``, which takes the field over. Writes by PUT, PATCH and the
scale subresource are Update operations: the leaf paths they change move to their manager (``fieldManager``,
else the User-Agent's prefix before "/", as the real server derives it), out of every other manager's set, so
an apply that later sets one of them to another value conflicts with that manager too. A no-op apply changes
nothing (no new resourceVersion, the managers' times kept), as on the real server.
"""

from __future__ import annotations

import copy
import json
import time

from . import status as errors
from .patch import json_patch, merge_patch, strategic_merge
from .resources import Resource
from .routes import Route
from .selectors import fields_match, parse_field_selector, parse_label_selector, requirements_match
from .store import Store, now_iso

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def decode(body: bytes, content_type: str = "application/json"):
    if not body:
        return None
    try:
        if "yaml" in content_type:
            import yaml

            return yaml.safe_load(body)
        return json.loads(body)
    except ValueError as exc:
        raise errors.bad_request(f"error decoding request body: {exc}") from exc


def _matcher(route: Route, query: dict):
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"), route.resource.plural)
    return lambda obj: requirements_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj)


class Api:
    def __init__(self, store: Store, logs=None):
        self.store = store
        self.logs = logs  # callable(namespace, pod_name, container, previous) -> str

    def namespace_of(self, route: Route) -> str:
        return route.namespace if route.resource.namespaced else ""

    def get(self, route: Route, query: dict):
        if route.subresource == "scale":
            return 200, self._scale_of(self.store.get(route.resource, route.namespace, route.name))
        if route.subresource == "log":
            return self.log(route, query)
        return 200, self.store.get(route.resource, self.namespace_of(route), route.name)

    def list(self, route: Route, query: dict):
        items, version = self.store.list(route.resource, route.namespace, _matcher(route, query))
        for item in items:  # lists carry kind/apiVersion once, not per item (the real server strips them)
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return 200, {
            "kind": f"{route.resource.kind}List",
            "apiVersion": route.resource.api_version,
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def watch(self, route: Route, query: dict, limit: float):
        """Events as dicts; selectors are parsed before streaming starts, so a bad one is still a 400."""
        timeout = min(float(query.get("timeoutSeconds") or limit), limit)
        changes = self.store.watch(
            route.resource, route.namespace, query.get("resourceVersion"), _matcher(route, query), timeout
        )
        return ({"type": kind, "object": obj} for kind, obj in changes)

    def create(self, route: Route, query: dict, body):
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not an object")
        kind = body.get("kind")
        if kind and kind != route.resource.kind:
            raise errors.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({route.resource.api_version})"
            )
        body = copy.deepcopy(body)
        record_update({"metadata": {}}, body, update_manager(query))
        return 201, self.store.create(route.resource, self.namespace_of(route), body, bool(query.get("dryRun")))

    def replace(self, route: Route, query: dict, body):
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not an object")
        if route.subresource == "scale":
            return self._set_scale(route, body, update_manager(query))
        body = copy.deepcopy(body)
        if route.subresource != "status":
            live = self.store.get(route.resource, self.namespace_of(route), route.name)
            record_update(live, body, update_manager(query))
        return 200, self.store.update(
            route.resource, self.namespace_of(route), route.name, body, route.subresource, bool(query.get("dryRun"))
        )

    def patch(self, route: Route, query: dict, body: bytes, content_type: str):
        kind = content_type.split(";")[0].strip()
        if kind not in PATCH_TYPES:
            raise errors.unsupported_media(kind)
        patch = decode(body, kind)
        # read, patch and write as one step under the store's lock, as the API server's GuaranteedUpdate: a
        # controller's write cannot come in between and turn a patch into a 409; only a patch that names a
        # stale resourceVersion itself gets one
        with self.store.cond:
            if kind == "application/apply-patch+yaml":
                return self._apply(route, query, patch)
            return self._patch(route, query, patch, kind)

    def _patch(self, route: Route, query: dict, patch, kind: str):
        namespace = self.namespace_of(route)
        live = self.store.get(route.resource, namespace, route.name)
        if route.subresource == "scale":
            merged = merge_patch(self._scale_of(live), patch)
            return self._set_scale(route, merged, update_manager(query))
        if kind == "application/json-patch+json":
            new = json_patch(live, patch)
        elif kind == "application/merge-patch+json":
            new = merge_patch(live, patch)
        else:
            new = strategic_merge(live, patch, live.get("kind") == "Service")
        if route.subresource != "status":
            record_update(live, new, update_manager(query))
        return 200, self.store.update(
            route.resource, namespace, route.name, new, route.subresource, bool(query.get("dryRun"))
        )

    def _apply(self, route: Route, query: dict, config):
        manager = query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        if not isinstance(config, dict) or not (config.get("metadata") or {}).get("name"):
            raise errors.bad_request("apply configurations must be objects with metadata.name")
        namespace = self.namespace_of(route)
        live = self.store.find(route.resource, namespace, route.name)
        if live is None:
            body = copy.deepcopy(config)
            _record_manager(body, manager, "Apply", config)
            return 201, self.store.create(route.resource, namespace, body, bool(query.get("dryRun")))
        _take_over(live, manager, config, (query.get("force") or "").lower() in ("true", "1"))
        new = _drop_unapplied(live, manager, config)
        new = strategic_merge(new, config, live.get("kind") == "Service")
        _record_manager(new, manager, "Apply", config)
        if _without_times(new) == _without_times(live):
            return 200, live  # nothing changed: the real server writes nothing
        wanted = (config.get("metadata") or {}).get("resourceVersion")  # a precondition, when the config names one
        new["metadata"]["resourceVersion"] = wanted or live["metadata"]["resourceVersion"]
        return 200, self.store.update(
            route.resource, namespace, route.name, new, route.subresource, bool(query.get("dryRun"))
        )

    def delete(self, route: Route, query: dict, body):
        options = body if isinstance(body, dict) else {}
        policy = options.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        obj, gone = self.store.delete(
            route.resource,
            self.namespace_of(route),
            route.name,
            policy,
            options.get("preconditions"),
            bool(query.get("dryRun")),
            None if grace is None else int(grace),
        )
        if route.resource.kind == "Pod":
            return 200, obj  # the real server answers a graceful pod deletion with 200 and the terminating pod
        if gone and route.resource.kind not in ("Pod", "Namespace"):
            return 200, errors.success_body(route.resource, route.name, obj["metadata"]["uid"])
        return (202 if not gone else 200), obj

    def log(self, route: Route, query: dict):
        text = self._log_text(route, query)
        if query.get("tailLines"):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else ""
        return 200, text

    def _log_text(self, route: Route, query: dict) -> str:
        causes = [  # as ValidatePodLogOptions words them (422 Invalid PodLogOptions)
            (name, f"Invalid value: {query[name]}: must be greater than {'or equal to ' if least == 0 else ''}0")
            for name, least in (("sinceSeconds", 1), ("tailLines", 0), ("limitBytes", 1))
            if query.get(name) is not None and not (query[name].isdigit() and int(query[name]) >= least)
        ]
        if query.get("sinceSeconds") and query.get("sinceTime"):
            causes.append(("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
        if causes:
            raise errors.invalid(Resource("", "v1", "podlogoptions", "PodLogOptions"), route.name, causes)
        pod = self.store.get(route.resource, route.namespace, route.name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container") or containers[0]
        if container not in containers:
            raise errors.bad_request(f"container {container} is not valid for pod {route.name}")
        return self.logs(route.namespace, route.name, container, query.get("previous") == "true") if self.logs else ""

    def follow_log(self, route: Route, query: dict, limit: float):
        """``follow=true``: the log so far (``tailLines`` of it), then what the container writes, until the
        pod is gone or its container stops (as the kubelet ends the stream), or ``limit`` seconds pass."""
        _, text = self.log(route, query)  # a bad pod or container is still a 4xx before streaming starts
        sent = len(self._log_text(route, query))

        def chunks():
            yield text
            nonlocal sent
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline and not self.store.closed:
                pod = self.store.find(route.resource, route.namespace, route.name)
                current = self._log_text(route, query) if pod is not None else ""
                if len(current) > sent:
                    yield current[sent:]
                    sent = len(current)
                if pod is None or _terminated(pod):
                    return
                time.sleep(0.1)

        return chunks()

    def _scale_of(self, obj: dict) -> dict:
        meta = obj["metadata"]
        selector = ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"].get("matchLabels", {}).items())
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
        }

    def _set_scale(self, route: Route, scale: dict, manager: str):
        wanted = (scale.get("metadata") or {}).get("resourceVersion")
        live = self.store.get(route.resource, route.namespace, route.name)
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise errors.conflict(route.resource, route.name)
        new = copy.deepcopy(live)
        new["spec"]["replicas"] = (scale.get("spec") or {}).get("replicas", 0)
        record_update(live, new, manager, "scale")
        updated = self.store.update(route.resource, route.namespace, route.name, new)
        return 200, self._scale_of(updated)


def _field_paths(config, prefix=()) -> set:
    """The leaf paths an apply configuration sets (list items keyed by position-independent merge keys)."""
    if isinstance(config, dict):
        paths = set()
        for key, value in config.items():
            paths |= _field_paths(value, prefix + (key,)) if isinstance(value, dict) and value else {prefix + (key,)}
        return paths
    return {prefix}


def _lookup(obj, path: tuple):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _take_over(live: dict, manager: str, config: dict, force: bool) -> None:
    """Refuse (409) or, forced, take over fields other apply managers own with different values."""
    mine, conflicts = _field_paths(config), []
    for entry in live["metadata"].get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        theirs = {tuple(p) for p in json.loads((entry.get("fieldsV1") or {}).get("f:paths", "[]"))}
        clashing = sorted(
            p for p in theirs & mine if p[0] != "metadata" or len(p) > 2 if _lookup(live, p) != _lookup(config, p)
        )
        conflicts += [(entry, path) for path in clashing]
        if force and clashing:
            entry["fieldsV1"] = {
                **entry["fieldsV1"],
                "f:paths": json.dumps(sorted(list(p) for p in theirs - set(clashing))),
            }
    if conflicts and not force:
        count = len(conflicts)
        text = "\n".join(
            f'conflict with "{e["manager"]}" using {e.get("apiVersion", "")}: .{".".join(p)}' for e, p in conflicts
        )
        causes = [
            {"reason": "FieldManagerConflict", "field": "." + ".".join(p), "message": f'conflict with "{e["manager"]}"'}
            for e, p in conflicts
        ]
        plural = "s" * (count > 1)
        raise errors.ApiError(
            409, "Conflict", f"Apply failed with {count} conflict{plural}: {text}", {"causes": causes}
        )


def _drop_unapplied(live: dict, manager: str, config: dict) -> dict:
    new = copy.deepcopy(live)
    entries = live["metadata"].get("managedFields") or []
    previous = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    if not previous:
        return new
    before = {tuple(p) for p in json.loads(previous.get("fieldsV1", {}).get("f:paths", "[]"))}
    for path in before - _field_paths(config):
        if path[:1] in (("metadata",), ("apiVersion",), ("kind",)) and len(path) < 3:
            continue
        parent = new
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    _drop_unapplied_items(new, previous, config)
    return new


def _keyed_items(config, prefix=()) -> dict:
    """Path -> names of the items of every list keyed by ``name`` (containers, env, ports, volumes...) an
    apply configuration sets; an item's own lists are under ``prefix + ("[name]",)``."""
    found = {}
    if isinstance(config, dict):
        for key, value in config.items():
            found.update(_keyed_items(value, prefix + (key,)))
    elif isinstance(config, list) and config and all(isinstance(i, dict) and "name" in i for i in config):
        found[prefix] = sorted(str(i["name"]) for i in config)
        for item in config:
            found.update(_keyed_items(item, prefix + (f"[{item['name']}]",)))
    return found


def _items_at(obj, path: tuple):
    for part in path:
        if isinstance(obj, list) and part.startswith("["):
            obj = next((i for i in obj if isinstance(i, dict) and f"[{i.get('name')}]" == part), None)
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def _drop_unapplied_items(new: dict, previous: dict, config: dict) -> None:
    """Items of a keyed list that this manager applied before and applies no more are removed, as the real
    server does (items other managers added stay: the list is merged by key)."""
    before = {tuple(k): v for k, v in json.loads((previous.get("fieldsV1") or {}).get("f:items", "[]"))}
    now = _keyed_items(config)
    for path, names in before.items():
        if path not in now:
            continue
        gone = set(names) - set(now[path])
        items = _items_at(new, path)
        if gone and isinstance(items, list):
            items[:] = [i for i in items if not (isinstance(i, dict) and str(i.get("name")) in gone)]


def _record_manager(obj: dict, manager: str, operation: str, config: dict | None = None) -> None:
    meta = obj.setdefault("metadata", {})
    entries = [
        e for e in meta.get("managedFields") or [] if (e.get("manager"), e.get("operation")) != (manager, operation)
    ]
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": obj.get("apiVersion", ""),
        "time": now_iso(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }
    if config is not None:
        entry["fieldsV1"] = {
            "f:paths": json.dumps(sorted(list(p) for p in _field_paths(config))),
            "f:items": json.dumps(sorted([list(k), v] for k, v in _keyed_items(config).items())),
        }
    meta["managedFields"] = entries + [entry]


OWNED_TOP = ("spec", "data", "stringData", "metadata")
SYSTEM_META = (
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "name",
    "namespace",
)


def update_manager(query: dict) -> str:
    """The manager of an Update: ``fieldManager``, else the User-Agent's prefix (the real server's default)."""
    return query.get("fieldManager") or (query.get("_user_agent") or "unknown").split("/")[0][:128] or "unknown"


def _owned_paths(obj: dict) -> dict:
    """Leaf path -> value of the fields a manager can own (spec, data, labels, annotations...)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SYSTEM_META}
    body = {k: v for k, v in obj.items() if k in OWNED_TOP and k != "metadata"}
    tree = {**body, "metadata": meta}
    return {p: _lookup(tree, p) for p in _field_paths(tree)}


def record_update(live: dict, new: dict, manager: str, subresource: str = "") -> None:
    """An Update takes ownership of every leaf it changed, out of every other manager's set."""
    before, after = _owned_paths(live), _owned_paths(new)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    entries = copy.deepcopy(live["metadata"].get("managedFields") or [])
    if not changed:
        new.setdefault("metadata", {})["managedFields"] = entries
        return
    kept = []
    for entry in entries:
        paths = {tuple(p) for p in json.loads((entry.get("fieldsV1") or {}).get("f:paths", "[]"))}
        if (entry.get("manager"), entry.get("operation")) == (manager, "Update"):
            changed |= paths
            continue
        entry["fieldsV1"] = {
            **(entry.get("fieldsV1") or {}),
            "f:paths": json.dumps(sorted(list(p) for p in paths - changed)),
        }
        kept.append(entry)
    version = live.get("apiVersion") or new.get("apiVersion", "")
    mine = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": version,
        "time": now_iso(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:paths": json.dumps(sorted(list(p) for p in changed if p in after))},
    }
    if subresource:
        mine["subresource"] = subresource
    new.setdefault("metadata", {})["managedFields"] = kept + [mine]


def _without_times(obj: dict) -> dict:
    stripped = copy.deepcopy(obj)
    for entry in stripped.get("metadata", {}).get("managedFields") or []:
        entry.pop("time", None)
    return stripped


def _terminated(pod: dict) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all("terminated" in (c.get("state") or {}) for c in statuses)
