"""Rollback and history: return an environment to an earlier release by its digest; list its releases."""

from __future__ import annotations

from functools import partial

from ..config import Settings
from ..deploy import new_release_id, target_for
from ..errors import NotFoundError
from ..ledger import Ledger, ReleaseRecord, make_record
from ..runs import resolve_run
from ..verification import check_deployable
from .holds import Holds
from .promote import committed, recorded_attempt

HISTORY_FIELDS = (
    "release_id",
    "when",
    "action",
    "digest",
    "run_id",
    "strategy",
    "who",
    "approver",
    "ci_url",
    "outcome",
)


def choose_release(records: list[ReleaseRecord], current_digest: str | None, to: str | None = None) -> ReleaseRecord:
    """The record to go back to (pure): ``to`` by id, else the newest succeeded one with another digest."""
    if to:
        for record in records:
            if record.release_id == to:
                if not record.digest or record.outcome not in ("succeeded", "unchanged"):
                    raise NotFoundError(
                        f"release {to} ({record.outcome}) never ran, so it cannot be restored",
                        hint="pick a succeeded release from `vci history`",
                    )
                return record
        raise NotFoundError(f"release {to} is not in this environment's ledger", hint="see `vci history`")
    for record in reversed(records):
        if record.outcome == "succeeded" and record.digest and record.digest != current_digest:
            return record
    raise NotFoundError(
        "there is no earlier release with another digest to roll back to",
        hint="see `vci history`; deploy a release explicitly instead",
    )


def rollback(
    settings: Settings,
    env: str | None = None,
    *,
    to: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
    timeout: float | None = None,
    actor: str | None = None,
) -> dict:
    """Deploy an earlier release's digest again: ``{environment, digest, release_id, restored, outcome}``.

    The digest that ran before is held in the environment (``vci.release.holds``) until the hold is lifted.
    ``actor``: who rolls back, the ledger's ``who`` (default: the CI actor, else VCI_USER, else the login).
    """

    target = target_for(settings, env)
    name = target.environment.name
    ledger = Ledger.for_settings(settings)
    current = target.status()
    chosen = choose_release(ledger.records(name), current.digest, to)
    what = chosen.image if not target.environment.is_local else chosen.run_id
    result = {
        "environment": name,
        "digest": chosen.digest,
        "run_id": chosen.run_id,
        "image": chosen.image,
        "restored": chosen.release_id,
        "previous": current.digest,
        "release_id": None,
        "dry_run": dry_run,
    }
    if current.digest == chosen.digest and current.state == "ready":
        return {**result, "outcome": "unchanged", "reason": f"{name!r} already runs {chosen.digest}"}
    if dry_run:
        return {**result, "outcome": "would-roll-back"}
    if what is None:
        field = "run id" if target.environment.is_local else "image"
        raise NotFoundError(
            f"release {chosen.release_id} records no {field} to deploy again",
            hint="pick another release from `vci history` with --to",
        )
    deployable = what if not target.environment.is_local else resolve_run(settings, what)
    verified = check_deployable(settings, target.environment, deployable)  # a rollback verifies too
    release_id = new_release_id()
    record = partial(
        make_record,
        release_id=release_id,
        environment=name,
        action="rollback",
        digest=chosen.digest,
        run_id=chosen.run_id,
        image=chosen.image,
        strategy="direct",
        previous=current.digest,
        restored=chosen.release_id,
        verified=verified.to_json() if verified is not None else None,
        actor=actor,
    )
    reason = f"back to release {chosen.release_id} ({chosen.digest})"

    def work() -> dict:
        if current.digest:  # what is rolled away from is held: `vci promote --auto` brings it back no more
            Holds.for_settings(settings).add(name, current.digest, f"rolled back by {release_id}", release_id)
        deployed = target.deploy(what, release_id=release_id, wait=wait, timeout=timeout)
        done = {"outcome": "succeeded", "reason": reason + committed(deployed), "endpoint": deployed.endpoint}
        return {**done, **({"commit": deployed.commit} if deployed.commit else {})}

    done = recorded_attempt(settings, target, f"rollback {release_id}", record, work, actor=actor)
    return {**result, **done, "release_id": release_id, "held": current.digest}


def history(settings: Settings, env: str | None = None, limit: int | None = None) -> dict:
    """``{environment, releases: [...]}``, newest first."""
    name = settings.environment(env).name
    records = Ledger.for_settings(settings).newest(name, limit, cached=True)
    rows = [{**r.to_json(), "ci_url": (r.ci or {}).get("url")} for r in records]
    return {"environment": name, "releases": rows}
