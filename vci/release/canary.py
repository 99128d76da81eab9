"""Canary releases: read a canary's /metrics, judge each step by its rules, and drive the steps.

The controller is target-neutral: it drives the ``Canary`` handle a target's ``start_canary`` returns
(``vci.deploy.target``): ``set_weight`` (called again at every check: a no-op unless the stable release
changed size), ``metrics`` and ``stable_metrics`` (``{server: Prometheus text}``, one entry per pod that
answered the scrape) and ``send`` (example requests, split by the weight as the environment would). Each
step holds for ``interval`` and then needs ``min_requests`` canary requests: "no data" never passes, so
when too few arrive the controller sends the logged examples as traffic until enough have, or the step
times out and the canary is rolled back.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import CanaryPolicy  # the environment's canary: settings, checked when they load
from ..deploy.target import Canary

MODEL_ROUTES = ("/predict", "/batch-predict", "/vci.Model/Predict", "/vci.Model/BatchPredict")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
Check = Callable[[], tuple[bool, str]]  # a further rule read at the end of each step: (passed, why)
COUNTERS = ("vci_requests_total", "vci_request_duration_seconds_bucket", "vci_request_duration_seconds_sum")


@dataclass
class Snapshot:
    """Model-route counters: requests by status class, latency buckets, latency sum."""

    total: int = 0
    errors: int = 0
    buckets: dict[float, int] = field(default_factory=dict)  # upper bound -> cumulative count
    seconds: float = 0.0


Series = dict[tuple[str, tuple], float]  # (metric name, sorted label pairs) -> value


def parse_series(text: str) -> Series:
    """The model routes' counter series from a vci server's Prometheus exposition."""
    series: Series = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group("name") not in COUNTERS:
            continue
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        if labels.get("route") in MODEL_ROUTES:
            series[(match.group("name"), tuple(sorted(labels.items())))] = float(match.group("value"))
    return series


def snapshot(series: Series) -> Snapshot:
    """Sum counter series (from one server or added over many) into a Snapshot."""
    snap = Snapshot()
    for (name, pairs), value in series.items():
        labels = dict(pairs)
        if name == "vci_requests_total":
            snap.total += int(value)
            if labels.get("status", "0")[0] in "45":
                snap.errors += int(value)
        elif name == "vci_request_duration_seconds_bucket":
            le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            snap.buckets[le] = snap.buckets.get(le, 0) + int(value)
        else:
            snap.seconds += value
    return snap


def parse_metrics(text: str) -> Snapshot:
    """The model routes' counters from one scrape of a vci server."""
    return snapshot(parse_series(text))


def increase(before: Series, now: Series) -> Series:
    """What one server counted between two scrapes, with Prometheus's reset rule (``rate``/``increase``):
    a counter that went down restarted from 0, so all of its value is new. A vci server never drops a
    series, so one that went down or vanished means the process restarted: then every series counts
    from 0."""
    restarted = any(now.get(key, -1.0) < value for key, value in before.items())
    if restarted:
        return dict(now)
    return {key: value - before.get(key, 0.0) for key, value in now.items()}


class Tally:
    """What a set of servers (pods) counted since the tally began, scrape by scrape, server by server.

    Counters are differenced per server, never summed first: a pod missing from one scrape (not
    reachable) keeps what it counted, a restarted pod counts from 0 again, a pod first seen later counts
    from its first scrape (as a series that appears inside a Prometheus range)."""

    def __init__(self, scrapes: dict[str, str]):
        self.last = {name: parse_series(text) for name, text in scrapes.items()}
        self.gained: Series = {}

    def update(self, scrapes: dict[str, str]) -> Snapshot:
        for name, text in scrapes.items():
            now = parse_series(text)
            if name in self.last:
                for key, value in increase(self.last[name], now).items():
                    self.gained[key] = self.gained.get(key, 0.0) + value
            self.last[name] = now
        return self.seen()

    def seen(self) -> Snapshot:
        return snapshot(self.gained)


def quantile(q: float, buckets: dict[float, int]) -> float | None:
    """``histogram_quantile``: linear interpolation inside the bucket holding the q-th observation."""
    bounds = sorted(buckets)
    count = buckets.get(math.inf, buckets[bounds[-1]] if bounds else 0)
    if not count:
        return None
    rank, lower, below = q * count, 0.0, 0
    for le in bounds:
        if buckets[le] >= rank:
            if le == math.inf:
                return lower
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1)
        lower, below = le, buckets[le]
    return lower


def judge(step: Snapshot, policy: CanaryPolicy) -> tuple[bool, str]:
    """``(passed, why)`` for one step's canary traffic (pure)."""
    if step.total < policy.min_requests:
        return False, f"no data: {step.total} canary requests, at least {policy.min_requests} needed"
    rate = step.errors / step.total
    p90 = quantile(0.9, step.buckets)
    p90_ms = None if p90 is None else p90 * 1000
    avg_ms = step.seconds / step.total * 1000
    seen = f"error rate {rate:.2%}, p90 {p90_ms:.0f} ms, average {avg_ms:.0f} ms over {step.total} requests"
    if rate > policy.max_error_rate:
        return False, f"error rate {rate:.2%} > {policy.max_error_rate:.2%} ({seen})"
    if policy.max_p90_latency_ms is not None and p90_ms is not None and p90_ms > policy.max_p90_latency_ms:
        return False, f"p90 latency {p90_ms:.0f} ms > {policy.max_p90_latency_ms:g} ms ({seen})"
    if policy.max_avg_latency_ms is not None and avg_ms > policy.max_avg_latency_ms:
        return False, f"average latency {avg_ms:.0f} ms > {policy.max_avg_latency_ms:g} ms ({seen})"
    return True, seen


def run_steps(
    canary: Canary,
    policy: CanaryPolicy,
    inputs: list,
    *,
    sleep=time.sleep,
    clock=time.monotonic,
    analysis: Check | None = None,
) -> dict:
    """Drive the canary (already started at the first step) through ``policy.steps``; ``analysis`` (the
    environment's Prometheus query, ``vci.release.analysis``) is read at the end of every step too.

    Returns ``{"passed": bool, "reason": str, "steps": [{weight, passed, reason, served, requests}, ...]}``;
    the caller promotes fully or removes the canary.
    """
    steps = []
    for weight in policy.steps:
        if weight >= 100:
            break
        canary.set_weight(weight)
        step = observe_step(canary, policy, weight, inputs, sleep=sleep, clock=clock, analysis=analysis)
        steps.append(step)
        if not step["passed"]:
            return {"passed": False, "reason": f"step {weight}%: {step['reason']}", "steps": steps}
    return {
        "passed": True,
        "reason": "every step passed: " + "; ".join(f"{s['weight']}%: {s['reason']}" for s in steps),
        "steps": steps,
    }


def observe_step(
    canary: Canary, policy: CanaryPolicy, weight: int, inputs: list, *, sleep, clock, analysis: Check | None = None
) -> dict:
    """Hold one step for ``interval``, sending examples while too little traffic reaches the canary.

    At every check the canary is resized against the stable release's current size (its autoscaler may
    have changed it), so the weight holds through the step. The result says what share of the step's
    requests the canary answered (its own counters against the stable pods'): connection-level load
    balancing can give it more or less than its weight."""
    counted, stable = Tally(canary.metrics()), Tally(canary.stable_metrics())
    began, last = clock(), 0
    while True:
        seen = counted.update(canary.metrics())
        stable.update(canary.stable_metrics())  # at every check too: pods the HPA adds count from their first
        held = clock() - began
        if held >= max(policy.step_timeout, policy.interval) or (
            held >= policy.interval and seen.total >= policy.min_requests
        ):
            break
        canary.set_weight(weight)
        arriving, last = seen.total > last, seen.total
        if seen.total < policy.min_requests and inputs and not arriving:
            canary.send(inputs, weight)  # nothing else reaches the canary: the examples are traffic
        else:
            sleep(min(0.5, max(policy.interval - held, 0.05)))
    passed, reason = judge(seen, policy)
    if passed and analysis is not None:
        passed, found = analysis()
        reason = f"{found} ({reason})" if not passed else f"{reason}; {found}"
    share = served(seen.total, stable.seen().total)
    if share["served"] is not None:
        reason += f"; canary served {share['served']:.0%} of {sum(share['requests'].values())} requests"
    return {"weight": weight, "passed": passed, "reason": reason, **share}


def served(canary: int, stable: int) -> dict:
    """``{served, requests}``: the canary's share of the model requests a step saw (None without any)."""
    total = canary + stable
    return {"served": round(canary / total, 3) if total else None, "requests": {"canary": canary, "stable": stable}}
