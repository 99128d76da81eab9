"""Stopping a release: on SIGTERM or SIGINT (a cancelled CI job, Ctrl-C) so that its cleanup still runs,
or by someone removing its canary (``abort_canary``: vci ui's abort).

CI systems stop a job with a signal and kill it a few seconds later (GitHub Actions: SIGINT, then
SIGTERM, then SIGKILL; Jenkins: SIGTERM, then SIGKILL): without a handler Python dies at SIGTERM with no
``finally`` run, leaving a canary serving beside production and no ledger record. Under
``signals_abort()`` the first signal raises ``Aborted`` where the release is, so its ``finally`` blocks
run (the canary is removed, the claim released) and the ledger records the attempt as aborted; later
signals are ignored while that cleanup runs. Signal handlers exist only in the main thread: elsewhere
(a release run from a worker thread) the context does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

from ..config import Settings
from ..deploy import target_for
from ..errors import Aborted, NotFoundError
from ..ledger import Ledger, who

SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("vci")


@contextlib.contextmanager
def signals_abort(what: str):
    """Turn SIGTERM and SIGINT into ``Aborted`` (once) while ``what`` runs; handlers restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        name = signal.Signals(signum).name
        if fired:
            log.warning("%s again: still cleaning up after the abort of %s", name, what)
            return
        fired.append(signum)
        raise Aborted(f"{what} aborted by {name}", signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def abort_canary(settings: Settings, env: str, *, actor: str | None = None) -> str:
    """Remove ``env``'s canary, noting ``actor`` (default: ``who()``) as who stopped its release: the promotion
    driving it, in this process or in a CI job, finds it gone at its next check and records the attempt
    as ``aborted`` with ``aborted_by``. The stable release keeps serving."""
    target = target_for(settings, env)
    found = target.canary_status()
    if not found:
        raise NotFoundError(f"there is no canary in {env!r} to abort", hint="reload the page")
    notes = (found.get("metadata") or {}).get("annotations") or {}  # a cluster's canary Deployment
    release_id = found.get("release_id") or notes.get("vci.dev/release-id")
    actor = actor or who()
    if release_id:
        Ledger.for_settings(settings).mark_aborted(target.environment.name, release_id, actor)
    target.remove_canary()
    log.info("the canary of %s (release %s) was aborted by %s", env, release_id or "?", actor)
    return f"the canary of {env!r} was removed by {actor}; {env!r} keeps its stable release"
