"""Deploying: the one place that picks an environment's target (local process or Kubernetes) and wires it."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

from ..config import load_settings
from ..errors import UsageError, VciError
from ..ledger import Ledger, make_record
from ..refs import digest_of, is_image_reference
from ..runs import resolve_run
from ..verification import check_deployable
from .gitops import GitopsTarget
from .kube import KubeTarget
from .local import LocalTarget
from .target import CanaryTarget, Deployable, DeployResult, LogLine, Overview, Removal, Status


def new_release_id() -> str:
    """``r`` + UTC time + 4 hex digits: short, sortable, unique in practice."""
    return "r" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def target_for(settings, env: str | None = None) -> CanaryTarget:
    """The deployment target of ``env``: LocalTarget, KubeTarget or GitopsTarget (the one place that chooses)."""
    environment = settings.environment(env)
    if environment.is_group:  # nothing runs there: its targets do, each reached as itself
        waves = ", ".join(environment.targets or [])
        raise UsageError(
            f"{environment.name!r} is a group of environments, promoted in waves to {waves}",
            hint=f"name one of them: --env {(environment.targets or ['NAME'])[0]}",
        )
    if environment.is_local:
        return LocalTarget(settings, environment)
    if environment.target == "gitops":
        return GitopsTarget(settings, environment)
    return KubeTarget(settings, environment)


def deploy(
    settings,
    what: Deployable,
    env: str | None = None,
    *,
    wait: bool = True,
    timeout: float | None = None,
    dry_run: bool = False,
    **options,
) -> DeployResult:
    """Deploy a run (id or Run), or for a cluster an image by digest, to ``env`` (default staging).

    ``timeout`` (seconds) bounds the whole wait only when given: a cluster rollout otherwise fails when it
    stops making progress (the environment's ``progress_deadline``), and a local server gets 300 s to load.

    The result's ``status`` is ``deployed``, ``unchanged`` (what runs already is this digest) or
    ``would-deploy`` (dry run). Every deploy but a dry run or a refused one is written to the ledger; a run
    that is not in the store is refused (NotFoundError) before the ledger hears of it.
    """
    chosen, release_id = target_for(settings, env), new_release_id()
    if not (isinstance(what, str) and is_image_reference(what)):
        what = resolve_run(settings, what)
    verified = None
    try:
        verified = check_deployable(settings, chosen.environment, what, insecure=options.get("insecure"))
        result = chosen.deploy(what, release_id=release_id, wait=wait, timeout=timeout, dry_run=dry_run, **options)
    except VciError as exc:
        if not dry_run and not isinstance(exc, UsageError):
            _record(settings, chosen, what, release_id, None, exc)
        raise
    if not dry_run:
        _record(settings, chosen, what, release_id, result, None, verified)
    return result


def _record(settings, chosen, what, release_id: str, result: DeployResult | None, error, verified=None) -> None:
    """Write the deploy's ledger record; a ledger that cannot be written is logged, never hides the deploy."""
    image_ref = what if isinstance(what, str) and is_image_reference(what) else None
    asked_run = None if image_ref is not None else getattr(what, "id", None) or str(what)
    status = result.status if result is not None else None
    extra: dict[str, Any] = {"verified": verified.to_json()} if verified is not None else {}
    if result is not None and result.commit:
        extra["commit"] = result.commit
    record = make_record(
        release_id=release_id,
        environment=chosen.environment.name,
        action="deploy",
        outcome="failed" if error is not None else ("unchanged" if status == "unchanged" else "succeeded"),
        digest=(result and result.digest) or (digest_of(image_ref) if image_ref else None),
        run_id=(result and result.run_id) or asked_run,
        image=(result and result.image) or image_ref,
        previous=result.previous if result is not None else None,
        reason=str(error) if error is not None else status,
        **extra,
    )
    try:
        Ledger.for_settings(settings).append(record)
    except VciError as exc:
        logging.getLogger("vci").warning("the release ledger was not written: %s", exc)


def deploy_run(run, env: str | None = None, *, wait: bool = True, **options) -> DeployResult:
    """``run.deploy()``: deploy a Run with the settings it was created with."""
    return deploy(run.settings or load_settings(), run, env, wait=wait, **options)


def status(settings, env: str | None = None) -> Status:
    """What runs in ``env`` now and whether it is ready."""
    return target_for(settings, env).status()


def overview(settings) -> list[Overview]:
    """Every configured environment: its target, what runs there, health, and since when (the ledger's
    record of the release that put it there). One that cannot be asked (a cluster out of reach) says why."""
    rows = []
    for name in sorted(settings.environments):
        environment = settings.environment(name)
        kind = "group" if environment.is_group else environment.target
        try:
            now = target_for(settings, name).status()
        except VciError as exc:
            rows.append(Overview(name, kind, None, None, error=str(exc)))
            continue
        rows.append(Overview(name, kind, now, _since(settings, name, now)))
    return rows


def _since(settings, env: str, now: Status) -> str | None:
    if not now.deployed or not now.release_id:
        return now.started
    try:
        return Ledger.for_settings(settings).get(env, now.release_id).when
    except VciError:  # deployed by hand, or the ledger is out of reach: what the target knows
        return now.started


def logs(settings, env: str | None = None, **options) -> Iterator[LogLine]:
    """The log lines of what runs in ``env`` (``since``: epoch seconds, ``tail``, ``follow``)."""
    return target_for(settings, env).logs(**options)


def undeploy(settings, env: str | None = None, *, dry_run: bool = False) -> Removal:
    """Stop what runs in ``env`` and forget it (``dry_run``: say what would be removed, remove nothing)."""
    return target_for(settings, env).undeploy(dry_run=dry_run)


def deployed_model(settings, env: str | None = None, **client_options):
    """A DeployedModel client for what runs in ``env`` (through the API server's proxy on a cluster)."""
    return target_for(settings or load_settings(), env).client(**client_options)
