"""Structured logs of the model server: one JSON object per line on stderr (requests, load, shutdown).

The same module reads them back for a launcher (a local deploy, a rollout's diagnosis): the record that says
why a model could not start (:func:`start_failure`) and log lines for people (:func:`readable`).
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import threading
import time
import traceback
from pathlib import Path

_lock = threading.Lock()
_VCI_ROOT = str(Path(__file__).resolve().parents[1]) + os.sep  # the server's own code, left out of frames
_INSTALLED = tuple(
    {str(Path(sysconfig.get_paths()[key]).resolve()) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
SHOWN_FRAMES = 3  # frames of the user's own code a failure record keeps (and the innermost one)


def _write(record: dict) -> None:
    line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
    with _lock:  # the HTTP loop and gRPC threads share stderr: keep lines whole
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or a broken pipe: logging must never kill a request
            pass


def event(name: str, level: str = "info", **fields) -> None:
    """Log a server event such as ``model_loaded`` or ``shutdown`` with its fields."""
    _write({"ts": round(time.time(), 3), "level": level, "event": name, **fields})


def request(request_id: str, route: str, method: str, status: int, latency_ms: float, protocol: str = "http") -> None:
    """The access-log line every request gets."""
    _write(
        {
            "ts": round(time.time(), 3),
            "level": "info" if status < 500 else "error",
            "event": "request",
            "request_id": request_id,
            "protocol": protocol,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(latency_ms, 3),
        }
    )


def failure(name: str, exc: BaseException, **fields) -> None:
    """Log an exception with its traceback (for the log only: tracebacks never go to a client) and the
    frames that matter to the model's author (:func:`user_frames`)."""
    event(
        name,
        "error",
        error=f"{type(exc).__name__}: {exc}",
        exception=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
        frames=user_frames(exc),
        **fields,
    )


def user_frames(exc: BaseException) -> list[dict]:
    """The last frames of ``exc``'s traceback in the user's own files (not the server's code, not installed
    packages), and the innermost frame wherever it is: ``[{"file", "line", "function", "code"}]``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_VCI_ROOT)]
    own = [f for f in frames if not _installed(f.filename)]
    shown = own[-SHOWN_FRAMES:]
    if frames and (not shown or shown[-1] is not frames[-1]):
        shown.append(frames[-1])
    return [{"file": f.filename, "line": f.lineno, "function": f.name, "code": f.line or ""} for f in shown]


def _installed(filename: str) -> bool:
    return os.path.isabs(filename) and (
        str(Path(filename).resolve()).startswith(_INSTALLED) or f"{os.sep}site-packages{os.sep}" in filename
    )


# -- reading logs back -------------------------------------------------------------------------------------
START_FAILURES = {"model_load_failed": "load", "model_test": "self-test"}


def records(text: str) -> list[dict]:
    """The JSON records among ``text``'s lines (other lines, such as a runtime's, are left out)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
    return found


def start_failure(text: str) -> dict | None:
    """The last record in a server log that says the model could not start: its load failed, or its
    self-test did; ``stage`` is added ("load" or "self-test"). None when the log has none."""
    for record in reversed(records(text)):
        event_name = record.get("event")
        if event_name == "model_load_failed" or (event_name == "model_test" and record.get("result") == "failed"):
            return {**record, "stage": START_FAILURES[event_name]}
    return None


def describe_failure(record: dict) -> list[str]:
    """A start failure for people, one line each: what failed, the exception, then the frames (innermost
    last), each with its source line when the server could read it."""
    what = "the model's self-test (model_test) failed" if record["stage"] == "self-test" else "the model failed to load"
    lines = [f"{what}: {record.get('error') or 'no reason logged'}"]
    for frame in record.get("frames") or []:
        lines.append(f'File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
        if frame.get("code"):
            lines.append(f"    {frame['code']}")
    return lines


def readable(text: str, limit: int = 5) -> list[str]:
    """The last ``limit`` meaningful lines of a log, for people: JSON records as ``level event: error`` or
    ``event key=value``, access-log lines (probes) left out, other lines as they are."""
    shown = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line) if line.startswith("{") else None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            shown.append(line.rstrip())
        elif record.get("event") != "request":
            shown.append(_record_line(record))
    return shown[-limit:]


def _record_line(record: dict) -> str:
    level, name = record.get("level", "info"), record.get("event", "?")
    if "error" in record:
        return f"{level} {name}: {record['error']}"
    rest = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("ts", "level", "event", "traceback"))
    return f"{level} {name} {rest}".rstrip()
