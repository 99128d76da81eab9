"""Promotion in waves: a group environment (``targets: [eu, us]``, ``waves: sequential``) is promoted one
target after another, each with its own gate, strategy and analysis, and a failure in any wave rolls
back the waves already done, so that every target ends on one digest, the old one or the new one.

One release: the waves' ledger records share the group's release id (each in its own environment's
ledger, with ``wave: {group, index, of}``), and the group's ledger gets the release's record with each
wave's outcome. A wave that ran nothing before is undeployed when the release is rolled back. Once a wave
is deployed, its ``analysis`` is read again before the next wave starts (for a direct promotion its gate
read it before the deploy; a canary read it at every step).
"""

from __future__ import annotations

from ..deploy import new_release_id, target_for, undeploy
from ..digests import check_digest
from ..errors import Aborted, DeployError, UsageError, VciError
from ..ledger import Ledger, make_record
from .analysis import Analysis
from .promote import live_release, promote, require_approval
from .rollback import rollback


def release(settings, source: str, destination: str, **options) -> dict:
    """``promote`` for an environment, ``promote_waves`` for a group."""
    if settings.environment(destination).is_group:
        return promote_waves(settings, source, destination, **options)
    return promote(settings, source, destination, **options)


def promote_waves(settings, source: str, group: str, *, digest: str | None = None, **options) -> dict:
    """Promote what ``source`` runs to each target of ``group`` in turn (see the module): the group's result
    ``{from, to, digest, release_id, strategy: waves, outcome, waves: [...]}``."""
    group_env = settings.environment(group)
    if settings.environment(source).is_group:
        raise UsageError(f"cannot promote from the group {source!r}", hint="promote from one of its targets")
    require_approval(group_env, options.get("approved_by"))
    live = live_release(target_for(settings, source))
    digest = check_digest(digest or live.digest or "")
    if options.get("dry_run"):
        plans = [promote(settings, source, wave, digest=digest, **options) for wave in group_env.targets or []]
        return _result(source, group, digest, None, "would-promote", "a dry run of every wave", plans)
    release_id, ledger = new_release_id(), Ledger.for_settings(settings)
    claim = ledger.claim(group, holder=f"promote {release_id} in waves")
    try:
        result = _run_waves(settings, source, group_env, digest, release_id, options)
    finally:
        ledger.release_claim(claim)
    ledger.append(_record(result, release_id, options.get("approved_by")))
    if result["outcome"] == "failed":
        raise DeployError(result["reason"], hint=f"`vci history --env {group}` shows each wave")
    return result


def _run_waves(settings, source: str, group_env, digest: str, release_id: str, options: dict) -> dict:
    targets = list(group_env.targets or [])
    done: list[dict] = []
    for index, wave in enumerate(targets, 1):
        before = target_for(settings, wave).status()
        tag = {"group": group_env.name, "index": index, "of": len(targets)}
        try:
            result = promote(settings, source, wave, digest=digest, release_id=release_id, wave=tag, **options)
            if result["outcome"] == "succeeded":
                _check_after(settings, wave)
        except (VciError, Aborted) as exc:
            undone = _roll_back(settings, done, options.get("timeout"))
            waves = [*done, {"environment": wave, "outcome": "failed", "reason": str(exc)}]
            if isinstance(exc, Aborted):
                raise Aborted(f"{exc.message}; {undone}", exc.signum) from None
            why = f"wave {index} of {len(targets)} ({wave!r}) failed: {exc}; {undone}"
            return _result(source, group_env.name, digest, release_id, "failed", why, waves)
        entry = {"environment": wave, "outcome": result["outcome"], "reason": result.get("reason")}
        changed = result["outcome"] == "succeeded"
        done.append({**entry, "previous": before.release_id if before.deployed else None, "changed": changed})
        if result["outcome"] == "rolled-back":
            undone = _roll_back(settings, done[:-1], options.get("timeout"))
            why = f"wave {index} of {len(targets)} ({wave!r}) rolled back its canary: {result['reason']}; {undone}"
            return _result(source, group_env.name, digest, release_id, "rolled-back", why, done)
    return _result(source, group_env.name, digest, release_id, "succeeded", f"every wave runs {digest}", done)


def _check_after(settings, wave: str) -> None:
    """The wave's analysis, read again once it runs the new digest, before the next wave starts."""
    analysis = Analysis.of(settings.environment(wave))
    if analysis is not None:
        passed, why = analysis.check()
        if not passed:
            raise DeployError(f"after the deploy, {why}")


def _roll_back(settings, done: list[dict], timeout) -> str:
    """Put every wave that was changed back on the release it ran before (newest wave first)."""
    restored = []
    for wave in reversed([w for w in done if w["changed"]]):
        name = wave["environment"]
        try:
            if wave["previous"]:
                rollback(settings, name, to=wave["previous"], timeout=timeout)
                restored.append(f"{name!r} back to {wave['previous']}")
            else:
                undeploy(settings, name)
                restored.append(f"{name!r} undeployed (it ran nothing before)")
            wave["outcome"] = "rolled-back"
        except VciError as exc:  # said, not hidden: this wave still runs the new digest
            restored.append(f"{name!r} could NOT be rolled back ({exc}): it still runs the new digest")
    return "rolled back " + ", ".join(restored) if restored else "no earlier wave had changed"


def _result(source, group, digest, release_id, outcome: str, reason: str, waves: list[dict]) -> dict:
    return {
        "from": source,
        "to": group,
        "digest": digest,
        "release_id": release_id,
        "strategy": "waves",
        "outcome": outcome,
        "reason": reason,
        "waves": waves,
    }


def _record(result: dict, release_id: str, approved_by):
    return make_record(
        release_id=release_id,
        environment=result["to"],
        action="promote",
        outcome=result["outcome"],
        digest=result["digest"],
        strategy="waves",
        approver=approved_by,
        source=result["from"],
        reason=result["reason"],
        waves=result["waves"],
    )
