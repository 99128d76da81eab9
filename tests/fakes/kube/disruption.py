"""PodDisruptionBudgets at work: the disruption controller's status, and evictions that honour it.

``sync_budget`` (each controller tick) is kube-controller-manager's disruption controller: over the pods
of the PDB's namespace that its selector matches and that are not being deleted, ``expectedPods`` (their
count; the real controller reads the owners' scale, the same once a rollout settles), ``currentHealthy``
(Ready ones), ``desiredHealthy`` (``minAvailable``, or expected minus ``maxUnavailable``; percentages
of expected rounded up), ``disruptionsAllowed`` = max(0, healthy - desired), ``observedGeneration`` and
condition DisruptionAllowed (SufficientPods / InsufficientPods).

``evict`` is ``POST pods/NAME/eviction`` as the API server's eviction REST handles it: a pod being
deleted, or Pending, Succeeded or Failed, goes without consulting any PDB; so does one no PDB selects;
two PDBs selecting it are a 500; a PDB whose status has not caught up with its generation is a 429. A pod
that is not Ready goes when the PDB's ``unhealthyPodEvictionPolicy`` is AlwaysAllow, or (IfHealthyBudget,
the default) when the budget is healthy (currentHealthy >= desiredHealthy > 0); otherwise, and for a
Ready pod, it takes one of ``disruptionsAllowed`` or is refused: 429 TooManyRequests "Cannot evict pod
as it would violate the pod's disruption budget." with cause DisruptionBudget "The disruption budget X
needs D healthy pods and has C currently". An eviction answers 201 with a Success Status.
"""

from __future__ import annotations

import math

from .resources import BY_KIND
from .selectors import selector_matches
from .status import ApiError
from .store import Store, now_iso

PODS, PDBS = BY_KIND["Pod"], BY_KIND["PodDisruptionBudget"]
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _count(value, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(expected * int(value[:-1]) / 100)
    return int(value)


def budget_status(store: Store, pdb: dict) -> dict:
    """What the disruption controller would write into ``pdb.status`` now."""
    spec, meta = pdb["spec"], pdb["metadata"]
    pods = [
        p
        for p in store.list(PODS, meta["namespace"])[0]
        if not p["metadata"].get("deletionTimestamp")
        and selector_matches(spec.get("selector") or {}, p["metadata"].get("labels"))
    ]
    expected, healthy = len(pods), sum(_ready(p) for p in pods)
    if "minAvailable" in spec:
        desired = _count(spec["minAvailable"], expected)
    else:
        desired = max(0, expected - _count(spec.get("maxUnavailable", 0), expected))
    allowed = max(0, healthy - desired)
    old = {c["type"]: c for c in (pdb.get("status") or {}).get("conditions") or []}.get("DisruptionAllowed") or {}
    value = "True" if allowed else "False"
    condition = {
        "type": "DisruptionAllowed",
        "status": value,
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": meta.get("generation", 1),
        "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == value else now_iso(),
    }
    return {
        "observedGeneration": meta.get("generation", 1),
        "expectedPods": expected,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": allowed,
        "conditions": [condition],
    }


def sync_budget(store: Store, pdb: dict) -> None:
    status = budget_status(store, pdb)
    if {k: v for k, v in status.items() if k != "conditions"} != {
        k: v for k, v in (pdb.get("status") or {}).items() if k not in ("conditions", "disruptedPods")
    }:
        meta = pdb["metadata"]
        store.mutate(PDBS, meta["namespace"], meta["name"], lambda obj: obj.__setitem__("status", status), "status")


def _refuse(why: str) -> ApiError:
    return ApiError(429, "TooManyRequests", VIOLATION, {"causes": [{"reason": "DisruptionBudget", "message": why}]})


def evict(store: Store, namespace: str, name: str) -> tuple[int, dict]:
    """One eviction of pod ``name``: ``(201, Status)`` once it is deleted, else an ApiError."""
    pod = store.get(PODS, namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    budgets = [
        b
        for b in store.list(PDBS, namespace)[0]
        if selector_matches(b["spec"].get("selector") or {}, pod["metadata"].get("labels"))
    ]
    if not (pod["metadata"].get("deletionTimestamp") or phase in ("Pending", "Succeeded", "Failed") or not budgets):
        if len(budgets) > 1:
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        _admit(store, budgets[0], pod)
    store.delete(PODS, namespace, name)
    return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _admit(store: Store, pdb: dict, pod: dict) -> None:
    """Return if the budget lets ``pod`` go (taking one disruption for a Ready pod), else raise a 429."""
    status, meta = pdb.get("status") or {}, pdb["metadata"]
    healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
    if not _ready(pod):
        if pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy >= desired > 0:
            return
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        raise _refuse(f"The disruption budget {meta['name']} is still being processed by the server.")
    if status.get("disruptionsAllowed", 0) <= 0:
        raise _refuse(f"The disruption budget {meta['name']} needs {desired} healthy pods and has {healthy} currently")
    store.mutate(
        PDBS,
        meta["namespace"],
        meta["name"],
        lambda obj: obj["status"].__setitem__("disruptionsAllowed", status["disruptionsAllowed"] - 1),
        "status",
    )
