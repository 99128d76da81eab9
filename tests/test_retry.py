"""vci.retry: backoff with jitter, Retry-After, attempts, deadlines; what is retried is the error's type."""

import random
import time

import pytest

from vci.errors import (
    AuthError,
    RegistryError,
    RemoteError,
    StoreError,
    TransientError,
    TransientRegistryError,
    TransientRemoteError,
    VciError,
)
from vci.retry import RetryPolicy, backoff_delay, retry_after_seconds, retrying


class Flaky:
    """A call that raises each of ``failures`` in turn, then returns ``"done"``; counts its calls."""

    def __init__(self, *failures):
        self.failures, self.calls = list(failures), 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.1, 1.0, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        full = min(1.0, 0.1 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert len(set(delays)) == len(delays)


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_retry_after_is_a_lower_bound_on_the_pause_capped_by_the_policy():
    policy = RetryPolicy(backoff=0.1, max_backoff=0.2, max_retry_after=5.0, rng=random.Random(1))
    assert 0.05 <= policy.pause(1) <= 0.1
    assert policy.pause(1, retry_after=3.0) == 3.0
    assert policy.pause(1, retry_after=60.0) == 5.0
    assert 0.1 <= policy.pause(3, retry_after=0.0) <= 0.2


def test_transient_errors_are_retried_until_the_call_returns():
    call = Flaky(TransientRegistryError("503"), TransientRemoteError("refused", status=None))
    assert retrying(call, FAST) == "done" and call.calls == 3


def test_other_errors_are_raised_at_once():
    for error in (RegistryError("400"), AuthError("rejected"), ValueError("bug")):
        call = Flaky(error)
        with pytest.raises(type(error)):
            retrying(call, FAST)
        assert call.calls == 1


def test_the_last_failure_is_raised_unchanged_when_the_attempts_are_spent():
    last = TransientRegistryError("third")
    call = Flaky(TransientRegistryError("first"), TransientRegistryError("second"), last)
    with pytest.raises(TransientRegistryError) as caught:
        retrying(call, FAST)
    assert caught.value is last and call.calls == 3
    once = Flaky(TransientRegistryError("only"))
    with pytest.raises(TransientRegistryError):
        retrying(once, FAST.once())
    assert once.calls == 1


def test_a_pause_that_would_end_past_the_deadline_is_not_taken():
    call = Flaky(*[TransientRemoteError("busy", retry_after=2.0)] * 3)
    start = time.monotonic()
    with pytest.raises(TransientRemoteError):
        retrying(call, RetryPolicy(attempts=None, backoff=0.001, deadline=1.0))
    assert call.calls == 1 and time.monotonic() - start < 0.5
    quick = Flaky(*[TransientRemoteError("busy")] * 1000)
    with pytest.raises(TransientRemoteError):
        retrying(quick, RetryPolicy(attempts=None, backoff=0.01, max_backoff=0.02, deadline=0.3))
    assert 5 <= quick.calls < 1000


def test_a_retry_waits_what_the_server_asked():
    call = Flaky(TransientRegistryError("429", retry_after=0.3))
    start = time.monotonic()
    assert retrying(call, FAST) == "done"
    assert time.monotonic() - start >= 0.3


def test_a_transient_twin_keeps_its_class_exit_code_and_code():
    registry = TransientRegistryError("unavailable", hint="retry later", retry_after=2.0)
    remote = TransientRemoteError("answered 503", status=503, request_id="r1")
    assert isinstance(registry, RegistryError) and isinstance(registry, TransientError)
    assert (registry.exit_code, registry.code, registry.retry_after) == (10, "registry", 2.0)
    assert isinstance(remote, RemoteError) and (remote.exit_code, remote.code) == (15, "remote")
    assert (remote.status, remote.request_id, remote.retry_after) == (503, "r1", None)
    assert str(registry) == "unavailable (retry later)"


def test_auth_error_is_a_sibling_of_registry_error():
    error = AuthError("S3 refused PutObject")
    assert not isinstance(error, (RegistryError, StoreError, TransientError)) and isinstance(error, VciError)
    assert (error.exit_code, error.code) == (11, "auth")
