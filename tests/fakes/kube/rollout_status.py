"""A Deployment's next status from its ReplicaSets and pods, with the real controller's condition rules.

Counts: ``replicas`` = pods of all its ReplicaSets, ``updatedReplicas`` = pods of the current template's,
``readyReplicas``/``availableReplicas`` = Ready pods, ``unavailableReplicas`` = sum of the ReplicaSets'
spec.replicas minus available (never negative); zero counts are omitted, as the real JSON omits them.
Progressing is True/NewReplicaSetAvailable once the rollout is complete (updated = available = replicas =
spec.replicas and the generation observed), True/ReplicaSetUpdated while counts move forward (more updated,
ready or available pods, or fewer old ones), and False/ProgressDeadlineExceeded when the condition's
lastUpdateTime is more than ``progressDeadlineSeconds`` old without completing. A ReplicaFailure condition of
the new ReplicaSet (else of an old one) is copied up, and removed when none is left.
"""

from __future__ import annotations

import datetime

TIME = "%Y-%m-%dT%H:%M:%SZ"


def _condition(kind: str, value: str, reason: str, message: str, stamp: str, previous: dict | None) -> dict:
    keep = previous and previous.get("status") == value
    return {
        "type": kind,
        "status": value,
        "lastUpdateTime": stamp,
        "lastTransitionTime": previous["lastTransitionTime"] if keep else stamp,
        "reason": reason,
        "message": message,
    }


def counts(rollout) -> dict:
    ready = rollout.ready
    new_uid = rollout.new["metadata"]["uid"] if rollout.new else None
    available = sum(ready.values())
    spec_total = sum(r["spec"].get("replicas", 0) for r in rollout.rss)
    return {
        "replicas": sum(len(p) for p in rollout.pods.values()),
        "updatedReplicas": len(rollout.pods.get(new_uid, [])),
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": max(0, spec_total - available),
    }


def _progressed(before: dict, after: dict) -> bool:
    old_before = before.get("replicas", 0) - before.get("updatedReplicas", 0)
    old_after = after["replicas"] - after["updatedReplicas"]
    return (
        after["updatedReplicas"] > before.get("updatedReplicas", 0)
        or old_after < old_before
        or after["readyReplicas"] > before.get("readyReplicas", 0)
        or after["availableReplicas"] > before.get("availableReplicas", 0)
    )


def next_status(rollout, current: dict, now: datetime.datetime) -> dict:
    d = rollout.d
    stamp = now.strftime(TIME)
    numbers = counts(rollout)
    conditions = {c["type"]: c for c in current.get("conditions") or []}
    _, unavailable = _surge_unavailable(d)
    want = rollout.want
    avail_ok = numbers["availableReplicas"] >= want - unavailable
    previous = conditions.get("Available")
    if not previous or previous["status"] != ("True" if avail_ok else "False"):
        conditions["Available"] = _condition(
            "Available",
            "True" if avail_ok else "False",
            "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
            ("Deployment has minimum availability." if avail_ok else "Deployment does not have minimum availability."),
            stamp,
            previous,
        )
    progressing = _progressing(rollout, current, numbers, conditions.get("Progressing"), now, stamp)
    if progressing is not None:
        conditions["Progressing"] = progressing
    failure = _replica_failure(rollout)
    if failure:
        conditions["ReplicaFailure"] = failure
    else:
        conditions.pop("ReplicaFailure", None)
    status = {
        "observedGeneration": d["metadata"].get("generation", 1),
        **numbers,
        "conditions": [conditions[k] for k in ("Available", "Progressing", "ReplicaFailure") if k in conditions],
    }
    if current.get("collisionCount"):
        status["collisionCount"] = current["collisionCount"]
    return {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}


def _progressing(rollout, current, numbers, previous, now, stamp) -> dict | None:
    name = rollout.new["metadata"]["name"] if rollout.new else rollout.d["metadata"]["name"]
    if rollout.d["spec"].get("paused"):
        return previous
    if rollout.progress_note:
        reason, message = rollout.progress_note
        return _condition("Progressing", "True", reason, message, stamp, previous)
    want = rollout.want
    complete = (
        numbers["updatedReplicas"] == want and numbers["replicas"] == want and numbers["availableReplicas"] == want
    )
    if complete:
        if previous and previous.get("reason") == "NewReplicaSetAvailable":
            return previous
        return _condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
            stamp,
            previous,
        )
    if _progressed(current, numbers) or previous is None or previous.get("reason") == "NewReplicaSetAvailable":
        return _condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', stamp, previous
        )
    deadline = rollout.d["spec"].get("progressDeadlineSeconds")
    if deadline is not None and previous.get("reason") != "ProgressDeadlineExceeded":
        updated = datetime.datetime.strptime(previous["lastUpdateTime"], TIME).replace(tzinfo=datetime.timezone.utc)
        if (now - updated).total_seconds() > deadline:
            return _condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
                stamp,
                previous,
            )
    return previous


def _replica_failure(rollout) -> dict | None:
    """The new ReplicaSet's ReplicaFailure (else an old one's) as a Deployment condition, as the controller
    moves it up (ReplicaSetToDeploymentCondition: both times are the ReplicaSet condition's transition)."""
    ordered = ([rollout.new] if rollout.new else []) + [r for r in rollout.rss if r is not rollout.new]
    for rs in ordered:
        for cond in (rs.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure":
                stamp = cond.get("lastTransitionTime")
                return {
                    "type": "ReplicaFailure",
                    "status": cond["status"],
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": cond.get("reason"),
                    "message": cond.get("message"),
                }
    return None


def _surge_unavailable(d: dict):
    from .deployment import surge_and_unavailable

    return surge_and_unavailable(d)
