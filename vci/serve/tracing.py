"""Tracing: each request's W3C ``traceparent`` passed on, and its spans exported over OTLP/HTTP when asked for.

Off (no ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) the server takes part in
no trace and costs nothing: a request's valid ``traceparent`` is passed on unchanged, in the response (an
HTTP header; gRPC trailing metadata), to a shadow's candidate, and as the payload record's ``trace_id``.

On, each prediction request (HTTP POST routes, gRPC Predict, BatchPredict and ModelInfer) is a server span,
the child of the incoming ``traceparent`` or the root of a new trace, with the children ``decode``,
``queue`` (batching), ``predict`` and ``encode``; the response's ``traceparent`` names the server span.
On the request path a span is a tuple of two clock readings; once the request is answered its spans are
encoded (vci.serve.otlp, ~8 us for five) and appended to a bounded deque as one bytes object (when it is
full the trace is dropped and counted): bytes are not tracked by the garbage collector, where the traces
queued as tuples for up to ``POLL`` seconds outlived the young generations and set off full collections of
the whole heap, 100-200 ms pauses of every request (wrk's p99 at 150-175 ms with tracing on, 39 ms with
gc disabled). They are encoded there, on the request's own thread, because encoding them in the
exporter thread cost the event loop more than the work itself: the two threads took the GIL from each
other at every system call of the loop (measured per thread under wrk: the loop thread +70 us a request
with the exporter encoding, +30 us encoding itself, the exporter 12 and 3 us). A background thread POSTs
what is queued every ``POLL`` seconds; an export that fails is dropped, counted and logged (at most every
``LOG_EVERY`` s), never retried, never waited for by a request. SIGTERM exports what is queued within the
drain timeout.

The standard variables read: ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` (the traces one as is, the other
with ``/v1/traces`` appended), ``_HEADERS`` (``k=v,...``: credentials, never logged), ``_TIMEOUT`` (ms),
``_PROTOCOL`` (``http/protobuf`` only), ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER`` (``parentbased_always_on`` by default, ``always_on``, ``always_off``,
``traceidratio``, ``parentbased_traceidratio``, ``parentbased_always_off``) with ``OTEL_TRACES_SAMPLER_ARG``,
``OTEL_TRACES_EXPORTER`` (``otlp`` or ``none``) and ``OTEL_SDK_DISABLED``. A request that is not sampled
is served as with tracing off.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from . import logs, otlp

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_STATE_MEMBER = re.compile(
    r"(?:[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13}|[a-z][a-z0-9_*/-]{0,255})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
MAX_STATE = 512  # characters of a tracestate passed on (W3C: at least 512 must be propagated)
_HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\r\n]*)?")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
POLL = 0.5  # seconds between the exporter's looks at the queue
MAX_EXPORT = 512  # traces in one export request
QUEUE = 16_384  # finished traces waiting for the exporter; beyond, dropped and counted
LOG_EVERY = 30.0  # seconds between two log lines of failed exports
SAMPLERS: tuple[str, ...] = ("parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio")
SAMPLERS += ("always_on", "always_off", "traceidratio")


def passed_on(header: str | None) -> str | None:
    """``header`` when it is a valid traceparent (to pass on unchanged), else None."""
    if header is None:
        return None
    parsed = parse(header)
    return header if parsed is not None else None


def parse(header: str) -> tuple[str, str, bool] | None:
    """``(trace id, parent span id, sampled)`` of a valid traceparent (the ids in hex), else None (W3C
    Trace Context: version ``ff``, all-zero ids and a version-00 header with more fields are invalid)."""
    match = _HEADER.fullmatch(header)
    if match is None:
        return None
    version, trace_hex, parent_hex, flags, more = match.groups()
    if version == "ff" or (version == "00" and more) or trace_hex == _ZERO_TRACE or parent_hex == _ZERO_SPAN:
        return None
    return trace_hex, parent_hex, flags[1] in "13579bdf"  # the flags' lowest bit: sampled


def state_of(traceparent: str | None, header: str | None) -> str | None:
    """The tracestate to pass on beside a valid ``traceparent``: ``header`` unchanged when it is a valid
    list of at most 32 members and MAX_STATE characters (W3C Trace Context), else None (dropped whole)."""
    if traceparent is None or not header or len(header) > MAX_STATE:
        return None
    members = [member.strip(" \t") for member in header.split(",")]
    members = [member for member in members if member]  # empty list members are allowed, and skipped
    if not members or len(members) > 32 or not all(_STATE_MEMBER.fullmatch(member) for member in members):
        return None
    keys = [member.split("=", 1)[0] for member in members]
    return header if len(set(keys)) == len(keys) else None


def trace_id_of(header: str | None) -> str | None:
    """The trace id (32 hex digits) of a traceparent that :func:`passed_on` kept."""
    return header[3:35] if header else None


class Trace:
    """One sampled request's trace: the server span's ids (hex; the parent "" for a root) and start, and its
    children's times (perf_counter)."""

    __slots__ = ("trace_hex", "parent_hex", "span_hex", "start", "spans", "state")

    def __init__(self, trace_hex: str, parent_hex: str, start: float, state: str | None = None):
        self.trace_hex, self.parent_hex, self.start = trace_hex, parent_hex, start
        self.state = state or ""  # the incoming tracestate: the server span's trace_state
        self.span_hex = f"{random.getrandbits(64) or 1:016x}"
        self.spans: list[tuple[str, float, float]] = []

    def span(self, name: str, start: float) -> float:
        """Record a child span from ``start`` to now; return now (the next span's start)."""
        now = time.perf_counter()
        self.spans.append((name, start, now))
        return now

    def header(self) -> str:
        """The traceparent to pass on: this trace and the server span, sampled."""
        return f"00-{self.trace_hex}-{self.span_hex}-01"


@dataclass(frozen=True)
class TraceSettings:
    """What the server reads from the OTEL_* variables."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    sampler: str = "parentbased_always_on"
    ratio: float = 1.0
    resource: tuple[tuple[str, str], ...] = (("service.name", "vci-model"),)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> TraceSettings | None:
        """The settings, or None when tracing is off; UsageError for a setting this server cannot follow."""
        if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
            return None
        exporter = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
        url = _traces_url(env)
        if exporter == "none" or url is None:
            return None
        if exporter != "otlp":
            raise UsageError(f"OTEL_TRACES_EXPORTER={exporter[:40]!r} is not supported", hint="set it to otlp or none")
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol and protocol.strip() != "http/protobuf":
            raise UsageError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol[:40]!r} is not supported by the model server",
                hint="set http/protobuf and the collector's OTLP/HTTP port (4318)",
            )
        sampler, ratio = _sampler(env)
        return cls(url, _pairs(_either(env, "HEADERS"), "OTEL_EXPORTER_OTLP_HEADERS"), _timeout(env), sampler, ratio,
                   _resource(env))  # fmt: skip

    def sampled(self, trace_hex: str, parent_sampled: bool | None) -> bool:
        """The sampler's decision for a trace (``parent_sampled`` None: no incoming traceparent)."""
        name = self.sampler
        if name.startswith("parentbased_"):
            if parent_sampled is not None:
                return parent_sampled
            name = name.removeprefix("parentbased_")
        if name == "traceidratio":  # the trace id's low 64 bits against the ratio, as opentelemetry-sdk does
            return int(trace_hex[16:], 16) < round(self.ratio * 2**64)
        return name == "always_on"


def _either(env: Mapping[str, str], name: str) -> str:
    return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}") or ""


def _traces_url(env: Mapping[str, str]) -> str | None:
    url = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if not url and (base := (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()):
        url = base.rstrip("/") + "/v1/traces"
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"the OTLP endpoint {url[:100]!r} is not an http(s) URL",
            hint="set OTEL_EXPORTER_OTLP_ENDPOINT=http://COLLECTOR:4318",
        )
    return url


def _pairs(text: str, name: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` (values URL-encoded) as pairs; UsageError naming ``name`` (never its values)."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{name} has an entry that is not key=value", hint="write it as key1=value1,key2=value2")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return tuple(pairs)


def _timeout(env: Mapping[str, str]) -> float:
    text = _either(env, "TIMEOUT") or "10000"
    try:
        return float(text) / 1000
    except ValueError:
        raise UsageError(f"OTEL_EXPORTER_OTLP_TIMEOUT={text[:40]!r} is not a number of milliseconds") from None


def _sampler(env: Mapping[str, str]) -> tuple[str, float]:
    name = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    if name not in SAMPLERS:
        raise UsageError(f"OTEL_TRACES_SAMPLER={name[:40]!r} is not a sampler", hint="one of " + ", ".join(SAMPLERS))
    text = env.get("OTEL_TRACES_SAMPLER_ARG") or "1.0"
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if name.endswith("traceidratio") and not 0.0 <= ratio <= 1.0:
        raise UsageError(f"OTEL_TRACES_SAMPLER_ARG={text[:40]!r} is not a ratio", hint="set a number from 0 to 1")
    return name, ratio


def _resource(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    attributes = dict(_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES") or "", "OTEL_RESOURCE_ATTRIBUTES"))
    attributes["service.name"] = env.get("OTEL_SERVICE_NAME") or attributes.get("service.name") or "vci-model"
    for key, variable in (("vci.release_id", "VCI_RELEASE_ID"), ("vci.track", "VCI_TRACK")):
        if env.get(variable):
            attributes.setdefault(key, env[variable])
    if env.get("VCI_ENVIRONMENT"):
        attributes.setdefault("deployment.environment.name", env["VCI_ENVIRONMENT"])
    return tuple(attributes.items())


class Tracer:
    """The tracing of one server process: :meth:`begin` and :meth:`finish` on the request path (never
    blocking, never raising), the export in a background thread."""

    def __init__(self, settings: TraceSettings, exporter: otlp.Exporter | None = None):
        self.settings = settings
        self.exporter = exporter or otlp.Exporter(settings.url, dict(settings.headers), settings.timeout)
        self.queue: deque = deque()
        self.exported = 0
        self.dropped = {"queue_full": 0, "export_failed": 0}
        self._logged = -LOG_EVERY
        self.offset = _clock_offset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vci-tracing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def begin(self, header: str | None, start: float, state: str | None = None) -> Trace | None:
        """The trace of a request that began at ``start`` (perf_counter) with the traceparent ``header``
        (and the tracestate ``state``, kept only beside a valid traceparent), or None when the sampler
        leaves it out."""
        parsed = parse(header) if header else None
        if parsed is None:
            trace_hex, parent_hex, parent_sampled = f"{random.getrandbits(128) or 1:032x}", "", None
        else:
            trace_hex, parent_hex, parent_sampled = parsed
        if not self.settings.sampled(trace_hex, parent_sampled):
            return None
        return Trace(trace_hex, parent_hex, start, state_of(header, state) if parsed is not None else None)

    def finish(self, trace: Trace, name: str, attributes: tuple, request_id: str, error: str | None = None) -> None:
        """Queue a finished request's trace (its server span ends now), or count it dropped. ``attributes``:
        the server span's (key, value) pairs but its ``vci.request_id``."""
        if len(self.queue) >= QUEUE:
            self.dropped["queue_full"] += 1 + len(trace.spans)
            return
        try:  # encoded here, on the request's own thread (see the module's doc)
            spans = _encoded((trace, name, attributes, request_id, error, time.perf_counter()), self.offset)
            self.queue.append((1 + len(trace.spans), otlp.framed(spans)))  # untracked by gc once it has looked
        except Exception as exc:  # a bug of ours must not fail the request
            logs.failure("trace_encode_failed", exc)

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self.export_queued()
        self.export_queued()  # after close(): what the drain's last requests left

    def export_queued(self) -> None:
        """POST what is queued, MAX_EXPORT traces a request."""
        self.offset = _clock_offset()  # taken again each poll: the wall clock may have been stepped
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(MAX_EXPORT, len(self.queue)))]
            self._post(sum(count for count, _ in batch), b"".join([spans for _, spans in batch]))

    def _post(self, count: int, spans: bytes) -> None:
        try:
            self.exporter.post(otlp.encode_request(dict(self.settings.resource), spans))
        except Exception as exc:  # an unreachable or refusing collector loses these spans, counted
            self.dropped["export_failed"] += count
            if time.monotonic() - self._logged >= LOG_EVERY:
                self._logged = time.monotonic()
                logs.event("trace_export_failed", "warning", error=f"{type(exc).__name__}: {exc}"[:300],
                           spans=count, url=self.settings.url)  # fmt: skip
            return
        self.exported += count

    def close(self, timeout: float) -> None:
        """Export what is queued, within ``timeout`` seconds (a stuck collector loses it)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.exporter.close()

    def metric_lines(self) -> list[str]:
        return [
            "# HELP vci_trace_spans_exported_total Spans the OTLP collector took.",
            "# TYPE vci_trace_spans_exported_total counter",
            f"vci_trace_spans_exported_total {self.exported}",
            "# HELP vci_trace_spans_dropped_total Spans lost, never delaying a request.",
            "# TYPE vci_trace_spans_dropped_total counter",
            *(f'vci_trace_spans_dropped_total{{reason="{r}"}} {n}' for r, n in sorted(self.dropped.items())),
        ]


def _clock_offset() -> int:
    """What turns a perf_counter time ``t`` into Unix ns: ``int(t * 1e9) + offset``."""
    return time.time_ns() - int(time.perf_counter() * 1e9)


def _encoded(entry: tuple, offset: int) -> list[bytes]:
    """A finished request's server span and its children, encoded; a perf_counter time ``t`` is the Unix
    time ``int(t * 1e9) + offset`` ns."""
    trace, name, attributes, request_id, error, end = entry
    trace_id, span_id = bytes.fromhex(trace.trace_hex), bytes.fromhex(trace.span_hex)
    start_ns, end_ns = int(trace.start * 1e9) + offset, int(end * 1e9) + offset
    more = (("vci.request_id", request_id),)
    server = otlp.Span(trace_id, span_id, bytes.fromhex(trace.parent_hex), name, otlp.SERVER, start_ns, end_ns,
                       attributes, more, error, bool(trace.parent_hex), trace.state)  # fmt: skip
    encoded = [otlp.encode_span(server)]
    for child, began, ended in trace.spans:
        child_id = (random.getrandbits(64) or 1).to_bytes(8, "big")
        began_ns, ended_ns = int(began * 1e9) + offset, int(ended * 1e9) + offset
        encoded.append(otlp.encode_child(trace_id, child_id, span_id, child, began_ns, ended_ns))
    return encoded
