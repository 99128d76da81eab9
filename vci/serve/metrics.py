"""Request metrics of the model server, rendered in the Prometheus text exposition format (0.0.4).

Exposed series (all prefixed ``vci_``)::

    vci_requests_total{route,status}                 counter: finished requests
    vci_request_duration_seconds_bucket{route,le}    histogram: latency, for p50/p90/p99 by whoever scrapes
    vci_request_duration_seconds_sum/_count{route}
    vci_requests_in_flight                           gauge: requests being handled now
    vci_model_load_seconds                           gauge: time to verify, load and self-test the model
    vci_model_ready                                  gauge: 1 once /readyz answers 200

``route`` is one of the server's own routes (``/predict``, ``/vci.Model/Predict``, ...) or ``other``,
so a client probing random paths cannot grow the series without bound.
"""

from __future__ import annotations

import bisect
import threading

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative-on-render latency histogram: one count per bucket plus sum and count."""

    __slots__ = ("counts", "total", "count")

    def __init__(self):
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def render(self, name: str, labels: str) -> list[str]:
        lines, running = [], 0
        for bound, n in zip((*map(_number, BUCKETS), "+Inf"), self.counts, strict=True):
            running += n
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        lines.append(f"{name}_sum{{{labels}}} {self.total:.6f}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


class Metrics:
    """Thread-safe counters for the HTTP loop and the gRPC worker threads alike."""

    def __init__(self, routes: tuple[str, ...] = ()):
        self._lock = threading.Lock()
        self._routes = frozenset(routes)
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, Histogram] = {}
        self.in_flight = 0
        self.model_load_seconds: float | None = None
        self.model_ready = False

    def route_label(self, route: str) -> str:
        return route if route in self._routes else "other"

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self, route: str, status: int, seconds: float) -> None:
        """Record one finished request (call once per ``started``)."""
        label = self.route_label(route)
        with self._lock:
            self.in_flight -= 1
            key = (label, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            hist = self._latency.get(label)
            if hist is None:
                hist = self._latency[label] = Histogram()
            hist.observe(seconds)

    def count(self, route: str, status: int) -> int:
        with self._lock:
            return self._requests.get((self.route_label(route), status), 0)

    def render(self) -> bytes:
        """The whole exposition as bytes, ending in a newline."""
        with self._lock:
            lines = [
                "# HELP vci_requests_total Requests handled, by route and status.",
                "# TYPE vci_requests_total counter",
            ]
            for (route, status), n in sorted(self._requests.items()):
                lines.append(f'vci_requests_total{{route="{route}",status="{status}"}} {n}')
            lines += [
                "# HELP vci_request_duration_seconds Time from a complete request to its response.",
                "# TYPE vci_request_duration_seconds histogram",
            ]
            for route, hist in sorted(self._latency.items()):
                lines += hist.render("vci_request_duration_seconds", f'route="{route}"')
            lines += [
                "# HELP vci_requests_in_flight Requests being handled now.",
                "# TYPE vci_requests_in_flight gauge",
                f"vci_requests_in_flight {self.in_flight}",
                "# HELP vci_model_load_seconds Seconds to verify, load and self-test the model.",
                "# TYPE vci_model_load_seconds gauge",
                f"vci_model_load_seconds {_number(self.model_load_seconds or 0.0)}",
                "# HELP vci_model_ready 1 when the model is loaded and its self-test passed.",
                "# TYPE vci_model_ready gauge",
                f"vci_model_ready {int(self.model_ready)}",
            ]
        return ("\n".join(lines) + "\n").encode()


def _number(value: float) -> str:
    return repr(float(value))
