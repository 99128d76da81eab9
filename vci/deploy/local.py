"""The local target: an environment is a model server process on this machine, running a run."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..client import DeployedModel
from ..errors import ConfigError, NotFoundError, RemoteError, UsageError
from ..ledger import now_iso
from ..logview import select_lines
from ..refs import is_image_reference
from ..requirements import differences
from ..runs import resolve_run
from ..serve.shadow import SHADOW_CONFIG
from ..trust import TRUSTED_KEYS_ENV, Policy, keys_to_environ
from . import process
from .comparison import from_stats_files, mirror_config, shown
from .target import DeployResult, LogLine, Removal, Status, kept_view

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
            self._end_window(force=True)  # a new release: a blue-green release's kept stack goes
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
            kept=kept_view(kept, endpoint=kept["url"]) if (kept := self.kept_release()) else None,
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
                self._end_window(force=True)
            self.remove_green()
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
        self._start_beside(self.canary_name, what, release_id, timeout, track)
        return LocalCanary(self, release_id)

    def _start_beside(self, slot: str, what, release_id: str, timeout: float | None, track: str) -> dict:
        """Start a run as a second server process recorded under ``slot`` (the stable one untouched), ready."""
        run = resolve_run(self.settings, what)
        with process.environment_lock(self.state, slot):
            server_env = {**self.server_env, "VCI_TRACK": track}
            record = process.start_server(run.model_dir(), self.state, slot, release_id, settings_env=server_env)
            process.wait_ready(record, timeout or READY_TIMEOUT)
            record.update(
                {
                    "environment": slot,
                    "digest": run.version,
                    "run_id": run.id,
                    "release_id": release_id,
                    "weight": 0,
                    "model_dir": str(run.model_dir()),
                    "started": now_iso(),
                }
            )
            process.replace_deployment(self.state, slot, record)
        return record

    # -- blue-green (driven by vci.release.bluegreen): the candidate's own server, then one switch -------
    @property
    def green_name(self) -> str:
        return f"{self.environment.name}-green"

    @property
    def kept_name(self) -> str:
        return f"{self.environment.name}-previous"

    def start_green(self, what, *, release_id: str, timeout: float | None = None) -> LocalCanary:
        """Start the candidate's whole stack (its own server process) beside production, at no live traffic.
        Its metrics say track stable from the start: after the switch it is production's server (its
        ``release`` label tells it from the previous one meanwhile)."""
        self._start_beside(self.green_name, what, release_id, timeout, "stable")
        return LocalCanary(self, release_id, slot=self.green_name)

    def remove_green(self) -> None:
        """Stop the candidate's server if there is one (production never saw it)."""
        self._remove_slot(self.green_name)

    def switch_to_green(self, keep: float, scale_down: bool = False) -> dict:
        """Point the environment's address (its record: what `vci status`, `vci predict` and the CI read)
        at the candidate in one write. What served before keeps serving for ``keep`` seconds, so clients
        that looked it up before the switch finish there and a rollback is one switch back. ``scale_down``
        is a cluster's: a local server has one size. Returns the kept record."""
        name = self.environment.name
        with process.environment_lock(self.state, name):
            green = process.require_deployment(self.state, self.green_name)
            current = process.require_deployment(self.state, name)
            self._end_window(force=True)
            kept = self._kept(current, keep)
            if kept:
                process.switch_deployment(self.state, self.kept_name, kept)
            process.switch_deployment(self.state, name, {**green, "environment": name})  # the switch
            process.forget_deployment(self.state, self.green_name)
            if not kept:
                process.retire(current, Path(current["work_dir"]).parent)
        return kept or {}

    def switch_back(self, keep: float) -> dict:
        """Point the environment at its kept previous server again (one write); the one switched away from
        is kept in turn for ``keep`` seconds. Returns the record now live."""
        name = self.environment.name
        with process.environment_lock(self.state, name):
            previous = self.kept_release()
            if previous is None:
                raise NotFoundError(f"{name!r} keeps no previous release to switch back to")
            current = process.require_deployment(self.state, name)
            live = {k: v for k, v in previous.items() if k != "kept_until"} | {"environment": name}
            process.switch_deployment(self.state, name, live)  # the switch
            kept = self._kept(current, keep)
            if kept:
                process.switch_deployment(self.state, self.kept_name, kept)
            else:
                process.forget_deployment(self.state, self.kept_name)
                process.retire(current, Path(current["work_dir"]).parent)
        return live

    def kept_release(self) -> dict | None:
        """The previous release's record while its window lasts (its server still running), else None."""
        kept = process.read_deployment(self.state, self.kept_name)
        if kept is None or kept.get("kept_until", 0) <= time.time() or not self._ready(kept):
            return None
        return kept

    def _kept(self, record: dict, keep: float) -> dict | None:
        return {**record, "environment": self.kept_name, "kept_until": time.time() + keep} if keep > 0 else None

    def _end_window(self, force: bool = False) -> None:
        """Stop the kept previous server once its window has passed (or at once with ``force``: a new
        release ends it); called by the environment's next deploy, promotion, rollback or undeploy."""
        kept = process.read_deployment(self.state, self.kept_name)
        if kept is not None and (force or kept.get("kept_until", 0) <= time.time()):
            process.remove_deployment(self.state, self.kept_name)

    def _remove_slot(self, slot: str) -> None:
        with process.environment_lock(self.state, slot):
            if process.read_deployment(self.state, slot) is not None:
                process.remove_deployment(self.state, slot)

    def canary_status(self) -> dict | None:
        return process.read_deployment(self.state, self.canary_name)

    def remove_canary(self) -> None:
        """Stop the canary server if there is one (the stable one keeps serving)."""
        self._remove_slot(self.canary_name)


class LocalCanary:
    """A canary in progress on this machine: a second server process, its share of the traffic applied by
    vci's own weighted split of the requests it sends (a local environment has no load balancer)."""

    def __init__(self, target: LocalTarget, release_id: str, slot: str | None = None):
        self.target, self.release_id = target, release_id
        self.slot = slot or target.canary_name  # the candidate's record: the canary's, or blue-green's green
        self.routed = [0, 0]  # requests sent, of which to the canary

    def set_weight(self, weight: int) -> None:
        """Record the canary's share of traffic (``send`` routes by it); nothing when it holds."""
        state, name = self.target.state, self.slot
        with process.environment_lock(state, name):
            record = process.require_deployment(state, name)
            if record.get("weight") != int(weight):
                process.replace_deployment(state, name, {**record, "weight": int(weight)})

    def metrics(self) -> dict[str, str]:
        return _scrape(process.require_deployment(self.target.state, self.slot))

    def stable_metrics(self) -> dict[str, str]:
        return _scrape(process.require_deployment(self.target.state, self.target.environment.name))

    def send(self, inputs: list, weight: int) -> None:
        """Send ``inputs`` as requests, ``weight`` % of them to the canary. Answers, errors included, are
        counted by the servers."""
        state, target = self.target.state, self.target
        urls = {
            "stable": process.require_deployment(state, target.environment.name)["url"],
            "canary": process.require_deployment(state, self.slot)["url"],
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

    def client(self, **options) -> DeployedModel:
        """A client for the candidate's own server (its smoke test: no live request reaches it)."""
        url = process.require_deployment(self.target.state, self.slot)["url"]
        return DeployedModel(url, served_token(self.target.environment), **options)

    def remove(self) -> None:
        self.target._remove_slot(self.slot)


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
