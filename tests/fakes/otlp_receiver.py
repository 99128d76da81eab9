"""An OTLP/HTTP traces receiver on 127.0.0.1, faithful to the OpenTelemetry Collector's ``otlp`` receiver.

No collector installs from PyPI, Debian or npm, so this one stands in for it. What it enforces, as the
collector's receiver does: ``POST /v1/traces`` only (404 for another path, 405 for another method), a
``Content-Type`` of ``application/x-protobuf`` (415 otherwise; JSON is not taken here since nothing of vci
sends it), gzip ``Content-Encoding`` inflated, and a body that decodes as an ``ExportTraceServiceRequest``
with opentelemetry-proto's own message classes, every trace id 16 bytes and span id 8 bytes (a parent
span id empty or 8), as the collector's pdata unmarshalling demands (400 otherwise). It answers 200 with
an empty ``ExportTraceServiceResponse`` in protobuf. ``required_headers`` stand for an authenticator
extension (401 without them). Every accepted span is kept, decoded, in :attr:`OtlpReceiver.spans`.

    python tests/fakes/otlp_receiver.py   # a receiver process that counts spans (benchmarks/tracing.py): prints its URL
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector would hand it on: ids in hex, its resource's and its own attributes."""

    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    name: str
    kind: str  # SPAN_KIND_SERVER, ...
    start_ns: int
    end_ns: int
    attributes: dict
    resource: dict
    status: str  # STATUS_CODE_UNSET, STATUS_CODE_ERROR
    flags: int
    trace_state: str  # the W3C tracestate the span was started with ("" when none)


def _value(value: AnyValue):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs) -> dict:
    return {pair.key: _value(pair.value) for pair in pairs}


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of an ExportTraceServiceRequest; ValueError for what the collector refuses."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise ValueError(f"the body is not an ExportTraceServiceRequest: {exc}") from None
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8 or len(span.parent_span_id) not in (0, 8):
                    raise ValueError(f"span {span.name!r}: a trace id of 16 bytes and span ids of 8 are required")
                spans.append(
                    ReceivedSpan(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.name,
                        SpanMessage.SpanKind.Name(span.kind),
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        _attributes(span.attributes),
                        resource,
                        span.status.StatusCode.Name(span.status.code),
                        span.flags,
                        span.trace_state,
                    )
                )
    return spans


def count(body: bytes) -> int:
    """The number of spans in an ExportTraceServiceRequest (decoded, not kept)."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise ValueError(f"the body is not an ExportTraceServiceRequest: {exc}") from None
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class OtlpReceiver:
    """The receiver, started on a free port: ``url`` is what OTEL_EXPORTER_OTLP_ENDPOINT is set to."""

    def __init__(self, required_headers: dict[str, str] | None = None, status: int = 200, keep: bool = True):
        self.spans: list[ReceivedSpan] = []
        self.keep = keep  # False: count the spans (``counted``) without keeping them, as a benchmark's sink
        self.counted = 0
        self.requests: list[dict[str, str]] = []  # the headers of each accepted export
        self.refused: list[tuple[int, str]] = []
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}
        self.status = status  # set to 503 to have every export refused, as an overloaded collector does
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count:
            assert time.monotonic() < deadline, f"{len(self.spans)} spans of {count} arrived: {self.spans}"
            time.sleep(0.02)
        return list(self.spans)

    def accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Check and decode one export as the collector does: (status, answer body)."""
        if path.split("?", 1)[0] != "/v1/traces":
            return 404, b"404 page not found"
        if headers.get("content-type", "").split(";")[0].strip() != "application/x-protobuf":
            return 415, b"415 unsupported media type, supported: [application/x-protobuf]"
        if any(headers.get(k) != v for k, v in self.required_headers.items()):
            return 401, b"missing or wrong credentials"
        if self.status != 200:
            return self.status, b"the collector is refusing data"
        try:
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            spans = decode(body) if self.keep else count(body)
        except (ValueError, OSError) as exc:
            return 400, f"bad request: {exc}".encode()
        with self._lock:
            if isinstance(spans, list):
                self.spans += spans
                self.requests.append(headers)
            self.counted += spans if isinstance(spans, int) else len(spans)
        return 200, ExportTraceServiceResponse().SerializeToString()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = receiver.accept(self.path, headers, body)
                if status != 200:
                    receiver.refused.append((status, answer.decode()))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self):
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler


if __name__ == "__main__":
    receiver = OtlpReceiver(keep=False)
    print(receiver.url, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        receiver.close()
