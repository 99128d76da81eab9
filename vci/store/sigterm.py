"""SIGTERM during a write to a store raises ``Aborted``, so that the write's cleanup runs before the process ends.

Python's default for SIGTERM (what CI systems send a cancelled job, what ``kill`` sends) is to die at
once, with no ``finally`` run: a multipart upload is left open on S3 (its parts billed until a
lifecycle rule or ``vci gc --uploads`` aborts it) and a partial file in a local store's ``tmp/``. Under
``sigterm_raises()`` the first SIGTERM raises ``Aborted`` where the write is (the CLI exits 143 after
its cleanup); a second one is ignored while the cleanup runs. Only in the main thread (signal handlers
live there), and only where SIGTERM has its default action: a handler someone else installed (vci's
release commands, a training framework) is left in charge.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

from ..errors import Aborted

log = logging.getLogger("vci")


@contextlib.contextmanager
def sigterm_raises(what: str) -> Iterator[None]:
    """Turn SIGTERM into ``Aborted`` (once) while ``what`` runs; the default action is restored after."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        if fired:
            log.warning("SIGTERM again: still cleaning up after %s", what)
            return
        fired.append(signum)
        raise Aborted(f"{what} stopped by SIGTERM; nothing partial was left behind", signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
