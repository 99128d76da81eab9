"""Pod backends (the kubelet's part): what happens to a Pod after it is created. ``simulated`` is the default.

``simulated``: a pod is scheduled to node ``fake-node`` at once and becomes Running and Ready ``ready_delay``
seconds later (or after the seconds its container's env var ``FAKE_KUBE_START_SECONDS`` says: an image pull
and a model load take a while), unless a container asks for trouble, by its image name or by the env var
``FAKE_KUBE_BEHAVIOUR`` on the container:

* image containing ``broken`` or ``FAKE_KUBE_BEHAVIOUR=crash``: Running but never Ready; the container
  (back-off doubling from ``ready_delay`` up to 8x, as the kubelet's 10 s .. 5 min) crashes again and again
  (restartCount grows, lastState.terminated exitCode 1 reason Error, state waiting CrashLoopBackOff), with
  Warning events BackOff; its log says it crashed.
* image containing ``unready`` or ``FAKE_KUBE_BEHAVIOUR=unready``: Running, never Ready, Warning events
  Unhealthy ("Readiness probe failed: HTTP probe failed with statuscode: 503").
* image containing ``nonexistent`` or ``FAKE_KUBE_BEHAVIOUR=pull-error``: Pending, waiting ErrImagePull /
  ImagePullBackOff, Warning events Failed ("Failed to pull image ...").

``process`` (processes.py): a test-supplied ``runner(pod_spec, port) -> handle`` really runs each pod. Both
set status.podIP/hostIP to 127.0.0.1 and answer the pod log subresource (``logs``).

Both terminate a deleted pod as the kubelet does: once the pod has a deletionTimestamp (store.py) a Normal
event Killing ("Stopping container NAME"), the containers' preStop hooks (a ``sleep`` action waits its seconds;
here a simulated container's exec or httpGet hook takes no time), then SIGTERM, then SIGKILL once the grace
period (``deletionGracePeriodSeconds``) is over; the container's state becomes terminated (exit code 0 for a
clean exit, 137 when killed) and the kubelet deletes the pod with grace 0. A simulated container exits as soon
as it gets SIGTERM.
"""

from __future__ import annotations

import threading
import time
import uuid

from .events import record
from .resources import BY_KIND
from .store import Store, now_iso

PODS = BY_KIND["Pod"]
BEHAVIOUR_ENV = "FAKE_KUBE_BEHAVIOUR"
START_ENV = "FAKE_KUBE_START_SECONDS"
IMAGE_MARKERS = {"broken": "crash", "unready": "unready", "nonexistent": "pull-error"}


def behaviour_of(container: dict) -> str:
    """``ok``, ``crash``, ``unready`` or ``pull-error`` for a container of the simulated backend."""
    for env in container.get("env") or []:
        if env.get("name") == BEHAVIOUR_ENV and env.get("value"):
            return env["value"]
    image = container.get("image") or ""
    return next((kind for marker, kind in IMAGE_MARKERS.items() if marker in image), "ok")


def prestop_seconds(pod: dict) -> float:
    """The longest preStop ``sleep`` among the pod's containers (0 without one)."""
    hooks = [((c.get("lifecycle") or {}).get("preStop") or {}) for c in pod["spec"]["containers"]]
    return max([float((h.get("sleep") or {}).get("seconds", 0)) for h in hooks] or [0.0])


def grace_seconds(pod: dict) -> float:
    meta = pod["metadata"]
    return float(meta.get("deletionGracePeriodSeconds") or pod["spec"].get("terminationGracePeriodSeconds", 30))


def finish_termination(store: Store, pod: dict, exit_code: int, started: str | None) -> None:
    """The kubelet's end of a pod: containers terminated in its status, then the pod deleted with grace 0."""
    reason = "Completed" if exit_code == 0 else "Error"
    state = {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started or now_iso(),
            "finishedAt": now_iso(),
        }
    }
    containers = [container_status(c, state, False) for c in pod["spec"]["containers"]]
    write_status(
        store, pod, pod_status(pod, "Running", containers, (pod.get("status") or {}).get("startTime") or now_iso())
    )
    try:
        store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], grace=0)
    except Exception:  # gone already (a forced delete, the namespace): nothing left to do
        pass


def start_seconds(pod: dict, default: float) -> float:
    """How long the simulated pod takes to start: its containers' ``FAKE_KUBE_START_SECONDS``, else ``default``."""
    values = [
        float(e["value"])
        for c in pod["spec"]["containers"]
        for e in c.get("env") or []
        if e.get("name") == START_ENV and e.get("value")
    ]
    return max(values) if values else default


def container_status(container: dict, state: dict, ready: bool, restarts: int = 0, last: dict | None = None) -> dict:
    status = {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
        "lastState": last or {},
    }
    if "running" in state or "terminated" in state:
        status["containerID"] = "containerd://" + uuid.uuid4().hex
        status["imageID"] = container["image"]
    return status


def pod_status(pod: dict, phase: str, containers: list[dict], started: str) -> dict:
    """A whole Pod status around the container statuses (conditions derived like the kubelet's)."""
    ready = bool(containers) and all(c["ready"] for c in containers)
    stamp = now_iso()
    previous = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}

    def condition(kind, value, reason=None, message=None):
        old = previous.get(kind)
        cond = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == value else stamp,
        }
        if reason:
            cond.update(reason=reason, message=message)
        return cond

    unready = [c["name"] for c in containers if not c["ready"]]
    why = ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]") if unready else ()
    resources = [c.get("resources") or {} for c in pod["spec"]["containers"]]
    qos = (
        "BestEffort"
        if not any(r.get("requests") or r.get("limits") for r in resources)
        else (
            "Guaranteed"
            if all(r.get("limits") and r.get("requests", r["limits"]) == r["limits"] for r in resources)
            else "Burstable"
        )
    )
    return {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": started,
        "qosClass": qos,
        "conditions": [
            condition("PodReadyToStartContainers", "True"),
            condition("Initialized", "True"),
            condition("Ready", "True" if ready else "False", *why),
            condition("ContainersReady", "True" if ready else "False", *why),
            condition("PodScheduled", "True"),
        ],
        "containerStatuses": containers,
    }


def write_status(store: Store, pod: dict, status: dict) -> bool:
    """Store ``status`` on the pod if it still exists (same uid); False once the pod is gone."""
    uid = pod["metadata"]["uid"]

    def change(obj):
        if obj["metadata"]["uid"] == uid:
            obj["status"] = status

    return store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change, "status") is not None


class SimulatedBackend:
    """Pods that pretend to run: see the module docstring for the rules."""

    def __init__(self, store: Store, ready_delay: float = 0.3, time_scale: float = 0.1, **_):
        self.store = store
        self.ready_delay = ready_delay
        self.crash_period = max(0.2, ready_delay)
        self.seen: dict[str, dict] = {}  # uid -> {"since": monotonic, "restarts": n, "logs": [...]}
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-kube-kubelet", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(min(0.05, self.ready_delay / 3 or 0.05)):
            pods = self.store.list(PODS)[0]
            live_uids = {p["metadata"]["uid"] for p in pods}
            for uid in set(self.seen) - live_uids:
                del self.seen[uid]
            for pod in pods:
                if self.store.closed:
                    break
                if pod["metadata"].get("deletionTimestamp"):
                    self._terminate(pod)
                else:
                    self._advance(pod)

    def _terminate(self, pod: dict) -> None:
        """preStop sleep (at most the grace period), then SIGTERM: a simulated container exits at once."""
        state = self.seen.setdefault(pod["metadata"]["uid"], {"logs": [], "started": now_iso()})
        now = time.monotonic()
        if "stop_at" not in state:
            state["stop_at"] = now + min(prestop_seconds(pod), grace_seconds(pod))
            for container in pod["spec"]["containers"]:
                record(self.store, pod, "Normal", "Killing", f"Stopping container {container['name']}", "kubelet")
        elif now >= state["stop_at"]:
            finish_termination(self.store, pod, 0, state.get("started"))

    def _advance(self, pod: dict) -> None:
        uid, now = pod["metadata"]["uid"], time.monotonic()
        state = self.seen.setdefault(
            uid,
            {
                "since": now,
                "restarts": 0,
                "logs": [],
                "started": now_iso(),
                "next": now + start_seconds(pod, self.ready_delay),
            },
        )
        if not (pod.get("status") or {}).get("conditions"):  # only the API server's Pending so far
            containers = [
                container_status(c, {"waiting": {"reason": "ContainerCreating"}}, False)
                for c in pod["spec"]["containers"]
            ]
            write_status(self.store, pod, pod_status(pod, "Pending", containers, state["started"]))
            record(
                self.store,
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to fake-node",
                "default-scheduler",
            )
            return
        if now < state["next"]:
            return
        state["next"] = now + self.crash_period
        statuses = [self._container(pod, c, state) for c in pod["spec"]["containers"]]
        if any(behaviour_of(c) in ("crash", "pull-error") for c in pod["spec"]["containers"]):  # back-off doubles
            state["next"] = now + min(self.crash_period * 2 ** min(state["restarts"], 6), 8 * self.crash_period)
        phase = (
            "Pending"
            if any(
                "ImagePull" in (s["state"].get("waiting") or {}).get("reason", "")
                or s["state"].get("waiting", {}).get("reason") == "ErrImagePull"
                for s in statuses
            )
            else "Running"
        )
        status = pod_status(pod, phase, statuses, state["started"])
        if _comparable(status) != _comparable(pod.get("status") or {}):
            write_status(self.store, pod, status)

    def _container(self, pod: dict, container: dict, state: dict) -> dict:
        kind, name, image = behaviour_of(container), container["name"], container["image"]
        started = state["started"]
        if not state["logs"]:
            state["logs"].append(f"simulated container {name} started (image {image})\n")
            if kind != "pull-error":
                for reason, text in (
                    ("Pulled", f'Container image "{image}" already present on machine'),
                    ("Created", f"Created container {name}"),
                    ("Started", f"Started container {name}"),
                ):
                    record(self.store, pod, "Normal", reason, text, "kubelet")
        if kind == "crash":
            state["restarts"] += 1
            state["logs"].append(f"Traceback (most recent call last):\nRuntimeError: {name} crashed (simulated)\n")
            record(
                self.store,
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {name} in pod "
                f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                "kubelet",
            )
            last = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": now_iso(),
                }
            }
            waiting = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed "
                    f"container={name} pod={pod['metadata']['name']}_{pod['metadata']['namespace']}",
                }
            }
            return container_status(container, waiting, False, state["restarts"], last)
        if kind == "pull-error":
            message = (
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                f'unpack image "{image}": not found'
            )
            record(self.store, pod, "Warning", "Failed", message, "kubelet")
            reason = "ImagePullBackOff" if state["restarts"] else "ErrImagePull"
            state["restarts"] += 1
            return container_status(container, {"waiting": {"reason": reason, "message": message}}, False)
        if kind == "unready":
            record(
                self.store,
                pod,
                "Warning",
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                "kubelet",
            )
        return container_status(container, {"running": {"startedAt": started}}, kind == "ok")

    def logs(self, namespace: str, name: str, container: str, previous: bool = False) -> str:
        pod = self.store.find(PODS, namespace, name)
        state = self.seen.get(pod["metadata"]["uid"]) if pod else None
        return "".join(state["logs"]) if state else ""


def _comparable(status: dict) -> dict:
    """A status without its volatile parts (timestamps, container ids) to decide whether to write."""
    containers = [
        {k: v for k, v in c.items() if k not in ("containerID", "lastState")}
        for c in status.get("containerStatuses") or []
    ]
    return {
        "phase": status.get("phase"),
        "containers": containers,
        "restarts": [c.get("restartCount") for c in status.get("containerStatuses") or []],
    }


def make_backend(kind: str, store: Store, runner=None, **options):
    if kind == "simulated":
        return SimulatedBackend(store, **options)
    if kind == "process":
        from .processes import ProcessBackend

        if runner is None:
            raise ValueError("the process backend needs runner(pod_spec, port) -> handle")
        return ProcessBackend(store, runner, **options)
    raise ValueError(f"unknown pod backend {kind!r} (simulated or process)")
