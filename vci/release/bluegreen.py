"""The blue-green strategy: the candidate's whole stack beside production, gated, then one switch.

``blue_green_release`` starts the candidate (green) beside production (blue) at no live traffic, sends it
the examples (the smoke test: every answer checked) and judges its own metrics and the environment's
analysis with the canary's rules (``canary:`` ``min_requests``, error rate, latency; the Prometheus
query), all before any user reaches it. Then the environment's address switches to it in one write, and
the previous stack is kept (``blue_green: {keep, scale_down}``) so that ``vci rollback`` inside the window
is one switch back (``switch_back``), without analysis. A refusal removes the candidate and leaves
production untouched. The kept stack goes at the environment's next release, rollback or undeploy after
its window (a new release ends the window at once).
"""

from __future__ import annotations

import time

from ..envrules import BlueGreenPolicy, CanaryPolicy
from ..errors import Aborted
from ..ledger import now_iso
from .analysis import Analysis
from .canary import observe_step
from .smoke import ask, check_answers

WHOLE = 100  # the candidate answers every request it is sent: the examples, never live traffic


def blue_green_release(target, what, release_id: str, examples: dict, timeout: float | None, sleep=time.sleep) -> dict:
    """Gate ``what`` as green beside ``target``'s production, then switch; ``{outcome, reason, blue_green}``:
    ``succeeded`` (the address points at green, blue kept) or ``rolled-back`` (green removed)."""
    environment = target.environment
    policy = BlueGreenPolicy.from_settings(environment.blue_green)
    switched = False
    try:
        green = target.start_green(what, release_id=release_id, timeout=timeout)
        passed, reason, gates = judge_green(green, examples, CanaryPolicy.from_settings(environment.canary), sleep)
        if passed:
            kept = target.switch_to_green(policy.keep, policy.scale_down)
            switched = True
    except Aborted as exc:  # SIGTERM/SIGINT: green goes (below) unless the switch was made
        after = "the switch was made" if switched else f"the candidate was removed, {environment.name!r} is untouched"
        raise Aborted(f"{exc.message}; {after}", exc.signum) from None
    finally:
        if not switched:
            target.remove_green()
    if not passed:
        return {
            "outcome": "rolled-back",
            "blue_green": gates,
            "reason": f"blue-green refused, {environment.name!r} keeps its previous release: {reason}",
        }
    gates["kept"] = kept_summary(kept, policy)
    return {
        "outcome": "succeeded",
        "blue_green": gates,
        "endpoint": target.status().endpoint,
        "reason": f"switched to the new release: {reason}; {gates['kept']['note']}",
    }


def judge_green(green, examples: dict, policy: CanaryPolicy, sleep=time.sleep) -> tuple[bool, str, dict]:
    """The smoke test of green's own answers, then its metrics and the analysis as one canary step."""
    client = green.client(deadline=20.0)
    try:
        failures = check_answers(examples["inputs"], ask(client, examples["inputs"]), examples.get("expected_outputs"))
    finally:
        client.close()
    gates: dict = {"smoke": {"passed": not failures, "checked": len(examples["inputs"]), "failures": failures[:5]}}
    if failures:
        checked = len(examples["inputs"])
        return False, f"the smoke test failed on {len(failures)} of {checked} examples: {failures[0]}", gates
    analysis = Analysis.of(green.target.environment)
    check = analysis.check if analysis else None
    inputs = examples["inputs"]
    step = observe_step(Alone(green), policy, WHOLE, inputs, sleep=sleep, clock=time.monotonic, analysis=check)
    reason = step["reason"].replace("canary served", "green served")
    gates["step"] = {"passed": step["passed"], "reason": reason, "requests": step["requests"]["canary"]}
    return step["passed"], reason, gates


class Alone:
    """Green as the canary step sees it: every request it counts is one of the examples sent to it (the
    live traffic production answers meanwhile is no share of green's)."""

    def __init__(self, green):
        self.green, self.release_id = green, green.release_id

    def set_weight(self, weight: int) -> None:
        self.green.set_weight(weight)

    def metrics(self) -> dict[str, str]:
        return self.green.metrics()

    def stable_metrics(self) -> dict[str, str]:
        return {}

    def send(self, inputs: list, weight: int) -> None:
        self.green.send(inputs, weight)

    def remove(self) -> None:
        self.green.remove()


def kept_summary(kept: dict, policy: BlueGreenPolicy) -> dict:
    """What the ledger and the result say of the previous stack: its release, until when, at what size."""
    if not kept:
        return {"note": "the previous release was stopped (blue_green.keep is 0)"}
    until = now_iso(kept["kept_until"])
    size = "scaled down" if policy.scale_down and kept.get("replicas") == 0 else "at its size"
    return {
        "release_id": kept.get("release_id"),
        "digest": kept.get("digest"),
        "until": until,
        "scaled_down": size == "scaled down",
        "note": f"the previous release {kept.get('release_id')} is kept {size} until {until}: "
        "`vci rollback` switches back to it",
    }
