"""Request metrics of the model server, rendered in the Prometheus text exposition format (0.0.4).

Exposed series (all prefixed ``vci_``)::

    vci_requests_total{route,status}                 counter: finished requests
    vci_request_duration_seconds_bucket{route,le}    histogram: latency, for p50/p90/p99 by whoever scrapes
    vci_request_duration_seconds_sum/_count{route}
    vci_requests_in_flight                           gauge: requests being handled now
    vci_model_load_seconds                           gauge: time to verify, load and self-test the model
    vci_model_ready                                  gauge: 1 once /readyz answers 200
    vci_batch_size_bucket{le}, _sum, _count          histogram: requests per batch_predict call (batching on)
    vci_batch_queue_seconds_bucket{le}, _sum, _count histogram: time a request waited in the batch queue
    vci_payload_records_written_total                counter: payload records the sink took (logging on)
    vci_payload_records_dropped_total{reason}        counter: records lost: queue_full (the sink is slow) or
                                                     sink_failed (the sink is down or refused them)

Every series also carries the server's ``release`` (VCI_RELEASE_ID, ``none`` without one) and ``track``
(VCI_TRACK: ``stable``, ``canary`` or ``shadow``), so a dashboard tells a release's pods from the one
before and a canary from the stable pods. With drift on, the input and output distributions follow (the
series of vci.serve.drift).

``route`` is one of the server's own routes (``/predict``, ``/vci.Model/Predict``, ...) or ``other``,
so a client probing random paths cannot grow the series without bound.
"""

from __future__ import annotations

import bisect
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .drift import Drift
    from .payloads import PayloadLog
    from .tracing import Tracer

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
QUEUE_WAITS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TRACKS = ("stable", "canary", "shadow")


class Histogram:
    """Cumulative-on-render histogram (latency unless told other bounds): one count per bucket, sum, count."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, labels: str = "") -> list[str]:
        lines, running, sep = [], 0, "," if labels else ""
        for bound, n in zip((*map(_number, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            lines.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{braces} {self.total:.6f}")
        lines.append(f"{name}_count{braces} {self.count}")
        return lines


class Metrics:
    """Thread-safe counters for the HTTP loop and the gRPC worker threads alike."""

    def __init__(self, routes: tuple[str, ...] = (), *, release: str | None = None, track: str = "stable"):
        self._lock = threading.Lock()
        self.labels = f'release="{escape_label(release or "none")}",track="{escape_label(track)}"'
        self._routes = frozenset(routes)
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, Histogram] = {}
        self.in_flight = 0
        self.model_load_seconds: float | None = None
        self.model_ready = False
        self.batch_sizes: Histogram | None = None  # set when batching is on (see enable_batching)
        self.queue_waits = Histogram(QUEUE_WAITS)
        self.payloads: PayloadLog | None = None  # set when payloads are logged: its counts are rendered
        self.drift: Drift | None = None  # set once the model is loaded with features to watch (vci.serve.drift)
        self.tracer: Tracer | None = None  # set when spans are exported: its counts are rendered

    def enable_batching(self) -> None:
        self.batch_sizes = Histogram(BATCH_SIZES)

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

    def batched(self, size: int, waits: list[float]) -> None:
        """Record one batch handed to the model and how long each of its requests waited in the queue."""
        with self._lock:
            if self.batch_sizes is not None:
                self.batch_sizes.observe(size)
            for seconds in waits:
                self.queue_waits.observe(seconds)

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
            if self.batch_sizes is not None:
                lines += self._batch_lines(self.batch_sizes)
        if self.payloads is not None:
            lines += _payload_lines(self.payloads.written, dict(self.payloads.dropped))
        if self.drift is not None:
            lines += self.drift.render()
        if self.tracer is not None:
            lines += self.tracer.metric_lines()
        return ("\n".join(labelled(lines, self.labels)) + "\n").encode()

    def _batch_lines(self, sizes: Histogram) -> list[str]:
        return [
            "# HELP vci_batch_size Requests answered by one batch_predict call.",
            "# TYPE vci_batch_size histogram",
            *sizes.render("vci_batch_size"),
            "# HELP vci_batch_queue_seconds Time a request waited in the batch queue.",
            "# TYPE vci_batch_queue_seconds histogram",
            *self.queue_waits.render("vci_batch_queue_seconds"),
        ]


def _payload_lines(written: int, dropped: dict[str, int]) -> list[str]:
    return [
        "# HELP vci_payload_records_written_total Payload records the sink took.",
        "# TYPE vci_payload_records_written_total counter",
        f"vci_payload_records_written_total {written}",
        "# HELP vci_payload_records_dropped_total Payload records lost, never blocking a prediction.",
        "# TYPE vci_payload_records_dropped_total counter",
        *(f'vci_payload_records_dropped_total{{reason="{reason}"}} {n}' for reason, n in sorted(dropped.items())),
    ]


def labelled(lines: list[str], labels: str) -> list[str]:
    """The exposition's sample lines with ``labels`` added first to each (comment lines as they are)."""
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(line)
        else:
            name, sep, rest = line.partition("{")
            out.append(f"{name}{{{labels},{rest}" if sep else line.replace(" ", f"{{{labels}}} ", 1))
    return out


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))
