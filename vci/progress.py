"""A dependency-free progress display for byte transfers (on a terminal only, unless forced)."""

from __future__ import annotations

import os
import sys
import threading
import time

BAR_WIDTH = 24
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``; whole bytes below 1 KiB."""
    for unit in UNITS:
        if abs(n) < 1024 or unit == UNITS[-1]:
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str, name: str = "size") -> int:
    """``1048576``, ``"512MiB"``, ``"10G"``, ``"1.5GB"`` -> bytes (K/M/G/T, with or without i and B:
    powers of 1024 either way, as format_bytes prints them); UsageError naming ``name`` otherwise."""
    import re

    from .errors import UsageError

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
    if not match:
        raise UsageError(f"{name} is not a size: {text!r}", hint="e.g. 10GiB, 512MiB or a number of bytes")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def progress_enabled(stream, environ=os.environ) -> bool:
    """On when ``VCI_PROGRESS=1``; off when ``VCI_PROGRESS=0``; otherwise on a terminal outside CI only."""
    forced = environ.get("VCI_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("CI")


def render_line(label: str, done: int, total: int, elapsed: float) -> str:
    """One status line: label, bar, percent, bytes done of total, average rate."""
    frac = min(1.0, done / total) if total > 0 else 1.0
    filled = int(frac * BAR_WIDTH)
    bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * (BAR_WIDTH - filled - 1)
    rate = done / elapsed if elapsed > 0 else 0.0
    return f"{label} [{bar[:BAR_WIDTH]}] {frac:4.0%} {format_bytes(done)}/{format_bytes(total)} {format_bytes(rate)}/s"


class Progress:
    """Call with byte deltas from any thread; the line is redrawn at most every ``interval`` seconds.

    ``stream`` defaults to the current ``sys.stderr``; ``enabled=None`` decides by ``progress_enabled``.
    ``close()`` draws the final state and ends the line (nothing at all if no byte moved).
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        enabled: bool | None = None,
        stream=None,
        interval: float = 0.1,
        clock=time.monotonic,
    ):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._last_draw: float | None = None
        self._width = 0
        self._closed = False

    def __call__(self, delta: int) -> None:
        with self._lock:
            self.done += delta
            if not self.enabled or self._closed:
                return
            now = self._clock()
            finished = self.total > 0 and self.done >= self.total
            if self._last_draw is None or now - self._last_draw >= self.interval or finished:
                self._draw(now)

    def _draw(self, now: float) -> None:
        line = render_line(self.label, self.done, self.total, now - self._start)
        pad = " " * max(0, self._width - len(line))  # wipe what a longer previous line left
        self._width = len(line)
        self._last_draw = now
        try:
            self.stream.write("\r" + line + pad)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail the transfer
            self.enabled = False

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.enabled and self.done:
                self._draw(self._clock())
                try:
                    self.stream.write("\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
