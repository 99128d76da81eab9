"""Stopping a release on SIGTERM or SIGINT (a cancelled CI job, Ctrl-C) so that its cleanup still runs.

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

from ..errors import Aborted

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
