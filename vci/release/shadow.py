"""The shadow strategy: the candidate answers a copy of live traffic beside production, and is promoted only
when its answers agree with production's often enough.

``shadow_release`` starts the candidate beside the stable server at no live traffic (the target's canary
slot), tells the stable server to mirror a fraction of its answered requests to it (vci.serve.shadow:
the server compares and counts), waits until ``min_requests`` were compared or ``duration`` passed, ends
the mirror, removes the candidate, and judges with ``shadow_gate`` (pure): promote when at least
``min_requests`` were compared and the disagreement rate is at most ``max_disagreement``; refuse
otherwise ("no data" never passes), production untouched. Local environments only, for now: a cluster's
pods would each need the mirror's config (a mounted ConfigMap), which the target does not render yet.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..envrules import ShadowPolicy
from ..errors import Aborted, ConfigError
from ..files import write_replacing

POLL = 0.25


def shadow_gate(counts: dict, policy: ShadowPolicy) -> tuple[bool, str]:
    """Whether the candidate passes, and why: enough compared, disagreement within bounds."""
    compared, disagreed = counts.get("compared", 0), counts.get("disagreed", 0)
    if compared < policy.min_requests:
        return False, (
            f"only {compared} of the {policy.min_requests} requests needed were compared "
            f"({counts.get('errors', 0)} failed on the candidate, {counts.get('dropped', 0)} dropped): no verdict"
        )
    rate = disagreed / compared
    verdict = "within" if rate <= policy.max_disagreement else "above"
    return rate <= policy.max_disagreement, (
        f"{disagreed} of {compared} answers disagreed ({rate:.1%}, {verdict} max_disagreement "
        f"{policy.max_disagreement:.1%}, compare {policy.compare})"
    )


def summed(stats_files: list[Path]) -> dict:
    """The counts of every server process of the stable release (one stats file each), added up."""
    total: dict = {"compared": 0, "disagreed": 0, "errors": 0, "dropped": 0, "shadow_seconds": 0.0, "disagreements": []}
    for path in stats_files:
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key in ("compared", "disagreed", "errors", "dropped", "shadow_seconds"):
            total[key] += counts.get(key, 0)
        total["disagreements"] += counts.get("disagreements", [])
    total["disagreement_rate"] = total["disagreed"] / total["compared"] if total["compared"] else None
    return total


def shadow_release(target, what, release_id: str, policy: ShadowPolicy | None, timeout: float | None) -> dict:
    """Shadow ``what`` beside ``target``'s stable release; promote it (``succeeded``) or leave production as it
    was (``rolled-back``). Returns ``{outcome, reason, shadow, endpoint?}``."""
    if not target.environment.is_local:
        raise ConfigError(
            f"--strategy shadow runs on local environments only, and {target.environment.name!r} is a cluster's",
            hint="use --strategy canary there",
        )
    policy = policy or ShadowPolicy.from_settings(target.environment.shadow)
    config = target.shadow_config
    promoting = False
    try:
        target.start_canary(what, release_id=release_id, timeout=timeout, track="shadow")
        url = target.canary_status()["url"]
        write_replacing(config, json.dumps({**_config(policy), "url": url, "release_id": release_id}).encode())
        counts = _wait(config, release_id, policy)
        passed, reason = shadow_gate(counts, policy)
        config.unlink(missing_ok=True)
        if passed:
            promoting = True
            deployed = target.deploy(what, release_id=release_id, wait=True, timeout=timeout)
    except Aborted as exc:
        state = "was being moved to the candidate" if promoting else "keeps its release"
        raise Aborted(f"{exc.message}; the shadow ended, {target.environment.name!r} {state}", exc.signum) from None
    finally:
        config.unlink(missing_ok=True)
        target.remove_canary()
    shadow = {**counts, "compare": policy.compare, "fraction": policy.fraction}
    if not passed:
        return {"outcome": "rolled-back", "shadow": shadow, "reason": f"shadow refused: {reason}"}
    return {
        "outcome": "succeeded",
        "shadow": shadow,
        "endpoint": deployed.endpoint,
        "reason": f"shadow passed: {reason}",
    }


def _config(policy: ShadowPolicy) -> dict:
    return {"fraction": policy.fraction, "compare": policy.compare}


def _wait(config: Path, release_id: str, policy: ShadowPolicy) -> dict:
    """Poll the stable server's counts until enough were compared or the duration passed."""
    deadline = time.monotonic() + policy.duration
    while True:
        counts = summed(_stats_of(config, release_id))
        if counts["compared"] >= policy.min_requests or time.monotonic() >= deadline:
            return counts
        time.sleep(POLL)


def _stats_of(config: Path, release_id: str) -> list[Path]:
    """This shadow's stats files (a file of an earlier shadow, or of another release, is not counted)."""
    found = []
    for path in config.parent.glob(f"{config.name}.*.stats.json"):
        try:
            if json.loads(path.read_text()).get("release_id") == release_id:
                found.append(path)
        except (OSError, ValueError):
            continue
    return found
