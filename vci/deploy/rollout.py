"""Watching a Deployment's rollout to its end as kubectl does, and explaining a failed one (pods, events, logs).

Whether a rollout failed is the deployment controller's call, read as ``kubectl rollout status`` reads it
(kubectl's ``DeploymentStatusViewer``): nothing in the status counts before ``status.observedGeneration``
reaches ``metadata.generation`` (until then the conditions describe the previous template); then a
Progressing condition with reason ProgressDeadlineExceeded is a failure, and the rollout is done once
``updatedReplicas`` reaches ``spec.replicas``, no old replica is left and every updated one is available.
The controller declares ProgressDeadlineExceeded when ``progressDeadlineSeconds`` pass *without progress*
(the clock restarts with every pod that is created, becomes ready or goes away), so a slow rollout that keeps
moving is never cut short; vci adds no total of its own unless the caller asks for one (``timeout``).

Where kubectl alone would misread the status:

* a condition identical to the one the Deployment carried before vci's write is stale: the controller keeps
  a ProgressDeadlineExceeded while the counts stand still after the template returns to a ReplicaSet that
  exists already (a rollback, the previous version redeployed onto a stalled Deployment);
* pods that admission refuses are never created, so no pod explains them: the controller reports the
  ReplicaSet's refusal as a ReplicaFailure condition (reason FailedCreate, the API server's message). A
  refusal that waiting cannot cure (Pod Security, a quota's missing requests or limits, a LimitRange bound,
  a webhook's denial) fails the rollout at once; others (an exhausted quota frees up as old pods go) are
  named when the deadline passes;
* a status that stays the same for the progress deadline and a fifth more fails the rollout too (a
  controller that is down, or a stale condition that nothing replaces);
* a pod whose model cannot start (its load or its self-test failed: the server logs why, and its probes
  then fail until the deadline, restart after restart) fails the rollout as soon as its log says so.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from .. import logview

TIMED_OUT = "ProgressDeadlineExceeded"
DEFAULT_DEADLINE = 600  # the API server's default progressDeadlineSeconds
# parts of FailedCreate messages that only a change of the template or of the namespace's policy cures
INCURABLE = ("violates PodSecurity", "must specify", " per Container is", " per Pod is", "denied the request")
MODEL_CHECK_EVERY = 1.0  # seconds between looks at the new pods' logs while a rollout goes on
LOG_LINES = 500  # of a pod's log searched for the server's start failure (it comes first, probes after)


@dataclass
class Outcome:
    ok: bool
    reason: str
    details: list[str] = field(default_factory=list)  # one fact a line (why a model cannot start)


def label_selector(deployment: dict) -> str:
    """The Deployment's pod selector as a label-selector string (``app=x,track=stable``)."""
    return ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())


def explain(cluster, deployment: dict, outcome: Outcome) -> str:
    """A failed outcome for people: its reason, then one fact a line (the model's failure, else the
    diagnosis of the pods)."""
    lines = outcome.details or diagnose(cluster, deployment)
    return outcome.reason + "".join(f"\n  {line}" for line in lines)


def condition(deployment: dict | None, kind: str) -> dict | None:
    return next(
        (c for c in ((deployment or {}).get("status") or {}).get("conditions") or [] if c.get("type") == kind), None
    )


def _fresh(cond: dict | None, before: dict | None) -> bool:
    """A condition the controller set after vci's write (not the very one ``before`` carried)."""
    if cond is None:
        return False
    old = condition(before, cond.get("type", ""))
    keys = ("status", "reason", "message", "lastUpdateTime", "lastTransitionTime")
    return old is None or any(old.get(k) != cond.get(k) for k in keys)


def rollout_state(deployment: dict, before: dict | None = None) -> Outcome | None:
    """Done (ok), failed, or still going (None), from the Deployment's status; ``before`` is the Deployment
    as it was before vci's write (its conditions are stale)."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return None  # the controller has not seen this template yet
    failure = condition(deployment, "ReplicaFailure") or {}
    refused = failure.get("message", "") if _fresh(failure, before) and failure.get("status") == "True" else ""
    if refused and any(part in refused for part in INCURABLE):
        return Outcome(False, f"the cluster refuses to create its pods: {refused}")
    progressing = condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == TIMED_OUT and _fresh(progressing, before):
        why = f"progress deadline exceeded: {progressing.get('message', '')}".strip(": ")
        return Outcome(False, why + (f"; pods could not be created: {refused}" if refused else ""))
    want = spec.get("replicas", 1)
    updated, total = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < want or total > updated or available < updated:
        return None
    return Outcome(True, f"{available}/{want} replicas available")


def stall_limit(deployment: dict) -> float:
    """How long an unchanged status may last before vci gives up on the controller: its deadline and a fifth."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or DEFAULT_DEADLINE
    return deadline * 1.2 + 2


def wait_rollout(
    cluster, name: str, namespace: str, *, timeout: float | None = None, before: dict | None = None, poll: float = 0.5
) -> Outcome:
    """Watch the Deployment until its rollout completes or fails; ``timeout`` (seconds) is an overall bound
    only when the caller gives one. ``before``: the Deployment as read before the write being watched."""
    started = changed = time.monotonic()
    seen = None
    while True:
        live = cluster.read("Deployment", name, namespace)
        if live is None:
            return Outcome(False, f"deployment {name} disappeared")
        state = rollout_state(live, before) or model_failure(cluster, live)
        if state is not None:
            return state
        now, status = time.monotonic(), json.dumps(live.get("status") or {}, sort_keys=True)
        if status != seen:
            seen, changed = status, now
        if now - changed > stall_limit(live):
            return Outcome(
                False,
                f"no progress reported for {now - changed:.0f}s "
                f"(progressDeadlineSeconds {live['spec'].get('progressDeadlineSeconds')})",
            )
        if timeout is not None and now - started >= timeout:
            return Outcome(False, f"not complete after {timeout:.0f}s (the overall timeout asked for)")
        budget = stall_limit(live) - (now - changed)
        if timeout is not None:
            budget = min(budget, timeout - (now - started))
        _next_change(cluster, name, namespace, live, min(budget, MODEL_CHECK_EVERY), poll)


def wait_terminated(cluster, deployment: dict, poll: float = 0.5, margin: float = 30.0) -> list[str]:
    """Wait until none of the Deployment's pods is terminating, so that only the new version answers (an old
    pod serves through its preStop delay and drain, and routing reaches it for a while); each pod at most
    until its deletionTimestamp (the end of its grace period) and ``margin`` s more. Returns the pods still
    there then (a lost node keeps them Terminating)."""
    import datetime

    selector = label_selector(deployment)
    while True:
        pods = [
            p
            for p in cluster.core.list_namespaced_pod(
                deployment["metadata"]["namespace"], label_selector=selector
            ).items
            if p.metadata.deletion_timestamp
        ]
        if not pods:
            return []
        last = max(p.metadata.deletion_timestamp for p in pods) + datetime.timedelta(seconds=margin)
        if datetime.datetime.now(datetime.timezone.utc) > last:
            return sorted(p.metadata.name for p in pods)
        time.sleep(poll)


def _next_change(cluster, name: str, namespace: str, live: dict, seconds: float, poll: float) -> None:
    """Return at the Deployment's next change (a watch from the version read), or after ``seconds``."""
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

    wait = max(1, int(seconds))
    try:
        for event in watch.Watch().stream(
            cluster.apps.list_namespaced_deployment,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=live["metadata"]["resourceVersion"],
            timeout_seconds=wait,
            _request_timeout=wait + 5,
        ):
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                return
    except (ApiException, OSError, ValueError):
        time.sleep(poll)  # a broken watch is not a failed rollout: read again


def model_failure(cluster, deployment: dict) -> Outcome | None:
    """A failed Outcome when an unready pod of the new version logged that its model cannot start (load or
    self-test failed: no wait cures the same bytes), with what failed, the exception and the frames of the
    model's code; else None. Read from the pod's log, or its previous container's after a restart."""
    namespace = deployment["metadata"]["namespace"]
    for pod in _unready_new_pods(cluster, deployment)[:3]:
        failure = _start_failure(cluster, namespace, pod)
        if failure is not None:
            return Outcome(
                False,
                f"the model of the new version cannot start (pod {pod.metadata.name})",
                logview.describe_failure(failure),
            )
    return None


def _unready_new_pods(cluster, deployment: dict) -> list:
    """Pods of the new version (its ReplicaSet and image) that are not ready and not going away."""
    namespace = deployment["metadata"]["namespace"]
    selector = label_selector(deployment)
    try:
        pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    except Exception:  # a look at pods is a courtesy: the rollout status decides
        return []
    wanted = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return [
        pod
        for pod in pods
        if _of_new_version(pod, deployment)
        and any(c.image == wanted for c in pod.spec.containers)
        and not pod.metadata.deletion_timestamp
        and not _ready(pod)
    ]


def _start_failure(cluster, namespace: str, pod) -> dict | None:
    failure = logview.start_failure(_log_text(cluster, namespace, pod.metadata.name, LOG_LINES))
    restarted = any((s.restart_count or 0) > 0 for s in (pod.status and pod.status.container_statuses) or [])
    if failure is None and restarted:
        failure = logview.start_failure(_log_text(cluster, namespace, pod.metadata.name, LOG_LINES, True))
    return failure


def diagnose(cluster, deployment: dict, log_lines: int = 10) -> list[str]:
    """Why pods of this Deployment are not ready, one fact a line: container states, conditions, events,
    last log lines (the model's start failure instead, when its log has one); or, when admission let no pod
    of the new version be created, the ReplicaSet's FailedCreate events."""
    namespace = deployment["metadata"]["namespace"]
    selector = label_selector(deployment)
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    notes = []
    for pod in pods:
        if not _of_new_version(pod, deployment) or pod.metadata.deletion_timestamp or _ready(pod):
            continue  # a pod of the previous version, one going away, or one that is fine
        failure = _start_failure(cluster, namespace, pod)
        if failure is not None:
            return [f"pod {pod.metadata.name}:", *logview.describe_failure(failure)]
        notes.extend(_pod_notes(pod))
        notes.extend(_events(cluster, namespace, f"involvedObject.name={pod.metadata.name}"))
        logs = logview.last_lines(_log_text(cluster, namespace, pod.metadata.name, log_lines * 5), log_lines)
        if logs:
            notes.append(f"pod {pod.metadata.name} last log lines:")
            notes.extend(f"  {line}" for line in logs)
        break  # one failing pod explains the rollout; more would only repeat it
    return notes or _refusals(cluster, deployment) or ["no pod of the new version was found"]


def _of_new_version(pod, deployment: dict) -> bool:
    """Whether ``pod`` belongs to the new ReplicaSet (named in the Progressing condition), else has its image."""
    match = re.search(r'[Rr]eplica ?[Ss]et "([^"]+)"', (condition(deployment, "Progressing") or {}).get("message", ""))
    if match:
        return pod.metadata.name.startswith(match.group(1) + "-")
    wanted = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return any(c.image == wanted for c in pod.spec.containers)


def _ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _refusals(cluster, deployment: dict) -> list[str]:
    """The ReplicaSets' FailedCreate events (admission's refusals), newest first."""
    prefix = deployment["metadata"]["name"] + "-"
    return _events(
        cluster,
        deployment["metadata"]["namespace"],
        "involvedObject.kind=ReplicaSet,reason=FailedCreate",
        keep=lambda e: e.involved_object.name.startswith(prefix),
    )


def _pod_notes(pod) -> list[str]:
    notes = []
    for status in pod.status.container_statuses or []:
        state = status.state
        if state and state.waiting:
            notes.append(
                f"pod {pod.metadata.name}: {state.waiting.reason} ({state.waiting.message or ''})".rstrip(" ()")
            )
        if status.last_state and status.last_state.terminated:
            t = status.last_state.terminated
            notes.append(f"pod {pod.metadata.name} exited {t.exit_code} ({t.reason}), restarts {status.restart_count}")
    for cond in pod.status.conditions or []:
        if cond.status != "True" and cond.message:
            notes.append(f"pod {pod.metadata.name} {cond.type}: {cond.message}")
    return notes


def _events(cluster, namespace: str, field_selector: str, keep=lambda _e: True) -> list[str]:
    try:
        events = cluster.core.list_namespaced_event(namespace, field_selector=field_selector).items
    except Exception:  # events are a courtesy: never let them hide the real failure
        return []
    warnings = [e for e in events if e.type == "Warning" and keep(e)]
    return [
        f"event {e.reason}" + (f" (x{e.count})" if (e.count or 1) > 1 else "") + f": {e.message}" for e in warnings[-3:]
    ]


def _log_text(cluster, namespace: str, pod_name: str, lines: int, previous: bool = False) -> str:
    """The last ``lines`` of a pod's log (its previous container's with ``previous``), '' when unreadable."""
    try:
        raw = cluster.core.read_namespaced_pod_log(
            pod_name, namespace, tail_lines=lines, previous=previous, _preload_content=False
        ).data
    except Exception:  # as above: a missing log must not mask the diagnosis
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
