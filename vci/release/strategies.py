"""Release strategies on a target: direct (one deploy) is the target's own; canary lives here."""

from __future__ import annotations

from .canary import CanaryPolicy, run_steps


def canary_release(
    target, what: str, release_id: str, policy: CanaryPolicy | None, inputs: list,
    timeout: float | None
) -> dict:
    """Run ``what`` as a canary beside the stable release, step by step; promote it fully or remove it.

    Returns ``{outcome, reason, canary}``: ``succeeded`` (stable now runs ``what``, canary removed) or
    ``rolled-back`` (canary removed, stable untouched), with the rule that decided it.
    """
    policy = policy or CanaryPolicy.from_settings(target.environment.get("canary"))
    try:
        target.start_canary(what, release_id=release_id, timeout=timeout)
        verdict = run_steps(target, policy, inputs)
        if verdict["passed"]:
            deployed = target.deploy(what, release_id=release_id, wait=True, timeout=timeout)
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
        "endpoint": deployed.get("endpoint"),
        "reason": f"canary promoted fully: {verdict['reason']}",
    }
