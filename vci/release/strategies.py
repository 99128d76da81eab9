"""Release strategies on a target: direct (one deploy) is the target's own; canary lives here."""

from __future__ import annotations

from ..deploy.target import CanaryTarget
from ..errors import Aborted
from .analysis import Analysis
from .canary import CanaryPolicy, run_steps


def canary_release(
    target: CanaryTarget, what: str, release_id: str, policy: CanaryPolicy | None, inputs: list, timeout: float | None
) -> dict:
    """Run ``what`` as a canary beside the stable release, step by step; promote it fully or remove it.

    Returns ``{outcome, reason, canary}``: ``succeeded`` (stable now runs ``what``, canary removed) or
    ``rolled-back`` (canary removed, stable untouched), with the rule that decided it.
    """
    policy = policy or CanaryPolicy.from_settings(target.environment.canary)
    name, promoting = target.environment.name, False
    try:
        canary = target.start_canary(what, release_id=release_id, timeout=timeout)
        analysis = Analysis.of(target.environment)
        verdict = run_steps(canary, policy, inputs, analysis=analysis.check if analysis else None)
        if verdict["passed"]:
            promoting = True
            deployed = target.deploy(what, release_id=release_id, wait=True, timeout=timeout)
    except Aborted as exc:  # SIGTERM/SIGINT: the canary goes (below) before the process exits
        after = (
            f"{name!r} was being moved to the new release: check `vci status --env {name}`"
            if promoting
            else f"the canary was removed, {name!r} keeps its previous release"
        )
        raise Aborted(f"{exc.message}; {after}", exc.signum) from None
    finally:
        target.remove_canary()
    if not verdict["passed"]:
        return {
            "outcome": "rolled-back",
            "canary": verdict["steps"],
            "reason": f"canary rolled back, {target.environment.name!r} keeps its previous release: "
            f"{verdict['reason']}",
        }
    return {
        "outcome": "succeeded",
        "canary": verdict["steps"],
        "endpoint": deployed.endpoint,
        "reason": f"canary promoted fully: {verdict['reason']}",
    }
