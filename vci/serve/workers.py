"""Several server processes on one listening socket: fork the workers, forward SIGTERM, reap them.

A worker dies with its supervisor: Linux sends it SIGTERM when the supervisor is gone (PR_SET_PDEATHSIG),
even when the supervisor was killed outright and could forward nothing.

Each worker loads its own model copy and keeps its own metrics (a scrape sees the worker that
accepted it). When one worker exits on its own (say the model cannot load), the others are stopped
and the supervisor fails with that worker's exit code, so the container restarts as a whole.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TypedDict

from ..errors import ServeError, VciError
from . import logs


class _State(TypedDict):
    stopping: bool
    children: dict[int, int]  # pid -> worker index


def serve_forked(workers: int, serve) -> None:
    """Run ``serve()`` in ``workers`` forked children; return when all exited cleanly."""
    os.environ["VCI_SUPERVISOR_PID"] = str(os.getpid())
    state: _State = {"stopping": False, "children": {}}

    def forward(signum, _frame):
        state["stopping"] = True
        for pid in list(state["children"]):
            _kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(workers):
            pid = os.fork()
            if pid == 0:
                _run_child(index, serve)
            state["children"][pid] = index
        worst = _reap(state)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if worst:
        err = ServeError(f"a server worker exited with code {worst}", hint="see the worker's log lines above")
        err.exit_code = worst
        raise err


def _run_child(index: int, serve) -> None:
    """Body of a forked worker: never returns."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    supervisor = int(os.environ["VCI_SUPERVISOR_PID"])
    _die_with_parent()
    if os.getppid() != supervisor:  # the supervisor died before the line above: nobody would reap us
        os._exit(1)
    os.environ["VCI_WORKER_INDEX"] = str(index)
    code = 0
    try:
        serve()
    except VciError as exc:
        logs.event("worker_failed", "error", worker=index, error=str(exc))
        code = exc.exit_code
    except BaseException as exc:  # noqa: BLE001 - a worker must report and exit, whatever happened
        logs.failure("worker_failed", exc, worker=index)
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the supervisor dies (PR_SET_PDEATHSIG), so that a supervisor
    killed outright (SIGKILL, the OOM killer) leaves no worker holding the port and serving alone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the supervisor's own SIGTERM forwarding still applies
        pass


def _reap(state: _State) -> int:
    """Wait for every child; on the first unexpected non-zero exit stop the rest. Returns that code."""
    worst = 0
    children = state["children"]
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        logs.event("worker_exited", worker=index, pid=pid, code=code)
        if code and not state["stopping"]:
            state["stopping"] = True
            worst = code
            for other in list(children):
                _kill(other, signal.SIGTERM)
    return worst


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
