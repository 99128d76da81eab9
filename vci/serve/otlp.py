"""OTLP/HTTP trace export: finished spans encoded as an ``ExportTraceServiceRequest`` protobuf and POSTed.

The encoder is written here (protobuf's wire format: varints, fixed64 and length-delimited fields) for
the few messages a span needs, instead of importing opentelemetry-sdk and its exporter: the SDK took
128 ms to import and about 40 us per span on this machine (five spans a request would have cost a fast
model half its throughput), where a span here is a tuple on the request path and ~3 us of encoding in
the exporter thread. tests/fakes/otlp_receiver.py decodes what it sends with opentelemetry-proto's own
message classes, so the bytes are checked against the protocol's definitions.

Field numbers (opentelemetry/proto/trace/v1/trace.proto, common/v1, resource/v1)::

    ExportTraceServiceRequest  1 resource_spans
    ResourceSpans              1 resource, 2 scope_spans
    Resource                   1 attributes (KeyValue)
    ScopeSpans                 1 scope, 2 spans
    InstrumentationScope       1 name, 2 version
    Span                       1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7 start (fixed64),
                               8 end (fixed64), 9 attributes, 15 status, 16 flags (fixed32)
    Status                     2 message, 3 code (2 ERROR; a span that did not fail has none)
    KeyValue                   1 key, 2 value (AnyValue: 1 string, 2 bool, 3 int64, 4 double)
"""

from __future__ import annotations

import functools
import http.client
import struct
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from .. import __version__

SERVER, INTERNAL = 2, 1  # Span.SpanKind
STATUS_ERROR = 2  # Status.StatusCode
SAMPLED_FLAGS = 0x101  # Span.flags: sampled (W3C flag 01) and "the parent's remoteness is known" (0x100)
REMOTE_PARENT = 0x200  # Span.flags: the parent span came from another process (a request's traceparent)
Value = str | int | float | bool


class Span(NamedTuple):
    """One finished span: ids as bytes (16 for the trace, 8 for a span, the parent b"" for a root), times
    in ns. ``attributes`` are pairs whose encoding is cached (a route, a method, a status: a few values
    that recur), ``more`` those encoded each time (a request id)."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: tuple[tuple[str, Value], ...] = ()
    more: tuple[tuple[str, Value], ...] = ()
    error: str | None = None  # the status message when the span failed, else none (unset)
    remote_parent: bool = False
    trace_state: str = ""  # the W3C tracestate the request came with


_SMALL = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes and nested messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _number(number: int, value: int) -> bytes:
    """A varint field (wire type 0): enums, bools and non-negative ints."""
    return _varint(number << 3) + _varint(value)


def _any_value(value: Value) -> bytes:
    if isinstance(value, bool):
        return _number(2, int(value))
    if isinstance(value, int):
        return _number(3, value & 0xFFFFFFFFFFFFFFFF)  # int64: a negative one as its two's complement
    if isinstance(value, float):
        return _varint(4 << 3 | 1) + struct.pack("<d", value)
    return _field(1, str(value).encode())


def _attributes(number: int, pairs: Iterable[tuple[str, Value]]) -> bytes:
    """KeyValue fields, each field ``number`` of its message."""
    return b"".join([_field(number, _field(1, key.encode()) + _field(2, _any_value(value))) for key, value in pairs])


_cached_attributes = functools.lru_cache(maxsize=256)(_attributes)
_TIMES = struct.Struct("<BQBQ")  # fields 7 and 8 (fixed64), each after its one-byte tag
_FLAGS_TAG = _varint(16 << 3 | 5)
_LOCAL_FLAGS = _FLAGS_TAG + struct.pack("<I", SAMPLED_FLAGS)
_REMOTE_FLAGS = _FLAGS_TAG + struct.pack("<I", SAMPLED_FLAGS | REMOTE_PARENT)


@functools.lru_cache(maxsize=64)
def _name_and_kind(name: str, kind: int) -> bytes:
    return _field(5, name.encode()) + _number(6, kind)


def encode_span(span: Span) -> bytes:
    """One Span message."""
    parts = [b"\x0a\x10", span.trace_id, b"\x12\x08", span.span_id]
    if span.trace_state:
        parts.append(_field(3, span.trace_state.encode()))
    if span.parent_id:
        parts += (b"\x22\x08", span.parent_id)
    parts += (_name_and_kind(span.name, span.kind), _TIMES.pack(7 << 3 | 1, span.start_ns, 8 << 3 | 1, span.end_ns))
    parts += (_cached_attributes(9, span.attributes), _attributes(9, span.more))
    if span.error:  # else the status stays unset, as instrumentation leaves a span that did not fail
        parts.append(_field(15, _field(2, span.error.encode()) + _number(3, STATUS_ERROR)))
    parts.append(_REMOTE_FLAGS if span.remote_parent else _LOCAL_FLAGS)
    return b"".join(parts)


def encode_child(trace_id: bytes, span_id: bytes, parent_id: bytes, name: str, start_ns: int, end_ns: int) -> bytes:
    """An INTERNAL span without attributes whose parent is in this process (a request's decode, queue,
    predict or encode): :func:`encode_span`'s message for those, in a third of its time."""
    return b"".join(
        (b"\x0a\x10", trace_id, b"\x12\x08", span_id, b"\x22\x08", parent_id,
         _name_and_kind(name, INTERNAL), _TIMES.pack(7 << 3 | 1, start_ns, 8 << 3 | 1, end_ns), _LOCAL_FLAGS)
    )  # fmt: skip


def framed(encoded_spans: Iterable[bytes]) -> bytes:
    """Span messages as the ``spans`` fields of a ScopeSpans (what :func:`encode_request` takes)."""
    return b"".join([_field(2, span) for span in encoded_spans])


def encode_request(resource: Mapping[str, Value], spans: bytes) -> bytes:
    """An ExportTraceServiceRequest of one resource and one scope (``vci``) holding the :func:`framed`
    ``spans``."""
    scope = _field(1, _field(1, b"vci") + _field(2, __version__.encode()))
    scope_spans = scope + spans
    resource_spans = _field(1, _attributes(1, resource.items())) + _field(2, scope_spans)
    return _field(1, resource_spans)


class Exporter:
    """POSTs encoded requests to one OTLP/HTTP traces endpoint on a kept-alive connection (one thread)."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float):
        parts = urlsplit(url)
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname or "", parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {**headers, "Content-Type": "application/x-protobuf"}
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> None:
        """Send one request; raise OSError or http.client.HTTPException, or ExportRefused for a non-2xx."""
        conn = self._conn or self._connect()
        try:
            conn.request("POST", self.path, body=body, headers=self.headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if not 200 <= response.status < 300:
            raise ExportRefused(response.status, answer[:200].decode(errors="replace"))

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        self._conn = kind(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ExportRefused(Exception):
    """The collector answered an export with an error status."""

    def __init__(self, status: int, text: str):
        super().__init__(f"the collector answered {status}: {text}")
        self.status = status
