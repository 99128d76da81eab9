"""The horizontal pod autoscaler controller, as far as it acts without a metrics server (there is none here).

Like the real controller, it first keeps the target inside the bounds: a Deployment (or ReplicaSet) with more
than ``maxReplicas`` is scaled down to it, one with fewer than ``minReplicas`` up to it (Normal event
SuccessfulRescale "New size: N; reason: Current number of replicas below Spec.MinReplicas"); a target at 0
replicas is left alone (scaling is disabled). Within the bounds it needs metrics, which never come: condition
ScalingActive is False with reason FailedGetResourceMetric, as on a cluster without metrics-server. Status:
currentReplicas, desiredReplicas, lastScaleTime, conditions AbleToScale and ScalingActive. So a deployer that
sets ``spec.replicas`` below the HPA's minimum sees the HPA win.
"""

from __future__ import annotations

import copy

from .api import record_update
from .events import record
from .resources import BY_KIND
from .store import Store, now_iso

HPAS = BY_KIND["HorizontalPodAutoscaler"]


def _condition(kind: str, value: str, reason: str, message: str, previous: dict) -> dict:
    old = previous.get(kind) or {}
    stamp = old.get("lastTransitionTime") if old.get("status") == value else now_iso()
    return {"type": kind, "status": value, "lastTransitionTime": stamp, "reason": reason, "message": message}


def sync_autoscaler(store: Store, hpa: dict) -> None:
    """One pass over one HorizontalPodAutoscaler."""
    meta, spec = hpa["metadata"], hpa["spec"]
    ref = spec.get("scaleTargetRef") or {}
    resource = BY_KIND.get(ref.get("kind"))
    target = store.find(resource, meta["namespace"], ref.get("name", "")) if resource else None
    previous = {c["type"]: c for c in (hpa.get("status") or {}).get("conditions") or []}
    status = dict(hpa.get("status") or {})
    if target is None:
        message = (
            f"the HPA controller was unable to get the target's current scale: {ref.get('kind', '').lower()}"
            f's.{(ref.get("apiVersion") or "").split("/")[0]} "{ref.get("name")}" not found'
        )
        status["conditions"] = [_condition("AbleToScale", "False", "FailedGetScale", message, previous)]
    else:
        current = target["spec"].get("replicas", 1)
        low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
        desired = high if current > high else low if 0 < current < low else current
        if desired != current:

            def scale(obj: dict) -> None:  # through the scale subresource, as kube-controller-manager
                before = copy.deepcopy(obj)
                obj["spec"]["replicas"] = desired
                record_update(before, obj, "kube-controller-manager", "scale")

            store.mutate(resource, meta["namespace"], ref["name"], scale)
            why = "above Spec.MaxReplicas" if current > high else "below Spec.MinReplicas"
            record(
                store,
                hpa,
                "Normal",
                "SuccessfulRescale",
                f"New size: {desired}; reason: Current number of replicas {why}",
                "horizontal-pod-autoscaler",
            )
            status["lastScaleTime"] = now_iso()
        status.update(currentReplicas=current, desiredReplicas=desired)
        metric = ((spec.get("metrics") or [{}])[0].get("resource") or {}).get("name", "cpu")
        status["conditions"] = [
            _condition(
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
                previous,
            ),
            _condition(
                "ScalingActive",
                "False",
                "FailedGetResourceMetric",
                f"the HPA was unable to compute the replica count: failed to get {metric} utilization: "
                f"unable to get metrics for resource {metric}: no metrics returned from resource metrics "
                "API",
                previous,
            ),
        ]
    if status != (hpa.get("status") or {}):
        store.mutate(HPAS, meta["namespace"], meta["name"], lambda obj: obj.__setitem__("status", status), "status")
