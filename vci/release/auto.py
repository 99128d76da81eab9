"""Automatic promotion (``vci promote --auto``, for a scheduled CI job): what has soaked and is not held.

Into an environment with ``auto_promote: true``, the digest the source runs is promoted (gate, copy,
deploy or canary, record: ``promote.promote``) once it has soaked there (``min_soak``) and unless it is
held in the destination (a rollback from it). What is not promoted yet is an outcome, not an error:
``soaking`` (with when it may go), ``held`` (with the hold), ``unchanged``; none of them is recorded, so
a job run every few minutes leaves the ledger as it was. A group (``targets``) is promoted in waves; a
digest held in the group or in any of its targets is held.
"""

from __future__ import annotations

from typing import Any

from ..deploy import target_for
from ..errors import UsageError
from ..ledger import Ledger
from .holds import Holds
from .promote import check_environments, choose_strategy, live_release, require_digest
from .soak import soak_of
from .waves import release


def promote_auto(settings, source: str, destination: str, *, digest: str | None = None, **options) -> dict:
    """Promote what ``source`` runs to ``destination`` if its policies allow it now (see the module)."""
    src_env, dst_env = settings.environment(source), settings.environment(destination)
    if not dst_env.is_group:
        check_environments(settings, source, destination)
    if not dst_env.auto_promote:
        raise UsageError(
            f"{destination!r} does not take automatic promotions",
            hint=f"set environments.{destination}.auto_promote: true, or promote with --digest",
        )
    live = live_release(target_for(settings, source))
    require_digest(live.digest, digest, source)
    waves = dst_env.targets or [destination]
    running = [target_for(settings, wave).status() for wave in waves]
    current = running[0]
    skipped: dict[str, Any] = {
        "from": source,
        "to": destination,
        "digest": live.digest,
        "run_id": live.run_id,
        "release_id": None,
    }
    strategy = "waves" if dst_env.is_group else choose_strategy(options.get("strategy"), dst_env)
    skipped.update(strategy=strategy, previous=current.digest, auto=True)
    if all(now.digest == live.digest and now.state == "ready" for now in running):
        return {**skipped, "outcome": "unchanged", "reason": f"{destination!r} already runs {live.digest}"}
    holds = Holds.for_settings(settings)
    held = [hold for name in dict.fromkeys([destination, *waves]) for hold in holds.of(name, live.digest)]
    if held:
        return {**skipped, "outcome": "held", "holds": [h.to_json() for h in held], "reason": held_reason(held[0])}
    soak = soak_of(Ledger.for_settings(settings), src_env, live)
    if soak is not None and not soak.done:
        return {**skipped, "outcome": "soaking", "soak": soak.to_json(), "reason": soak.reason()}
    return {**release(settings, source, destination, digest=live.digest, **options), "auto": True}


def held_reason(hold) -> str:
    return (
        f"{hold.digest} is held in {hold.environment!r} ({hold.reason}, by {hold.who} at {hold.when}): "
        f"no automatic promotion; `vci holds lift --env {hold.environment} --digest {hold.digest}` lets it go"
    )
