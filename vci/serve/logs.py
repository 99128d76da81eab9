"""Structured logs of the model server: one JSON object per line on stderr (requests, load, shutdown)."""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback

_lock = threading.Lock()


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
    """Log an exception with its traceback (for the log only: tracebacks never go to a client)."""
    event(
        name,
        "error",
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        **fields,
    )
