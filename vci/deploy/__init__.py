"""Deploying: one place that picks the target of an environment (local process or Kubernetes) and wires it."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from ..errors import ConfigError, UsageError

DEFAULT_TIMEOUT = 120.0


def new_release_id() -> str:
    """``r`` + UTC time + 4 hex digits: short, sortable, unique in practice."""
    return "r" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def _local_only(environment) -> None:
    if not environment.is_local:
        raise ConfigError(f"environment {environment.name!r} targets {environment.target}, "
                          "which this vci version cannot deploy to yet",
                          hint=f"set environments.{environment.name}.target: local, or upgrade vci")


def resolve_run(settings, target):
    """A Run object or a run id -> a committed Run; an image reference is refused for local targets."""
    from ..runs import Run, get_run
    if isinstance(target, Run):
        target.commit()
        return target
    if "@sha256:" in str(target) or "/" in str(target):
        raise UsageError(f"{target} is an image reference; a local environment runs a run",
                         hint="deploy a run id, or configure the environment with target: kubernetes")
    return get_run(str(target), settings=settings)


def deploy(settings, target, env: str | None = None, *, wait: bool = True, timeout: float = DEFAULT_TIMEOUT,
           dry_run: bool = False, port: int | None = None) -> dict:
    """Deploy a run (id or Run) to ``env``; returns {environment, digest, release_id, endpoint, ...}.

    Local deployments always wait for readiness before switching, so that a failed start leaves the
    previous deployment serving (``wait`` is accepted for symmetry with cluster targets).
    """
    from . import local
    environment = settings.environment(env)
    _local_only(environment)
    run = resolve_run(settings, target)
    state = Path(settings.state_dir)
    with local.environment_lock(state, environment.name):
        current = local.read_deployment(state, environment.name)
        live = current and local.is_server_process(current.get("pid")) and local.probe_ready(current["url"])
        unchanged = bool(live and current.get("digest") == run.version)
        if dry_run or unchanged:
            return _plan(environment.name, run, current, "unchanged" if unchanged else "would-deploy",
                         dry_run=dry_run)
        model_dir = run.model_dir()
        release_id = new_release_id()
        record = local.start_server(model_dir, state, environment.name, release_id, port)
        local.wait_ready(record, timeout)
        record.update({"environment": environment.name, "digest": run.version, "run_id": run.id,
                       "project": run.project, "release_id": release_id, "model_dir": str(model_dir),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        old = local.replace_deployment(state, environment.name, record)
    return {"environment": environment.name, "digest": run.version, "release_id": release_id,
            "endpoint": record["url"], "run_id": run.id, "status": "deployed",
            "previous": (old or {}).get("digest")}


def _plan(env: str, run, current: dict | None, status: str, *, dry_run: bool) -> dict:
    return {"environment": env, "digest": run.version, "run_id": run.id, "status": status,
            "release_id": (current or {}).get("release_id") if status == "unchanged" else None,
            "endpoint": (current or {}).get("url") if status == "unchanged" else None,
            "previous": (current or {}).get("digest"), "dry_run": dry_run}


def deploy_run(run, env: str | None = None, *, wait: bool = True, **options) -> dict:
    """``run.deploy()``: deploy a Run with the settings it was created with."""
    from ..config import load_settings
    return deploy(run.settings or load_settings(), run, env, wait=wait, **options)


def status(settings, env: str | None = None) -> dict:
    """What runs in ``env`` now and whether it is ready."""
    from . import local
    environment = settings.environment(env)
    _local_only(environment)
    record = local.read_deployment(Path(settings.state_dir), environment.name)
    if record is None:
        return {"environment": environment.name, "state": "not-deployed"}
    alive = local.is_server_process(record.get("pid"))
    ready = alive and local.probe_ready(record["url"])
    return {"environment": environment.name, "state": "ready" if ready else ("unready" if alive else "stopped"),
            "digest": record["digest"], "run_id": record["run_id"], "release_id": record["release_id"],
            "endpoint": record["url"], "pid": record["pid"], "started": record["started"], "log": record["log"]}


def undeploy(settings, env: str | None = None) -> dict:
    from . import local
    environment = settings.environment(env)
    _local_only(environment)
    state = Path(settings.state_dir)
    with local.environment_lock(state, environment.name):
        record = local.remove_deployment(state, environment.name)
    return {"environment": environment.name, "status": "removed", "digest": record["digest"],
            "release_id": record["release_id"]}


def deployed_model(settings, env: str | None = None, **client_options):
    """A DeployedModel client for what runs in ``env``."""
    from ..client import DeployedModel
    from ..config import load_settings
    from . import local
    settings = settings or load_settings()
    environment = settings.environment(env)
    _local_only(environment)
    record = local.require_deployment(Path(settings.state_dir), environment.name)
    return DeployedModel(record["url"], **client_options)
