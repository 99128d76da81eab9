"""Watching a Deployment's rollout to its end, and explaining a failed one (pods, events, container logs)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Outcome:
    ok: bool
    reason: str


def rollout_state(deployment: dict) -> Outcome | None:
    """Done (ok), failed (progress deadline exceeded) or still going (None), from the Deployment's status."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    generation = deployment["metadata"].get("generation", 0)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Outcome(False, f"progress deadline exceeded: {cond.get('message', '')}".strip(": "))
    if status.get("observedGeneration", 0) < generation:
        return None
    want = spec.get("replicas", 1)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated >= want and available >= want and total <= want and not status.get("unavailableReplicas"):
        return Outcome(True, f"{available}/{want} replicas available")
    return None


def wait_rollout(cluster, name: str, namespace: str, timeout: float, poll: float = 0.5) -> Outcome:
    """Watch the Deployment until its rollout completes, fails, or ``timeout`` passes."""
    from kubernetes import watch
    from kubernetes.client.rest import ApiException
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = cluster.read("Deployment", name, namespace)
        if live is None:
            return Outcome(False, f"deployment {name} disappeared")
        state = rollout_state(live)
        if state is not None:
            return state
        remaining = max(1, int(deadline - time.monotonic()))
        try:
            for event in watch.Watch().stream(cluster.apps.list_namespaced_deployment, namespace,
                                              field_selector=f"metadata.name={name}",
                                              resource_version=live["metadata"]["resourceVersion"],
                                              timeout_seconds=min(remaining, 10), _request_timeout=remaining + 5):
                obj = cluster.api_client.sanitize_for_serialization(event["object"])
                if event["type"] in ("ADDED", "MODIFIED") and rollout_state(obj) is not None:
                    break
        except (ApiException, OSError, ValueError):
            time.sleep(poll)  # a broken watch is not a failed rollout: read again
    return Outcome(False, f"not complete after {timeout:.0f}s")


def diagnose(cluster, deployment: dict, log_lines: int = 10) -> str:
    """Why pods of this Deployment are not ready: container states, conditions, events, last log lines."""
    namespace = deployment["metadata"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
    wanted = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    notes = []
    for pod in pods:
        if not any(c.image == wanted for c in pod.spec.containers):
            continue  # a pod of the previous, good version
        notes.extend(_pod_notes(pod))
        notes.extend(_events(cluster, namespace, pod.metadata.name))
        logs = _logs(cluster, namespace, pod.metadata.name, log_lines)
        if logs:
            notes.append(f"pod {pod.metadata.name} last log lines: {logs}")
        break  # one failing pod explains the rollout; more would only repeat it
    return "; ".join(notes) or "no pod of the new version was found"


def _pod_notes(pod) -> list[str]:
    notes = []
    for status in pod.status.container_statuses or []:
        state = status.state
        if state and state.waiting:
            notes.append(f"pod {pod.metadata.name}: {state.waiting.reason} ({state.waiting.message or ''})".rstrip(" ()"))
        if status.last_state and status.last_state.terminated:
            t = status.last_state.terminated
            notes.append(f"pod {pod.metadata.name} exited {t.exit_code} ({t.reason}), restarts {status.restart_count}")
    for cond in pod.status.conditions or []:
        if cond.status != "True" and cond.message:
            notes.append(f"pod {pod.metadata.name} {cond.type}: {cond.message}")
    return notes


def _events(cluster, namespace: str, pod_name: str) -> list[str]:
    try:
        events = cluster.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod_name}").items
    except Exception:  # events are a courtesy: never let them hide the real failure
        return []
    return [f"event {e.reason}: {e.message}" for e in events[-3:] if e.type == "Warning"]


def _logs(cluster, namespace: str, pod_name: str, lines: int) -> str:
    try:
        text = cluster.core.read_namespaced_pod_log(pod_name, namespace, tail_lines=lines)
    except Exception:  # as above: a missing log must not mask the diagnosis
        return ""
    return " | ".join(line for line in (text or "").splitlines()[-lines:] if line.strip())
