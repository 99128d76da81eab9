"""Admission of Pods, as the real API server's plugins do it: Pod Security (enforce label) and ResourceQuota.

Every Pod create goes through ``admit`` (the API's and the replicaset controller's alike); a refusal is a 403
Forbidden whose message has the real shape, ``pods "<name or generateName>" is forbidden: <why>``:

* Pod Security admission reads the namespace label ``pod-security.kubernetes.io/enforce`` (``privileged``,
  ``baseline``, ``restricted``; ``enforce-version`` defaults to ``latest``) and answers ``violates PodSecurity
  "restricted:latest": <reason> (<detail>), ...`` with the checks ordered by their ids, as
  k8s.io/pod-security-admission does. Modelled checks: baseline hostNamespaces, privileged, hostPathVolumes,
  hostPorts, capabilities_baseline; restricted adds allowPrivilegeEscalation, capabilities_restricted,
  runAsNonRoot, runAsUser, seccompProfile_restricted, restrictedVolumes (not modelled: AppArmor, SELinux,
  procMount, sysctls, Windows, host probes; the warn and audit modes).
* ResourceQuota: for each quota in the namespace (by name) that tracks a pod resource (``pods``,
  ``count/pods``, ``cpu``/``requests.cpu``, ``limits.cpu``, the memory and ephemeral-storage ones), a Pod that
  leaves out a cpu or memory request or limit the quota tracks is ``failed quota: NAME: must specify
  limits.cpu for: model; ...``, and one that would take usage over ``spec.hard`` is ``exceeded quota: NAME,
  requested: limits.cpu=500m, used: limits.cpu=1, limited: limits.cpu=1`` (k8s.io/apiserver's quota
  evaluator). Usage counts every pod not in a terminal phase, terminating ones included (a terminating pod
  is charged until it is gone). ``sync_quotas`` writes ``status.hard`` and ``status.used`` as the
  resourcequota controller does. LimitRange and webhooks are not modelled.
"""

from __future__ import annotations

from decimal import Decimal

from .quantity import canonical, parse
from .resources import BY_KIND
from .status import ApiError

PODS, NAMESPACES, QUOTAS = BY_KIND["Pod"], BY_KIND["Namespace"], BY_KIND["ResourceQuota"]
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
MUST_SPECIFY = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}


def admit(store, resource, namespace: str, obj: dict, shown_name: str) -> None:
    """Raise the real server's 403 when a plugin refuses ``obj`` (only Pods are judged)."""
    if resource.kind != "Pod":
        return
    why = pod_security(store, namespace, obj) or quota(store, namespace, obj)
    if why:
        raise ApiError(
            403, "Forbidden", f'pods "{shown_name}" is forbidden: {why}', {"name": shown_name, "kind": "pods"}
        )


# -- Pod Security ---------------------------------------------------------------------------------------
def _quote(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _many(word: str, names: list) -> str:
    return f"{word}{'s' if len(names) != 1 else ''} {_quote(names)}"


def _containers(spec: dict) -> list[dict]:
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def _context(container: dict) -> dict:
    return container.get("securityContext") or {}


def _pod_or_containers(spec: dict, key: str, good) -> tuple[list[str], list[str]]:
    """(explicitly bad setters, containers that set nothing while the pod sets nothing good) for ``key``."""
    pod_value = (spec.get("securityContext") or {}).get(key)
    bad = ["pod"] if pod_value is not None and not good(pod_value) else []
    pod_ok = pod_value is not None and good(pod_value)
    explicit = [c["name"] for c in _containers(spec) if _context(c).get(key) is not None and not good(_context(c)[key])]
    implicit = [c["name"] for c in _containers(spec) if _context(c).get(key) is None and not pod_ok]
    return bad + ([_many("container", explicit)] if explicit else []), implicit


def _baseline_checks(spec: dict) -> dict[str, tuple[str, str]]:
    found = {}
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        found["hostNamespaces"] = ("host namespaces", ", ".join(hosts))
    privileged = [c["name"] for c in _containers(spec) if _context(c).get("privileged")]
    if privileged:
        found["privileged"] = (
            "privileged",
            f"{_many('container', privileged)} must not set securityContext.privileged=true",
        )
    host_paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        found["hostPathVolumes"] = ("hostPath volumes", _many("volume", host_paths))
    ports = [(c["name"], p["hostPort"]) for c in _containers(spec) for p in c.get("ports") or [] if p.get("hostPort")]
    if ports:
        found["hostPorts"] = ("hostPort", ", ".join(f'container "{n}" uses hostPort {p}' for n, p in ports))
    added = {
        c["name"]: sorted(set((_context(c).get("capabilities") or {}).get("add") or []) - DEFAULT_CAPABILITIES)
        for c in _containers(spec)
    }
    added = {name: caps for name, caps in added.items() if caps}
    if added:
        caps = sorted({cap for values in added.values() for cap in values})
        found["capabilities_baseline"] = (
            "non-default capabilities",
            f"{_many('container', sorted(added))} must not include {_quote(caps)} in securityContext.capabilities.add",
        )
    return found


def _restricted_checks(spec: dict) -> dict[str, tuple[str, str]]:
    found = {}
    escalating = [c["name"] for c in _containers(spec) if _context(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        found["allowPrivilegeEscalation"] = (
            "allowPrivilegeEscalation != false",
            f"{_many('container', escalating)} must set securityContext.allowPrivilegeEscalation=false",
        )
    no_drop = [
        c["name"] for c in _containers(spec) if "ALL" not in ((_context(c).get("capabilities") or {}).get("drop") or [])
    ]
    adding = [
        c["name"]
        for c in _containers(spec)
        if set((_context(c).get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}
    ]
    details = [f'{_many("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]'] if no_drop else []
    if adding:
        caps = sorted(
            {
                cap
                for c in _containers(spec)
                for cap in (_context(c).get("capabilities") or {}).get("add") or []
                if cap != "NET_BIND_SERVICE"
            }
        )
        details.append(
            f"{_many('container', adding)} must not include {_quote(caps)} in securityContext.capabilities.add"
        )
    if details:
        found["capabilities_restricted"] = ("unrestricted capabilities", "; ".join(details))
    bad, implicit = _pod_or_containers(spec, "runAsNonRoot", lambda v: v is True)
    if bad:
        found["runAsNonRoot"] = (
            "runAsNonRoot != true",
            f"{' and '.join(bad)} must not set securityContext.runAsNonRoot=false",
        )
    elif implicit:
        found["runAsNonRoot"] = (
            "runAsNonRoot != true",
            f"pod or {_many('container', implicit)} must set securityContext.runAsNonRoot=true",
        )
    root, _ = _pod_or_containers(spec, "runAsUser", lambda v: v != 0)
    if root:
        found["runAsUser"] = ("runAsUser=0", f"{' and '.join(root)} must not set runAsUser=0")
    allowed = ("RuntimeDefault", "Localhost")
    bad, implicit = _pod_or_containers(spec, "seccompProfile", lambda v: (v or {}).get("type") in allowed)
    if bad:
        values = sorted(
            {
                (p or {}).get("type", "")
                for p in [(spec.get("securityContext") or {}).get("seccompProfile")]
                + [_context(c).get("seccompProfile") for c in _containers(spec)]
                if p is not None and (p or {}).get("type") not in allowed
            }
        )
        found["seccompProfile_restricted"] = (
            "seccompProfile",
            f"{' and '.join(bad)} must not set securityContext.seccompProfile.type to {_quote(values)}",
        )
    elif implicit:
        found["seccompProfile_restricted"] = (
            "seccompProfile",
            f"pod or {_many('container', implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
        )
    volumes = [
        (v["name"], kind)
        for v in spec.get("volumes") or []
        for kind in v
        if kind != "name" and kind not in RESTRICTED_VOLUMES
    ]
    if volumes:
        found["restrictedVolumes"] = (
            "restricted volume types",
            ", ".join(f'volume "{n}" uses restricted volume type "{k}"' for n, k in volumes),
        )
    return found


def pod_security(store, namespace: str, pod: dict) -> str:
    """``violates PodSecurity "LEVEL:VERSION": ...`` when the namespace's enforce level refuses ``pod``, else ''."""
    ns = store.find(NAMESPACES, "", namespace) or {}
    labels = ns.get("metadata", {}).get("labels") or {}
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    if level not in LEVELS or level == "privileged":
        return ""
    spec = pod.get("spec") or {}
    found = _baseline_checks(spec)
    if level == "restricted":
        found.update(_restricted_checks(spec))
    if not found:
        return ""
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
    detail = ", ".join(f"{reason} ({text})" for _, (reason, text) in sorted(found.items()))
    return f'violates PodSecurity "{level}:{version}": {detail}'


# -- ResourceQuota --------------------------------------------------------------------------------------
def _amount(value) -> Decimal:
    return parse(value)[0]


def container_usage(container: dict) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    usage = {}
    for name in COMPUTE:
        if name in requests:
            usage[name] = usage[f"requests.{name}"] = _amount(requests[name])
        if name in limits:
            usage[f"limits.{name}"] = _amount(limits[name])
    return usage


def pod_usage(pod: dict) -> dict[str, Decimal]:
    usage = {"pods": Decimal(1), "count/pods": Decimal(1)}
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return {"count/pods": Decimal(1)}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for name, value in container_usage(container).items():
            usage[name] = usage.get(name, Decimal(0)) + value
    return usage


def _tracked(quota_obj: dict) -> dict[str, Decimal]:
    hard = (quota_obj.get("spec") or {}).get("hard") or {}
    names = {"pods", "count/pods"} | {p + n for n in COMPUTE for p in ("", "requests.", "limits.")}
    return {name: _amount(value) for name, value in hard.items() if name in names}


def namespace_usage(store, namespace: str, names) -> dict[str, Decimal]:
    used = dict.fromkeys(names, Decimal(0))
    for pod in store.list(PODS, namespace)[0]:
        for name, value in pod_usage(pod).items():
            if name in used:
                used[name] += value
    return used


def _pretty(values: dict[str, Decimal]) -> str:
    return ",".join(f"{name}={canonical(values[name])}" for name in sorted(values))


def quota(store, namespace: str, pod: dict) -> str:
    """The first quota's refusal of ``pod`` (``failed quota: ...`` / ``exceeded quota: ...``), else ''."""
    for rq in store.list(QUOTAS, namespace)[0]:
        hard = _tracked(rq)
        if not hard:
            continue
        name = rq["metadata"]["name"]
        required = MUST_SPECIFY & set(hard)
        missing: dict[str, list[str]] = {}
        for container in (pod.get("spec") or {}).get("containers") or []:
            for resource in sorted(required - set(container_usage(container))):
                missing.setdefault(resource, []).append(container["name"])
        if missing:
            return f"failed quota: {name}: must specify " + "; ".join(
                f"{r} for: {','.join(sorted(c))}" for r, c in sorted(missing.items())
            )
        requested = {k: v for k, v in pod_usage(pod).items() if k in hard and v}
        used = namespace_usage(store, namespace, hard)
        over = sorted(k for k, v in requested.items() if used[k] + v > hard[k])
        if over:
            return (
                f"exceeded quota: {name}, requested: {_pretty({k: requested[k] for k in over})}, "
                f"used: {_pretty({k: used[k] for k in over})}, limited: {_pretty({k: hard[k] for k in over})}"
            )
    return ""


def sync_quotas(store) -> None:
    """The resourcequota controller: ``status.hard`` from the spec, ``status.used`` from the namespace's pods."""
    for rq in store.list(QUOTAS)[0]:
        hard = (rq.get("spec") or {}).get("hard") or {}
        tracked = _tracked(rq)
        used = namespace_usage(store, rq["metadata"]["namespace"], tracked)
        status = {
            "hard": {k: canonical(v) for k, v in hard.items()},
            "used": {k: canonical(v) for k, v in used.items()},
        }
        if rq.get("status") != status:
            store.mutate(
                QUOTAS,
                rq["metadata"]["namespace"],
                rq["metadata"]["name"],
                lambda obj, status=status: obj.__setitem__("status", status),
                "status",
            )
