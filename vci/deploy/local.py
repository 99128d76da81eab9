"""The local target: an environment is a model server process on this machine, running a run."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import UsageError
from . import process

READY_TIMEOUT = 300.0  # without a caller's bound: as long as a cluster's startup probe gives a model to load


class LocalTarget:
    """Deploy, inspect and remove the local deployment of one environment."""

    def __init__(self, settings, environment):
        self.settings = settings
        self.environment = environment
        self.state = Path(settings.state_dir)

    def deploy(self, target, *, release_id: str, wait: bool = True, timeout: float | None = None,
               dry_run: bool = False, port: int | None = None, allow_tag: bool = False, insecure=None) -> dict:
        """Start the run beside what runs now and switch only once it is ready (``wait`` is always honoured
        as True: a switch before readiness would leave a gap)."""
        from . import resolve_run
        if _is_image(target):
            raise UsageError(f"{target} is an image reference; a local environment runs a run",
                             hint="deploy a run id, or configure the environment with target: kubernetes")
        run = resolve_run(self.settings, target)
        name = self.environment.name
        with process.environment_lock(self.state, name):
            current = process.read_deployment(self.state, name)
            unchanged = bool(current and current.get("digest") == run.version and self._ready(current))
            if dry_run or unchanged:
                return _plan(name, run, current, "unchanged" if unchanged else "would-deploy", dry_run)
            model_dir = run.model_dir()
            record = process.start_server(model_dir, self.state, name, release_id, port)
            process.wait_ready(record, timeout or READY_TIMEOUT)
            record.update({"environment": name, "digest": run.version, "run_id": run.id, "project": run.project,
                           "release_id": release_id, "model_dir": str(model_dir),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            old = process.replace_deployment(self.state, name, record)
        return {"environment": name, "digest": run.version, "release_id": release_id, "endpoint": record["url"],
                "run_id": run.id, "status": "deployed", "previous": (old or {}).get("digest")}

    @staticmethod
    def _ready(record: dict) -> bool:
        return process.is_server_process(record.get("pid")) and process.probe_ready(record["url"])

    def status(self) -> dict:
        name = self.environment.name
        record = process.read_deployment(self.state, name)
        if record is None:
            return {"environment": name, "state": "not-deployed"}
        alive = process.is_server_process(record.get("pid"))
        ready = alive and process.probe_ready(record["url"])
        return {"environment": name, "state": "ready" if ready else ("unready" if alive else "stopped"),
                "digest": record["digest"], "run_id": record["run_id"], "release_id": record["release_id"],
                "endpoint": record["url"], "pid": record["pid"], "started": record["started"], "log": record["log"]}

    def undeploy(self) -> dict:
        name = self.environment.name
        with process.environment_lock(self.state, name):
            record = process.remove_deployment(self.state, name)
        return {"environment": name, "status": "removed", "digest": record["digest"],
                "release_id": record["release_id"]}

    def client(self, **options):
        from ..client import DeployedModel
        record = process.require_deployment(self.state, self.environment.name)
        return DeployedModel(record["url"], **options)

    # -- canary (driven by vci.release.canary): a second server process beside the stable one -----------
    @property
    def canary_name(self) -> str:
        return f"{self.environment.name}-canary"

    def start_canary(self, target, *, release_id: str, timeout: float | None = None) -> dict:
        """Start a run as the environment's canary (stable untouched) and wait until it is ready."""
        from . import resolve_run
        run = resolve_run(self.settings, target)
        with process.environment_lock(self.state, self.canary_name):
            record = process.start_server(run.model_dir(), self.state, self.canary_name, release_id)
            process.wait_ready(record, timeout or READY_TIMEOUT)
            record.update({"environment": self.canary_name, "digest": run.version, "run_id": run.id,
                           "release_id": release_id, "weight": 0, "model_dir": str(run.model_dir()),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            process.replace_deployment(self.state, self.canary_name, record)
        self._routed = [0, 0]
        return record

    def set_canary_weight(self, weight: int) -> None:
        """Record the canary's share of traffic (``canary_traffic`` routes by it)."""
        with process.environment_lock(self.state, self.canary_name):
            record = process.require_deployment(self.state, self.canary_name)
            process.replace_deployment(self.state, self.canary_name, {**record, "weight": int(weight)})

    def canary_metrics(self) -> str:
        """The canary server's Prometheus exposition."""
        import urllib.request
        record = process.require_deployment(self.state, self.canary_name)
        with urllib.request.urlopen(record["url"] + "/metrics", timeout=5) as resp:
            return resp.read().decode()

    def canary_traffic(self, inputs: list, weight: int) -> None:
        """Send ``inputs`` as requests, ``weight`` % of them to the canary (a local environment has no load
        balancer: this weighted split is the router). Answers, errors included, are counted by the servers."""
        from ..client import DeployedModel
        from ..errors import RemoteError
        urls = {"stable": process.require_deployment(self.state, self.environment.name)["url"],
                "canary": process.require_deployment(self.state, self.canary_name)["url"]}
        clients = {track: DeployedModel(url, timeout=10.0, deadline=10.0) for track, url in urls.items()}
        routed = getattr(self, "_routed", None) or [0, 0]
        for given in inputs:
            track = "canary" if routed[1] < weight / 100 * (routed[0] + 1) else "stable"
            routed[0] += 1
            routed[1] += track == "canary"
            try:
                clients[track].predict(given)
            except RemoteError:
                pass
        for client in clients.values():
            client.close()
        self._routed = routed

    def canary_status(self) -> dict | None:
        return process.read_deployment(self.state, self.canary_name)

    def remove_canary(self) -> dict | None:
        """Stop the canary server (the stable one keeps serving); None when there was none."""
        with process.environment_lock(self.state, self.canary_name):
            if process.read_deployment(self.state, self.canary_name) is None:
                return None
            return process.remove_deployment(self.state, self.canary_name)


def _is_image(target) -> bool:
    return isinstance(target, str) and ("@sha256:" in target or "/" in target)


def _plan(env: str, run, current: dict | None, status: str, dry_run: bool) -> dict:
    same = status == "unchanged"
    return {"environment": env, "digest": run.version, "run_id": run.id, "status": status,
            "release_id": (current or {}).get("release_id") if same else None,
            "endpoint": (current or {}).get("url") if same else None,
            "previous": (current or {}).get("digest"), "dry_run": dry_run}
