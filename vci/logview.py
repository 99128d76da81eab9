"""The model server's JSON log lines rendered for people: columns, and tracebacks as tracebacks; and the
record in a server's log that says why its model could not start, for a launcher that waited on it."""

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


START_FAILURES = {"model_load_failed": "load", "model_test": "self-test"}  # the events (vci.serve.service)


def start_failure(text: str) -> dict | None:
    """The last record in a server log saying that its model could not start: the load failed, or the
    self-test did; with ``stage`` added ("load" or "self-test"). None when the log has none."""
    for line in reversed(text.splitlines()):
        record = parse_line(line)
        name = record.get("event") if record else None
        if record and (name == "model_load_failed" or (name == "model_test" and record.get("result") == "failed")):
            return {**record, "stage": START_FAILURES[str(name)]}
    return None


def describe_failure(record: dict) -> list[str]:
    """A start failure for people, one line each: what failed and the exception, then the frames of the
    model's own code (innermost last), each with its source line when the server could read it."""
    what = "the model's self-test (model_test) failed" if record["stage"] == "self-test" else "the model failed to load"
    lines = [f"{what}: {record.get('error') or 'no reason logged'}"]
    for frame in record.get("frames") or []:
        lines.append(f'File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
        if frame.get("code"):
            lines.append(f"    {frame['code']}")
    return lines


def last_lines(text: str, limit: int = 5) -> list[str]:
    """The last ``limit`` lines of a server log that say something (access-log lines, a probe's requests
    among them, left out), rendered by :func:`render_line`; one line each, a traceback's lines included."""
    kept = [line for line in text.splitlines() if line.strip() and (parse_line(line) or {}).get("event") != "request"]
    return [row for line in kept[-limit:] for row in render_line(line).splitlines()]
