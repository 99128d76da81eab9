"""A dependency-free progress display for byte transfers (on a terminal only, unless forced)."""

from __future__ import annotations

import os
import sys
import threading
import time


class Progress:
    """Call with byte deltas from any thread; ``close()`` ends the line."""

    def __init__(self, total: int, label: str, *, enabled: bool | None = None, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        forced = os.environ.get("VCI_PROGRESS")
        if enabled is None:
            enabled = forced == "1" or (forced != "0" and self.stream.isatty() and not os.environ.get("CI"))
        self.enabled = enabled
        self._lock = threading.Lock()
        self._start = self._last = time.monotonic()

    def __call__(self, delta: int) -> None:
        with self._lock:
            self.done += delta
            now = time.monotonic()
            if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
                self._last = now
                self._render(now)

    def _render(self, now: float) -> None:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        rate = self.done / max(now - self._start, 1e-6) / (1 << 20)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac:4.0%} {self.done >> 20}/{self.total >> 20} MiB "
                          f"{rate:.1f} MiB/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self._render(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
