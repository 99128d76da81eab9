"""The local target: an environment is a model server process on this machine, running a run."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..client import DeployedModel
from ..errors import ConfigError, RemoteError, UsageError
from ..logview import select_lines
from ..refs import is_image_reference
from ..requirements import differences
from ..runs import resolve_run
from ..serve.shadow import SHADOW_CONFIG
from ..trust import TRUSTED_KEYS_ENV, Policy, keys_to_environ
from . import process
from .comparison import from_stats_files, mirror_config, shown
from .target import DeployResult, LogLine, Removal, Status

log = logging.getLogger("vci")
READY_TIMEOUT = 300.0  # without a caller's bound: as long as a cluster's startup probe gives a model to load


class LocalTarget:
    """Deploy, inspect and remove the local deployment of one environment."""

    def __init__(self, settings, environment):
        self.settings = settings
        self.environment = environment
        self.state = Path(settings.state_dir)

    @property
    def server_env(self) -> dict:
        """The server's variables: the environment's, and the trusted keys of its ``verify:`` policy, so
        that the server itself refuses a run whose signature does not hold."""
        policy = Policy.of(self.environment, self.settings.base_dir)
        keys = {TRUSTED_KEYS_ENV: keys_to_environ(policy.keys)} if policy and "signature" in policy.require else {}
        return {**self.environment.server_env, **keys}

    def deploy(
        self,
        what,
        *,
        release_id: str,
        wait: bool = True,
        timeout: float | None = None,
        dry_run: bool = False,
        port: int | None = None,
        allow_tag: bool = False,
        insecure=None,
    ) -> DeployResult:
        """Start the run beside what runs now and switch only once it is ready (so ``wait=False`` is
        refused: a switch before readiness would leave a gap)."""
        if not wait:
            raise UsageError(
                f"a local deployment always waits: {self.environment.name!r} switches to the new server only "
                "once it is ready",
                hint="drop --no-wait (wait: false) for a local environment",
            )
        if isinstance(what, str) and is_image_reference(what):
            raise UsageError(
                f"{what} is an image reference; a local environment runs a run",
                hint="deploy a run id, or configure the environment with target: kubernetes",
            )
        run = resolve_run(self.settings, what)
        name = self.environment.name
        differ = differences(run.manifest.get("requirements") or [])
        if differ:
            log.warning(
                "%s runs in this Python environment (a local target installs nothing), which differs from "
                "the run's pins: %s",
                name,
                "; ".join(differ),
            )
        with process.environment_lock(self.state, name):
            current = process.read_deployment(self.state, name)
            unchanged = bool(current and current.get("digest") == run.version and self._ready(current))
            if dry_run or unchanged:
                return _plan(name, run, current, "unchanged" if unchanged else "would-deploy", dry_run)
            model_dir = run.model_dir()
            stable_env = {**self.server_env, SHADOW_CONFIG: str(self.shadow_config)}  # a shadow may mirror it
            record = process.start_server(model_dir, self.state, name, release_id, port, stable_env)
            process.wait_ready(record, timeout or READY_TIMEOUT)
            record.update(
                {
                    "environment": name,
                    "digest": run.version,
                    "run_id": run.id,
                    "project": run.project,
                    "release_id": release_id,
                    "model_dir": str(model_dir),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            old = process.replace_deployment(self.state, name, record)
        return DeployResult(
            environment=name,
            status="deployed",
            digest=run.version,
            run_id=run.id,
            release_id=release_id,
            endpoint=record["url"],
            previous=(old or {}).get("digest"),
        )

    @staticmethod
    def _ready(record: dict) -> bool:
        return process.is_server_process(record.get("pid")) and process.probe_ready(record["url"])

    def status(self) -> Status:
        name = self.environment.name
        record = process.read_deployment(self.state, name)
        if record is None:
            return Status(environment=name, state="not-deployed")
        alive = process.is_server_process(record.get("pid"))
        ready = alive and process.probe_ready(record["url"])
        return Status(
            environment=name,
            state="ready" if ready else ("unready" if alive else "stopped"),
            digest=record["digest"],
            run_id=record["run_id"],
            release_id=record["release_id"],
            endpoint=record["url"],
            pid=record["pid"],
            started=record["started"],
            log=record["log"],
            shadow=self.running_shadow(record) if alive else None,
        )

    def running_shadow(self, record: dict) -> dict | None:
        """The shadow comparison running beside the stable server now (vci.release.shadow), or None."""
        try:
            config = mirror_config(self.shadow_config.read_text())
        except OSError:
            return None
        if config is None:
            return None
        shadow = process.read_deployment(self.state, self.canary_name)
        counts = from_stats_files(self.shadow_config, config["release_id"])
        candidate = shadow["run_id"] if shadow else None
        return shown(config, counts, candidate, _scrape(record), _scrape(shadow) if shadow else {})

    def undeploy(self, *, dry_run: bool = False) -> Removal:
        """Stop the environment's server and forget it; a dry run only reads what it would stop."""
        name = self.environment.name
        if dry_run:
            record = process.read_deployment(self.state, name)
        else:
            with process.environment_lock(self.state, name):
                record = process.read_deployment(self.state, name)
                if record is not None:
                    record = process.remove_deployment(self.state, name)
        if record is None:
            return Removal.nothing(name)
        return Removal(
            environment=name,
            digest=record["digest"],
            release_id=record["release_id"],
            status="would-remove" if dry_run else "removed",
            dry_run=dry_run or None,
            pid=record.get("pid"),
        )

    def client(self, **options):
        """A DeployedModel for the environment's server; a call fails at once once its process is gone."""
        name = self.environment.name
        record = process.require_deployment(self.state, name)

        def down() -> str | None:
            if process.is_server_process(record.get("pid")):
                return None
            return (
                f"the {name} server is not running (process {record.get('pid')} is gone): see "
                f"`vci status --env {name}` and `vci logs --env {name}`"
            )

        options.setdefault("token", served_token(self.environment))
        return DeployedModel(record["url"], down=down, **options)

    def logs(self, *, since: float | None = None, tail: int | None = None, follow: bool = False) -> Iterator[LogLine]:
        """The running server's log file; with ``follow``, its new lines until that server exits."""
        record = process.require_deployment(self.state, self.environment.name)
        path = Path(record["log"])
        with open(path, encoding="utf-8", errors="replace") as log:
            lines = log.readlines()
            for _, line in select_lines([(None, line) for line in lines], since, tail):
                yield LogLine(None, line.rstrip("\n"))
            while follow:
                where = log.tell()
                line = log.readline()
                if line.endswith("\n"):
                    yield LogLine(None, line.rstrip("\n"))
                    continue
                log.seek(where)  # a line still being written is read whole on a later turn
                if not process.is_server_process(record.get("pid")):
                    return
                time.sleep(0.2)

    @property
    def shadow_config(self) -> Path:
        """The file a shadow release writes to make the stable server mirror its traffic (vci.serve.shadow)."""
        return self.state / "shadow" / f"{self.environment.name}.json"

    # -- canary (driven by vci.release.canary): a second server process beside the stable one -----------
    @property
    def canary_name(self) -> str:
        return f"{self.environment.name}-canary"

    def check_canary(self) -> None:
        """Any local environment can run a canary (a second server process)."""

    def start_canary(
        self, what, *, release_id: str, timeout: float | None = None, track: str = "canary"
    ) -> LocalCanary:
        """Start a run as the environment's canary (stable untouched) and wait until it is ready; ``track``
        (``canary``, or ``shadow`` for vci.release.shadow's candidate) labels its metrics."""
        run = resolve_run(self.settings, what)
        with process.environment_lock(self.state, self.canary_name):
            server_env = {**self.server_env, "VCI_TRACK": track}
            record = process.start_server(
                run.model_dir(), self.state, self.canary_name, release_id, settings_env=server_env
            )
            process.wait_ready(record, timeout or READY_TIMEOUT)
            record.update(
                {
                    "environment": self.canary_name,
                    "digest": run.version,
                    "run_id": run.id,
                    "release_id": release_id,
                    "weight": 0,
                    "model_dir": str(run.model_dir()),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            process.replace_deployment(self.state, self.canary_name, record)
        return LocalCanary(self, release_id)

    def canary_status(self) -> dict | None:
        return process.read_deployment(self.state, self.canary_name)

    def remove_canary(self) -> None:
        """Stop the canary server if there is one (the stable one keeps serving)."""
        with process.environment_lock(self.state, self.canary_name):
            if process.read_deployment(self.state, self.canary_name) is not None:
                process.remove_deployment(self.state, self.canary_name)


class LocalCanary:
    """A canary in progress on this machine: a second server process, its share of the traffic applied by
    vci's own weighted split of the requests it sends (a local environment has no load balancer)."""

    def __init__(self, target: LocalTarget, release_id: str):
        self.target, self.release_id = target, release_id
        self.routed = [0, 0]  # requests sent, of which to the canary

    def set_weight(self, weight: int) -> None:
        """Record the canary's share of traffic (``send`` routes by it); nothing when it holds."""
        state, name = self.target.state, self.target.canary_name
        with process.environment_lock(state, name):
            record = process.require_deployment(state, name)
            if record.get("weight") != int(weight):
                process.replace_deployment(state, name, {**record, "weight": int(weight)})

    def metrics(self) -> dict[str, str]:
        return _scrape(process.require_deployment(self.target.state, self.target.canary_name))

    def stable_metrics(self) -> dict[str, str]:
        return _scrape(process.require_deployment(self.target.state, self.target.environment.name))

    def send(self, inputs: list, weight: int) -> None:
        """Send ``inputs`` as requests, ``weight`` % of them to the canary. Answers, errors included, are
        counted by the servers."""
        state, target = self.target.state, self.target
        urls = {
            "stable": process.require_deployment(state, target.environment.name)["url"],
            "canary": process.require_deployment(state, target.canary_name)["url"],
        }
        token = served_token(target.environment)
        clients = {track: DeployedModel(url, token, timeout=10.0, deadline=10.0) for track, url in urls.items()}
        for given in inputs:
            track = "canary" if self.routed[1] < weight / 100 * (self.routed[0] + 1) else "stable"
            self.routed[0] += 1
            self.routed[1] += track == "canary"
            try:
                clients[track].predict(given)
            except RemoteError:
                pass
        for client in clients.values():
            client.close()

    def remove(self) -> None:
        self.target.remove_canary()


def _scrape(record: dict) -> dict[str, str]:
    """A server's /metrics keyed by its process (a restarted server is another one), or {} when it does
    not answer."""
    import urllib.request

    try:
        with urllib.request.urlopen(record["url"] + "/metrics", timeout=5) as resp:
            return {f"pid {record.get('pid')}": resp.read().decode()}
    except OSError:
        return {}


def _plan(env: str, run, current: dict | None, status: str, dry_run: bool) -> DeployResult:
    same = status == "unchanged"
    return DeployResult(
        environment=env,
        status=status,
        digest=run.version,
        run_id=run.id,
        release_id=(current or {}).get("release_id") if same else None,
        endpoint=(current or {}).get("url") if same else None,
        previous=(current or {}).get("digest"),
        dry_run=dry_run,
    )


def served_token(environment) -> str | None:
    """The token a client sends to a local server with ``auth: {token_file}``: VCI_TOKEN when set (the
    client reads it), else the file's first token; None without auth."""
    path = (environment.auth or {}).get("token_file")
    if not path or os.environ.get("VCI_TOKEN"):
        return None
    try:
        lines = Path(path).read_text().split()
    except OSError as exc:
        raise ConfigError(
            f"cannot read environments.{environment.name}.auth.token_file {path}: {exc.strerror or exc}",
            hint="create it with one token a line, or set VCI_TOKEN",
        ) from exc
    return lines[0] if lines else None
