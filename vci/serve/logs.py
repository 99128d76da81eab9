"""Structured logs of the model server: one JSON object per line on stderr (requests, load, shutdown).

A failure's record carries the frames of the user's own code (:func:`user_frames`), which a launcher
reads back (vci.logview.start_failure) to say why a model could not start.
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
    _write_line(json.dumps(record, separators=(",", ":"), default=str) + "\n")


def _write_line(line: str) -> None:
    with _lock:  # the HTTP loop and gRPC threads share stderr: keep lines whole
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or a broken pipe: logging must never kill a request
            pass


def event(name: str, level: str = "info", **fields) -> None:
    """Log a server event such as ``model_loaded`` or ``shutdown`` with its fields."""
    _write({"ts": round(time.time(), 3), "level": level, "event": name, **fields})


_REQUEST = (
    '{"ts":%.3f,"level":"%s","event":"request","request_id":%s,"protocol":%s,"method":%s,"route":%s,'
    '"status":%d,"latency_ms":%.3f}\n'
)
_quoted = json.encoder.encode_basestring_ascii  # a JSON string literal (C): what json.dumps writes for a str


def request(request_id: str, route: str, method: str, status: int, latency_ms: float, protocol: str = "http") -> None:
    """The access-log line every request gets: formatted, not json.dumps'd (0.7 us against 3.7 us: this is
    on every request's path), with the same keys and values as :func:`event`'s records."""
    level = "info" if status < 500 else "error"
    fields = (time.time(), level, _quoted(request_id), _quoted(protocol), _quoted(method), _quoted(route))
    _write_line(_REQUEST % (*fields, status, latency_ms))


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
