"""The ``process`` pod backend: each Pod really runs through a test-supplied runner, probed over HTTP.

``runner(pod_spec: dict, port: int) -> handle`` starts the pod's containers (e.g. with runc on the host
network) listening on ``port`` (the runner sets ``VCI_PORT``); the handle has ``stop()`` (end it, by force if
need be), ``alive() -> bool``, ``logs() -> str`` and optionally ``exit_code`` (int or None) and ``terminate()``
(send SIGTERM, return at once: graceful termination needs it). Each pod gets its own free host port, recorded
in the pod annotation ``fake.kube.vci.dev/host-port``; every containerPort (and named port, e.g. ``http``) of
the pod stands for that port, for probes and for the proxies. status.podIP is 127.0.0.1.

Per pod a worker thread: starts the runner (a raising runner counts as a crash), then probes with the real
rules on a compressed clock: each probe runs every ``periodSeconds * time_scale`` seconds (default scale 0.1:
a 10 s period is 1 s), after ``initialDelaySeconds * time_scale``; startupProbe first (until it succeeds;
failureThreshold failures kill), then readinessProbe sets Ready (no readinessProbe: Ready once started),
livenessProbe failures (failureThreshold in a row) kill and restart the container (Warning events Unhealthy,
Normal Killing). A container killed by a signal reports exit code 128 + signal. A dead process is restarted
with back-off (``backoff``, doubling, capped at 8x): restartCount grows, lastState holds the termination,
state is waiting CrashLoopBackOff meanwhile (Warning event BackOff). Deleting the pod or stopping the server
stops its process: a deleted pod gracefully (pods.py: Killing event, the preStop sleep, ``terminate()``, then
``stop()`` once ``deletionGracePeriodSeconds`` have passed since the deletion), a pod removed outright or a
stopped server at once.

A runner with ``pod_context = True`` is called ``runner(pod_spec, port, context)``: ``context.mounts`` maps
each mountPath of the pod's configMap and secret volumes to the host directory the kubelet keeps in step
with the object (volumes.py: a pod whose required source is missing does not start, FailedMount), and
``context.network`` is the file of Service addresses (network.py) that podnet.py makes reachable.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .events import record
from .pods import PODS, container_status, finish_termination, grace_seconds, pod_status, prestop_seconds, write_status
from .store import Store, now_iso
from .volumes import PodVolumes

PORT_ANNOTATION = "fake.kube.vci.dev/host-port"


@dataclass
class PodContext:
    """What a runner with ``pod_context`` gets besides the spec and port (see the module docstring)."""

    mounts: dict[str, str] = field(default_factory=dict)
    network: str | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(spec: dict | None, port: int) -> tuple[bool, str]:
    """(ok, failure message) of one httpGet probe against 127.0.0.1:port; no probe counts as success."""
    get = (spec or {}).get("httpGet")
    if not get:
        return True, ""
    url = f"http://127.0.0.1:{port}{get.get('path') or '/'}"
    try:
        with urllib.request.urlopen(url, timeout=spec.get("timeoutSeconds", 1)) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (OSError, ValueError) as exc:
        return False, f'Get "{url}": {getattr(exc, "reason", exc)}'
    return (200 <= code < 400), f"HTTP probe failed with statuscode: {code}"


class PodWorker(threading.Thread):
    def __init__(self, backend: ProcessBackend, pod: dict, port: int):
        super().__init__(name=f"fake-kube-pod-{pod['metadata']['name']}", daemon=True)
        self.backend, self.pod, self.port = backend, pod, port
        self.container = pod["spec"]["containers"][0]
        self.handle = None
        self.restarts, self.previous_logs, self.last = 0, "", {}
        self.stopped = threading.Event()  # leave the run/restart loop
        self.terminating = threading.Event()  # ... to terminate gracefully (the pod was deleted)
        self.killed = threading.Event()  # ... and end the process now (a forced delete, the server stopping)
        self.started_at: str | None = None
        self.volumes = PodVolumes(backend.store, pod, backend.root / pod["metadata"]["uid"])
        self.synced = 0.0

    def terminate(self) -> None:
        self.terminating.set()
        self.stopped.set()

    def kill(self) -> None:
        self.killed.set()
        self.stopped.set()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.volumes.remove()

    def _mounted(self) -> bool:
        """Wait until every required volume source exists (FailedMount meanwhile); then fill the volumes."""
        while missing := self.volumes.missing():
            record(self.backend.store, self.pod, "Warning", "FailedMount", f"MountVolume.SetUp failed for "
                   f"volume {missing[0]!r}: its configmap or secret not found", "kubelet")  # fmt: skip
            if self.stopped.wait(self.backend.volume_sync):
                return False
        self.volumes.sync()
        self.synced = time.monotonic()
        return True

    def _start(self):
        runner = self.backend.runner
        if not getattr(runner, "pod_context", False):
            return runner(self.pod["spec"], self.port)
        network = self.backend.network.path if self.backend.network is not None else None
        context = PodContext(self.volumes.mounts(self.container), str(network) if network else None)
        return runner(self.pod["spec"], self.port, context)

    def _run(self) -> None:
        if not self._mounted():
            return
        while not self.stopped.is_set():
            started = self.started_at = now_iso()
            try:
                self.handle = self._start()
            except Exception as exc:  # a runner that cannot start the pod: the container "exits" at once
                record(self.backend.store, self.pod, "Warning", "Failed", f"Error: {exc}", "kubelet")
                self.handle = None
            if self.handle is not None:
                self._status(True, False, {"running": {"startedAt": started}})
                self._supervise()
            if self.stopped.is_set():
                break
            self._crashed(started)
        if self.terminating.is_set() and not self.killed.is_set():
            self._shut_down()
        elif self.handle is not None:
            self.handle.stop()

    def _shut_down(self) -> None:
        """The kubelet's graceful stop: preStop sleep, SIGTERM, SIGKILL at the end of the grace period."""
        store, began = self.backend.store, time.monotonic()
        pod = store.find(PODS, self.pod["metadata"]["namespace"], self.pod["metadata"]["name"]) or self.pod
        grace = grace_seconds(pod)
        record(store, pod, "Normal", "Killing", f"Stopping container {self.container['name']}", "kubelet")
        handle = self.handle
        if handle is not None and handle.alive():
            self.killed.wait(min(prestop_seconds(pod), grace))
            if hasattr(handle, "terminate"):
                handle.terminate()
                while handle.alive() and time.monotonic() - began < grace and not self.killed.wait(0.02):
                    pass
            handle.stop()
        code = getattr(handle, "exit_code", None) if handle is not None else 0
        code = 0 if code is None else (128 - code if code < 0 else code)
        if not self.killed.is_set():
            finish_termination(store, pod, code, self.started_at)

    def _supervise(self) -> None:
        """Probe on each probe's own schedule (periodSeconds and initialDelaySeconds times ``time_scale``)."""
        scale, began = self.backend.time_scale, time.monotonic()
        probes = {
            kind: self.container[kind]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
            if self.container.get(kind)
        }
        due = {kind: began + spec.get("initialDelaySeconds", 0) * scale for kind, spec in probes.items()}
        fails = dict.fromkeys(probes, 0)
        started, ready = "startupProbe" not in probes, False
        while not self.stopped.wait(0.02) and self.handle.alive():
            now = time.monotonic()
            if now - self.synced >= self.backend.volume_sync:  # the kubelet's periodic resync of its volumes
                self.volumes.sync()
                self.synced = now
            active = [k for k in probes if (k == "startupProbe") != started and now >= due[k]]
            for kind in active:
                due[kind] = now + max(0.05, probes[kind].get("periodSeconds", 10) * scale)
                ok, why = probe(probes[kind], self.port)
                fails[kind] = 0 if ok else fails[kind] + 1
                if not ok:
                    label = kind.replace("Probe", "").capitalize()
                    record(
                        self.backend.store,
                        self.pod,
                        "Warning",
                        "Unhealthy",
                        f"{label} probe failed: {why}",
                        "kubelet",
                    )
                started = started or (kind == "startupProbe" and ok)
                if kind != "readinessProbe" and fails[kind] >= probes[kind].get("failureThreshold", 3):
                    record(
                        self.backend.store,
                        self.pod,
                        "Normal",
                        "Killing",
                        f"Container {self.container['name']} "
                        f"failed {kind.replace('Probe', '')} probe, will be restarted",
                        "kubelet",
                    )
                    self.handle.stop()
                    return
            now_ready = ready
            if started and "readinessProbe" not in probes:
                now_ready = True
            elif "readinessProbe" in active:
                threshold = probes["readinessProbe"].get("failureThreshold", 3)
                now_ready = fails["readinessProbe"] == 0 or (ready and fails["readinessProbe"] < threshold)
            if now_ready != ready:
                ready = now_ready
                self._status(True, ready, {"running": {"startedAt": now_iso()}})

    def _crashed(self, started: str) -> None:
        self.restarts += 1
        self.previous_logs = self.handle.logs() if self.handle is not None else ""
        code = getattr(self.handle, "exit_code", None) if self.handle is not None else 128
        code = 1 if code is None else (128 - code if code < 0 else code)  # killed by a signal: 128 + signal
        self.last = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now_iso(),
            }
        }
        delay = min(self.backend.backoff * 2 ** (self.restarts - 1), self.backend.backoff * 8)
        name = self.pod["metadata"]["name"]
        message = f"back-off {delay:g}s restarting failed container={self.container['name']} pod={name}"
        self._status(True, False, {"waiting": {"reason": "CrashLoopBackOff", "message": message}})
        record(
            self.backend.store,
            self.pod,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {self.container['name']} in pod {name}",
            "kubelet",
        )
        self.stopped.wait(delay)

    def _status(self, running: bool, ready: bool, state: dict) -> None:
        fresh = self.backend.store.find(PODS, self.pod["metadata"]["namespace"], self.pod["metadata"]["name"])
        if fresh is None or fresh["metadata"]["uid"] != self.pod["metadata"]["uid"]:
            self.stopped.set()
            return
        statuses = [container_status(self.container, state, ready, self.restarts, self.last)]
        write_status(
            self.backend.store,
            fresh,
            pod_status(
                fresh,
                "Running" if running else "Pending",
                statuses,
                fresh.get("status", {}).get("startTime") or now_iso(),
            ),
        )

    def logs(self, previous: bool) -> str:
        if previous:
            return self.previous_logs
        return self.handle.logs() if self.handle is not None else ""


class ProcessBackend:
    """Pods run by ``runner``; see the module docstring."""

    def __init__(
        self, store: Store, runner, time_scale: float = 0.1, backoff: float = 0.5, volume_sync: float = 0.5, **_
    ):
        self.store, self.runner = store, runner
        self.time_scale, self.backoff, self.volume_sync = time_scale, backoff, volume_sync
        self.root = Path(tempfile.mkdtemp(prefix="fake-kube-pods-"))  # the pods' volumes and the network file
        self.network = None  # a network.ServiceNetwork, set by the server (it needs the service proxy)
        self.workers: dict[str, PodWorker] = {}  # pod uid -> worker
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-kube-process-kubelet", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self.workers.values()):
            worker.kill()
        deadline = time.monotonic() + timeout
        for worker in list(self.workers.values()):
            worker.join(max(0.1, deadline - time.monotonic()))
        if self.network is not None:
            self.network.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.network is not None:
                self.network.sync()
            pods = {p["metadata"]["uid"]: p for p in self.store.list(PODS)[0]}
            for uid in set(self.workers) - set(pods):
                self.workers.pop(uid).kill()  # removed outright: the worker stops its process on its way out
            for uid, pod in pods.items():
                if self._stop.is_set():
                    break
                if not pod["metadata"].get("deletionTimestamp"):
                    if uid not in self.workers:
                        self._launch(pod)
                elif uid in self.workers:
                    self.workers[uid].terminate()  # graceful: the worker deletes the pod when done
                else:
                    finish_termination(self.store, pod, 0, None)  # deleted before it was ever started

    def _launch(self, pod: dict) -> None:
        port = free_port()
        meta = pod["metadata"]
        self.store.mutate(
            PODS,
            meta["namespace"],
            meta["name"],
            lambda o: o["metadata"].setdefault("annotations", {}).__setitem__(PORT_ANNOTATION, str(port)),
        )
        pod = self.store.find(PODS, meta["namespace"], meta["name"]) or pod
        containers = [
            container_status(c, {"waiting": {"reason": "ContainerCreating"}}, False) for c in pod["spec"]["containers"]
        ]
        write_status(self.store, pod, pod_status(pod, "Pending", containers, now_iso()))
        worker = PodWorker(self, pod, port)
        self.workers[meta["uid"]] = worker
        worker.start()

    def host_port(self, pod: dict) -> int | None:
        value = (pod["metadata"].get("annotations") or {}).get(PORT_ANNOTATION)
        return int(value) if value else None

    def logs(self, namespace: str, name: str, container: str, previous: bool = False) -> str:
        pod = self.store.find(PODS, namespace, name)
        worker = self.workers.get(pod["metadata"]["uid"]) if pod else None
        return worker.logs(previous) if worker else ""
