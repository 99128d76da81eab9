"""One retry policy for every remote call vci makes: bounded attempts, backoff with jitter, Retry-After.

What is worth retrying is the error's type: a ``TransientError`` (see ``vci/errors.py``) is, nothing
else is. Each adapter maps its transport's failures (a refused connection, a 503) to a transient class
at its own edge; ``retrying`` then calls again until the call returns, raises anything else, or the
policy is spent, and re-raises the last failure unchanged. This is go-containerregistry's
``transport/retry.go`` shape with the predicate moved into the exception tree.

Retry n waits between half and all of ``backoff * 2**(n-1)``, capped at ``max_backoff`` ("equal
jitter", so that clients that failed together do not come back in lockstep). A server's
``Retry-After`` (delta-seconds or an HTTP date) is a lower bound on that pause, itself capped at
``max_retry_after``. A policy ends after ``attempts`` tries, or when the next pause would end past its
``deadline`` (seconds since the first try), whichever comes first.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from .errors import TransientError

log = logging.getLogger("vci.retry")
T = TypeVar("T")


def backoff_delay(attempt: int, base: float, cap: float, rng: Any = random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped,
    with "equal jitter" (uniformly between half and all of it) so clients do not retry in lockstep."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP date) as seconds from now, else None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries and how long between them; ``attempts=None`` means as many as ``deadline`` allows."""

    attempts: int | None = 5
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = math.inf
    deadline: float | None = None
    rng: Any = field(default=random, compare=False, repr=False)

    def once(self) -> RetryPolicy:
        """The same policy with no retries."""
        return replace(self, attempts=1)

    def pause(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try ``attempt`` (1-based), at least a server's ``retry_after``."""
        delay = backoff_delay(attempt, self.backoff, self.max_backoff, self.rng)
        return delay if retry_after is None else max(delay, min(retry_after, self.max_retry_after))

    def allows(self, attempt: int, elapsed: float) -> bool:
        """May try number ``attempt`` start ``elapsed`` seconds after the first one started?"""
        within_attempts = self.attempts is None or attempt <= self.attempts
        return within_attempts and (self.deadline is None or elapsed < self.deadline)


def retrying(call: Callable[[], T], policy: RetryPolicy, *, what: str = "call", logger=log) -> T:
    """``call()`` again after each ``TransientError`` while ``policy`` allows; its result, or the last error.

    ``what`` names the call in the log line of each retry (say what it is, never a secret).
    """
    start = time.monotonic()
    for attempt in itertools.count(1):
        try:
            return call()
        except TransientError as exc:
            pause = policy.pause(attempt, exc.retry_after)
            if not policy.allows(attempt + 1, time.monotonic() - start + pause):
                raise
            logger.info("retrying %s in %.2fs after attempt %d: %s", what, pause, attempt, exc.message)
            time.sleep(pause)
    raise AssertionError("unreachable")
