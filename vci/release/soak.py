"""Soak: a digest is promoted from an environment with ``min_soak`` only once it has run there, healthy, that long.

Since when it runs is the ledger's record of the release that put it there (the release id the live
deployment carries, which a deploy of the same digest leaves in place); healthy is the live status
(``ready``, which ``promote.live_release`` requires). No record of that release, or one of another digest,
proves nothing: the promotion is refused, as a soak not yet over is, saying when it may go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..config import Environment, parse_seconds
from ..deploy.target import Status
from ..errors import VciError, VerificationError
from ..ledger import Ledger


@dataclass(frozen=True)
class Soak:
    """How long ``digest`` has run in ``environment`` (``since``: epoch seconds, None when unknown)."""

    environment: str
    digest: str | None
    required: float
    since: float | None
    now: float
    release_id: str | None = None

    @property
    def soaked(self) -> float:
        return 0.0 if self.since is None else max(self.now - self.since, 0.0)

    @property
    def done(self) -> bool:
        return self.since is not None and self.soaked >= self.required

    @property
    def promotable_at(self) -> float | None:
        return None if self.since is None else self.since + self.required

    def reason(self) -> str:
        if self.since is None:
            return (
                f"{self.environment!r} has no ledger record of release {self.release_id or '?'} running "
                f"{self.digest}: its soak of {duration(self.required)} cannot be proven"
            )
        state = "soaked" if self.done else "promotable after " + clock(self.promotable_at or 0)
        return f"soaked {duration(self.soaked)} of {duration(self.required)} in {self.environment!r}; {state}"

    def to_json(self) -> dict:
        return {"required": self.required, "soaked": round(self.soaked, 1), "since": self.since, "done": self.done}


def duration(seconds: float) -> str:
    """``42s``, ``12m``, ``1h05m``: a soak's length in words (whole units, rounded down)."""
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def clock(epoch: float) -> str:
    """``14:32:05 UTC`` (with the date when it is not today's)."""
    moment, today = time.gmtime(epoch), time.gmtime()
    shown = "%H:%M:%S UTC" if moment[:3] == today[:3] else "%Y-%m-%d %H:%M:%S UTC"
    return time.strftime(shown, moment)


def soak_of(ledger: Ledger, environment: Environment, live: Status, now: float | None = None) -> Soak | None:
    """How long what ``live`` shows has soaked in ``environment``; None when it sets no ``min_soak``."""
    if not environment.min_soak:
        return None
    required = parse_seconds(environment.min_soak, f"environments.{environment.name}.min_soak")
    since = None
    if live.release_id:
        try:
            record = ledger.get(environment.name, live.release_id)
        except VciError:  # deployed by hand or the ledger out of reach: nothing proves the soak
            record = None
        if record is not None and record.digest == live.digest and record.outcome == "succeeded":
            since = record.timestamp
    return Soak(environment.name, live.digest, required, since, time.time() if now is None else now, live.release_id)


def require_soaked(soak: Soak | None) -> None:
    """VerificationError (exit 16) while ``soak`` is not over."""
    if soak is not None and not soak.done:
        raise VerificationError(
            f"{soak.digest} cannot be promoted from {soak.environment!r} yet: {soak.reason()}",
            hint=f"min_soak of environments.{soak.environment}; `vci promote --auto` on a schedule promotes it then",
        )
