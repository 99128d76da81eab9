"""The shadow strategy: the candidate answers a copy of live traffic beside production, and is promoted only
when its answers agree with production's often enough.

``shadow_release`` starts the candidate beside the stable release at no live traffic, tells the stable
servers to mirror a fraction of their answered requests to it (vci.serve.shadow: each server compares and
counts), waits until ``min_requests`` were compared or ``duration`` passed, ends the mirror, removes the
candidate, and judges with ``shadow_gate`` (pure): promote when at least ``min_requests`` were compared
and the disagreement rate is at most ``max_disagreement``; refuse otherwise ("no data" never passes),
production untouched. The summary carries the counts and the mean and p90 /predict latency of both, live
(the stable servers, over the shadow's time) and shadow (the candidate's servers).

A shadow is a handle with ``url``, ``mirror(config | None)``, ``counts()``, ``metrics()``,
``stable_metrics()`` and ``remove()``: on this machine :class:`LocalShadow` (the target's canary slot at
track ``shadow``, the config a file beside the stable server, its counts the servers' stats files); on a
cluster ``KubeTarget.start_shadow``'s (vci.deploy.kubeshadow: a stack of its own, a mounted ConfigMap,
the counts read from the stable pods' /metrics).
"""

from __future__ import annotations

import json
import time

from ..deploy.comparison import from_stats_files
from ..envrules import ShadowPolicy
from ..errors import Aborted
from ..files import write_replacing
from .canary import Snapshot, Tally, quantile

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


class LocalShadow:
    """A shadow on this machine: the target's canary slot at track ``shadow``; the mirror's config a file the
    stable server watches, its counts the stats files the server writes beside it."""

    def __init__(self, target, what, release_id: str, timeout: float | None):
        self.target, self.release_id, self.config = target, release_id, target.shadow_config
        self.canary = target.start_canary(what, release_id=release_id, timeout=timeout, track="shadow")
        self.url = target.canary_status()["url"]

    def mirror(self, config: dict | None) -> None:
        if config is None:
            self.config.unlink(missing_ok=True)
        else:
            config = {**config, "url": self.url, "release_id": self.release_id}
            write_replacing(self.config, json.dumps(config).encode())

    def counts(self) -> dict:
        return from_stats_files(self.config, self.release_id)

    def metrics(self) -> dict[str, str]:
        return self.canary.metrics()

    def stable_metrics(self) -> dict[str, str]:
        return self.canary.stable_metrics()

    def remove(self) -> None:
        self.config.unlink(missing_ok=True)
        self.target.remove_canary()


def start_shadow(target, what, release_id: str, policy: ShadowPolicy, timeout: float | None):
    """The shadow of ``what`` beside ``target``'s stable release, ready, its mirror off."""
    if target.environment.is_local:
        return LocalShadow(target, what, release_id, timeout)
    return target.start_shadow(what, release_id=release_id, fraction=policy.fraction, timeout=timeout)


def remove_shadow(target) -> None:
    """Whatever of a shadow is left on ``target`` (its config first: the mirror stops), production untouched."""
    if target.environment.is_local:
        target.shadow_config.unlink(missing_ok=True)
        target.remove_canary()
    else:
        target.remove_shadow()


def shadow_release(target, what, release_id: str, policy: ShadowPolicy | None, timeout: float | None) -> dict:
    """Shadow ``what`` beside ``target``'s stable release; promote it (``succeeded``) or leave production as it
    was (``rolled-back``). Returns ``{outcome, reason, shadow, endpoint?}``."""
    policy = policy or ShadowPolicy.from_settings(target.environment.shadow)
    promoting = False
    try:
        shadow = start_shadow(target, what, release_id, policy, timeout)
        shadow.mirror({"fraction": policy.fraction, "compare": policy.compare})
        counts = _wait(shadow, policy)
        passed, reason = shadow_gate(counts, policy)
        shadow.mirror(None)
        if passed:
            promoting = True
            deployed = target.deploy(what, release_id=release_id, wait=True, timeout=timeout)
    except Aborted as exc:
        state = "was being moved to the candidate" if promoting else "keeps its release"
        raise Aborted(f"{exc.message}; the shadow ended, {target.environment.name!r} {state}", exc.signum) from None
    finally:
        remove_shadow(target)
    summary = {**counts, "compare": policy.compare, "fraction": policy.fraction}
    if not passed:
        return {"outcome": "rolled-back", "shadow": summary, "reason": f"shadow refused: {reason}"}
    passed_reason = f"shadow passed: {reason}"
    return {"outcome": "succeeded", "shadow": summary, "endpoint": deployed.endpoint, "reason": passed_reason}


def _wait(shadow, policy: ShadowPolicy) -> dict:
    """Poll the stable servers' counts until enough were compared or the duration passed; the counts with
    the latency of both sides over that time."""
    live, candidate = Tally(shadow.stable_metrics()), Tally(shadow.metrics())
    deadline = time.monotonic() + policy.duration
    while True:
        counts = shadow.counts()
        if counts["compared"] >= policy.min_requests or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return {
        **counts,
        **latency("live", live.update(shadow.stable_metrics())),
        **latency("shadow", candidate.update(shadow.metrics())),
    }


def latency(side: str, seen: Snapshot) -> dict:
    """``{side}_latency_ms`` (mean) and ``{side}_p90_ms`` of the model requests ``seen`` (None without any)."""
    p90 = quantile(0.9, seen.buckets)
    return {
        f"{side}_latency_ms": round(seen.seconds / seen.total * 1000, 3) if seen.total else None,
        f"{side}_p90_ms": round(p90 * 1000, 3) if p90 is not None else None,
    }
