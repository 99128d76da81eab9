"""The model server's JSON log lines rendered for people: columns, and tracebacks as tracebacks."""

from __future__ import annotations

import json
import time

SHOWN_FIRST = ("request_id", "method", "route", "status", "latency_ms", "error")  # after time, level, event
HIDDEN = {"ts", "level", "event", "traceback"}


def parse_line(line: str) -> dict | None:
    """The JSON record of a server log line, or None for anything else (a print, a crash's own text)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def line_time(line: str) -> float | None:
    """The ``ts`` (epoch seconds) of a JSON log line, None when it has none."""
    record = parse_line(line)
    ts = record.get("ts") if record else None
    return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


def render_line(line: str, source: str | None = None) -> str:
    """``12:00:01.250 ERROR request route=/predict status=500 ...`` and, for an error with a traceback,
    the traceback below it, indented; a line that is not JSON as it came. ``source``: a pod's name."""
    record = parse_line(line)
    prefix = f"[{source}] " if source else ""
    if record is None:
        return prefix + line.rstrip("\n")
    ts = record.get("ts")
    when = _clock(ts) if isinstance(ts, (int, float)) else "-"
    head = [when, str(record.get("level", "-")).upper(), str(record.get("event", "-"))]
    rest = sorted(k for k in record if k not in HIDDEN and k not in SHOWN_FIRST)
    keys = [k for k in SHOWN_FIRST if k in record] + rest
    fields = [f"{k}={_value(record[k])}" for k in keys]
    text = prefix + " ".join(head + fields)
    trace = record.get("traceback")
    if isinstance(trace, str) and trace.strip():
        text += "\n" + "\n".join("    " + row for row in trace.rstrip().splitlines())
    return text


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return json.dumps(text) if (not text or any(c in text for c in ' \t\n"=')) else text


Sourced = tuple[str | None, str]  # (where a line came from, the line)


def select_lines(lines: list[Sourced], since: float | None, tail: int | None) -> list[Sourced]:
    """``(source, line)`` pairs of several sources in time order, only those from the epoch time ``since``
    on, the last ``tail``. A line that is not JSON keeps its place after the line before it and that
    line's time; one with no time at all (the source had none yet) is kept: its server windowed it."""
    stamped: list[tuple[float, int, str | None, str, bool]] = []
    last: dict[str | None, float | None] = {}
    for order, (source, line) in enumerate(lines):
        ts = line_time(line)
        last[source] = ts if ts is not None else last.get(source)
        known = last[source]
        stamped.append((known if known is not None else float("-inf"), order, source, line, known is None))
    stamped.sort(key=lambda row: (row[0], row[1]))
    kept = [(source, line) for ts, _, source, line, untimed in stamped if since is None or untimed or ts >= since]
    if tail is None:
        return kept
    return kept[-tail:] if tail > 0 else []
