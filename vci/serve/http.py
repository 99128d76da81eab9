"""The HTTP/1.1 front end: an asyncio protocol with keep-alive, limits, timeouts and graceful drain.

Why a server of our own: ``benchmarks/serve.py`` decided it. With a scikit-learn LogisticRegression
on iris (one row per request; wrk on the same 2 shared CPUs; the in-process floor of JSON decode +
predict + encode was 4,011 calls/s = 0.25 ms), one run measured:

    stack                                   c=8 req/s (of floor)   c=1 p50 - floor   c=8 p99
    this server, model calls inline         2,425 (60%)            0.20 ms           6.0 ms
    this server, every call via its pool    1,406 (35%)            0.39 ms           12.5 ms
    stdlib ThreadingHTTPServer (keep-alive) 1,425 (36%)            0.47 ms           19.5 ms

Besides being slower, the stdlib server has no drain, body limit or slow-client timeout of its own.
The parser (vci.serve.wire) was measured against h11 and httptools by ``benchmarks/http_parser.py``
(docs/design.md, "The HTTP parser": kept). Where model calls run is decided by the same numbers:
handing each call to a thread and back costs ~0.2 ms and 40% of the throughput (two cross-thread
wake-ups and GIL hand-offs per request). So a call runs inline on the loop while the model's
moving-average call time stays under ``inline_below`` (2 ms) and its body is small, and in the pool
otherwise (also before any call has been timed), so that a slow model cannot hold up ``/healthz``,
``/metrics`` or other clients. ``threads=0`` keeps every call inline.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from . import docs_page, logs, v2, v2_rest
from .auth import Tokens
from .batching import Batcher
from .metrics import CONTENT_TYPE
from .payloads import PayloadLog
from .service import JSON, Codec, Reply, error_reply
from .shadow import Mirror
from .tracing import TRACEPARENT, TRACESTATE, Trace, Tracer, passed_on, state_of, trace_id_of
from .v2_rest import InferCall, is_v2, method_of, parse_path, route_label
from .wire import (
    MAX_HEAD_BYTES,
    BadRequest,
    ChunkedBody,
    Head,
    parse_head,
    render_response,
    request_id_from,
)

ROUTES = {
    "/predict": "POST",
    "/batch-predict": "POST",
    "/healthz": "GET",
    "/readyz": "GET",
    "/metadata": "GET",
    "/metrics": "GET",
    **dict.fromkeys(docs_page.ROUTES, "GET"),  # /openapi.json, /docs and its assets
}
_PAUSE_AT = MAX_HEAD_BYTES  # stop reading a pipelining client once this much is buffered
SMALL_BODY = 64 * 1024  # bodies up to this size are read without taking from the shared budget
INLINE_MAX_BODY = 64 * 1024  # a larger body is decoded and predicted in the pool, not on the loop
RETRY_AFTER = 1  # seconds, in the 503 that a request gets when the body budget is spent
IDLE_GRACE = 1.0  # seconds an idle keep-alive connection stays open after SIGTERM, for a request on its way


class HttpServer:
    """State shared by all connections: the model service, metrics, limits and the drain flag."""

    def __init__(
        self,
        service,
        metrics,
        *,
        pool=None,
        max_body: int,
        max_buffered: int | None = None,
        idle_timeout: float = 75.0,
        request_timeout: float = 60.0,
        inline_below: float = 0.002,
    ):
        self.service, self.metrics, self.pool = service, metrics, pool
        self.inline_below = inline_below
        self.max_body, self.idle_timeout, self.request_timeout = max_body, idle_timeout, request_timeout
        self.max_buffered = max_body * 4 if max_buffered is None else max_buffered
        self.buffered = 0  # bytes of request bodies over SMALL_BODY that connections hold (see HttpConnection)
        self.connections: set[HttpConnection] = set()
        self.draining = False
        self.batcher: Batcher | None = None  # set when /predict requests are batched (vci.serve.batching)
        self.auth: Tokens | None = None  # set when routes need a bearer token (vci.serve.auth)
        self.mirror: Mirror | None = None  # set when a release may shadow this server (vci.serve.shadow)
        self.payloads: PayloadLog | None = None  # set when prediction payloads are logged (vci.serve.payloads)
        self.tracer: Tracer | None = None  # set when spans are exported (vci.serve.tracing)

    def protocol(self) -> HttpConnection:
        return HttpConnection(self)

    def get_reply(self, path: str, request_id: str) -> Reply:
        """Answer one of the GET routes (cheap: runs on the loop)."""
        service = self.service
        if path == "/healthz":
            return Reply(200, b'{"status":"alive"}')
        if path == "/readyz":
            if service.ready:
                return Reply(200, json.dumps({"ready": True, "model_digest": service.digest}).encode())
            body = {"ready": False, "state": service.state, "error": service.reason, "request_id": request_id}
            return Reply(503, json.dumps(body).encode())
        if path == "/metadata":
            return Reply(200, json.dumps(service.metadata()).encode())
        if path in docs_page.ROUTES:
            return docs_page.reply(service, path, request_id, bearer=self.auth is not None)
        return Reply(200, self.metrics.render(), CONTENT_TYPE)

    async def drain(self, timeout: float, idle_grace: float = IDLE_GRACE) -> None:
        """Answer what open connections still send (each answer says ``Connection: close`` and closes its
        connection); after ``idle_grace`` s close the idle ones; abort what is left after ``timeout`` s.

        The grace is for keep-alive clients (a proxy's pool, a connection kube-proxy keeps pointing at this
        pod): a request they sent just as SIGTERM arrived is answered, not met with a reset."""
        self.draining = True
        if self.batcher is not None:  # queued requests go to the model now, and are answered within the drain
            self.batcher.flush()
        started = time.monotonic()
        deadline = started + timeout
        while self.connections and time.monotonic() < deadline:
            if time.monotonic() - started >= min(idle_grace, timeout):
                for conn in list(self.connections):
                    if conn.idle:
                        conn.transport.close()
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.transport.abort()


def _json_content_type(headers: dict[str, str]) -> bool:
    value = headers.get("content-type")
    if value is None:
        return True  # lenient: a client that names no type gets JSON parsing, a wrong type gets 415
    media = value.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def decode_body(headers: dict[str, str], body: bytes, limit: int) -> bytes | tuple[int, str]:
    """The body as sent (identity) or gunzipped (``Content-Encoding: gzip``), never more than ``limit``
    bytes once decompressed; else ``(status, message)``: 415 for other encodings, 413, or 400."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        return 415, f"Content-Encoding {encoding[:40]} is not supported: send gzip or none"
    import zlib

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        return 400, "the body is not valid gzip"
    if len(data) > limit or inflater.unconsumed_tail:
        return 413, f"the decompressed request body is over the limit of {limit} bytes"
    if not inflater.eof:
        return 400, "the gzip body is truncated"
    return data


class HttpConnection(asyncio.Protocol):
    """One client connection: reads requests one at a time (pipelined bytes wait in the buffer).

    Memory: a head is at most MAX_HEAD_BYTES (431 beyond), pipelined bytes pause reading past _PAUSE_AT,
    and a body over SMALL_BODY holds its size from the server's shared budget (``max_buffered``) from
    its head (Content-Length) or chunk by chunk until its response is written; a body that does not
    fit gets 503 with Retry-After, so a client can retry (on another replica) instead of waiting."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.head: Head | None = None
        self.busy = False
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None  # fires at or before ``deadline`` (see _arm)
        self.deadline: float | None = None  # loop time the connection times out at; None while answering
        self.request_id = ""
        self.started = 0.0
        self.eof = False
        self.mirrored: bytes | None = None  # this /predict request's body, for a shadow once it is answered
        self.discarding = False
        self.chunks: ChunkedBody | None = None
        self.reserved = 0  # bytes of the server's body budget this connection holds
        self.body = b""  # the request body being answered (for the payload log)
        self.trace: Trace | None = None  # the request's spans, when they are exported (vci.serve.tracing)

    @property
    def idle(self) -> bool:
        return not self.busy and self.head is None and not self.buf

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)
        self._arm(self.server.idle_timeout)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        if not self.busy:  # a model call in the pool still holds its body: _finish releases it
            self._release()
        if self.timer:
            self.timer.cancel()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent in full, then close."""
        self.eof = True
        if self.idle:
            return False
        if not self.busy:
            self._advance()
        return True  # keep the transport open to write the pending response

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        if self.idle:
            self._arm(self.server.request_timeout)  # a slow client gets this long for one request
        self.buf += data
        if self.busy:
            if len(self.buf) > _PAUSE_AT and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._advance()

    def _arm(self, seconds: float) -> None:
        """Time the connection out ``seconds`` from now. The timer is moved only when it would fire after
        the new deadline: a kept-alive connection's next deadline is later than its timer (both timeouts
        count from its last event), so a request sets a float instead of making and cancelling two timer
        handles (2.3 us of the loop's ~45 us a request)."""
        deadline = self.deadline = self.loop.time() + seconds
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self.timer = None
        if self.deadline is None:  # answering: _finish arms again
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)
            return
        self._timed_out()

    def _timed_out(self) -> None:
        if self.busy:
            return
        if self.idle:
            self.transport.close()
        else:
            self._fail(BadRequest(408, "the request was not received in time"))

    def _advance(self) -> None:
        """Parse what is buffered; dispatch once a whole request is there."""
        if self.busy or self.discarding or self.transport.is_closing():
            return
        if self.eof and self.idle:
            self.transport.close()
            return
        try:
            head = self.head if self.head is not None else self._read_head()
            body = self._read_body(head) if head is not None else None
            if body is None and self.eof:
                raise BadRequest(400, "the connection ended inside a request")
        except BadRequest as exc:
            self._fail(exc)
            return
        except Exception as exc:  # a bug of ours: logged whole, answered, and the protocol goes on
            logs.failure("request_parse_failed", exc, request_id=self.request_id)
            self._fail(BadRequest(500, "the server failed while reading this request (details are in its log)"))
            return
        if head is not None and body is not None:
            self.head = None
            self._dispatch(head, body)

    def _read_head(self) -> Head | None:
        """Parse a complete buffered head into ``self.head`` and return it; None while it is incomplete."""
        end = self.buf.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        if end < 0:
            if len(self.buf) >= MAX_HEAD_BYTES + 4:
                raise BadRequest(431, f"the request head is over the limit of {MAX_HEAD_BYTES} bytes")
            return None
        head = parse_head(bytes(self.buf[:end]))
        del self.buf[: end + 4]
        self.head = head
        self.request_id = request_id_from(head.headers) or os.urandom(12).hex()
        if head.content_length > self.server.max_body:
            raise BadRequest(413, f"the request body is over the limit of {self.server.max_body} bytes")
        self._reserve(head.content_length)
        if head.expect_continue and head.content_length != 0 and len(self.buf) == 0:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return head

    def _read_body(self, head: Head) -> bytes | None:
        need = head.content_length
        if need < 0:
            chunks = self.chunks = self.chunks or ChunkedBody(self.server.max_body)
            done = chunks.feed(self.buf)
            self._reserve(len(chunks.data))
            if not done:
                return None
            self.chunks = None
            return bytes(chunks.data)
        if len(self.buf) < need:
            return None
        with memoryview(self.buf) as view:
            body = bytes(view[:need])  # one copy (a slice of the bytearray would make two)
        del self.buf[:need]
        return body

    def _reserve(self, size: int) -> None:
        """Hold ``size`` bytes of the server's body budget for the request being read; 503 when spent."""
        server = self.server
        want = size if size > SMALL_BODY else 0
        if want <= self.reserved:
            return
        if server.buffered + want - self.reserved > server.max_buffered:
            raise BadRequest(503, "the server is holding as many request bodies as it may: retry shortly", RETRY_AFTER)
        server.buffered += want - self.reserved
        self.reserved = want

    def _release(self) -> None:
        self.server.buffered -= self.reserved
        self.reserved = 0

    def _dispatch(self, head: Head, body: bytes) -> None:
        self._begin()
        self.body = body
        if self.server.tracer is not None and head.method == "POST":
            headers = head.headers
            self.trace = self.server.tracer.begin(headers.get(TRACEPARENT), self.started, headers.get(TRACESTATE))
        auth = self.server.auth
        if auth is not None:  # vci.serve.auth: a guarded route without an accepted bearer token gets 401
            route = route_label(head.path) if is_v2(head.path) else head.path
            if (refusal := auth.refusal(route, auth.presented(head.headers), self.request_id)) is not None:
                self._finish(head, refusal)
                return
        if is_v2(head.path):
            self._dispatch_v2(head, body)
            return
        allowed = ROUTES.get(head.path)
        rid = self.request_id
        if allowed is None:
            reply = error_reply(404, f"no route {head.path[:200]}", rid)
        elif head.method != allowed:
            reply = error_reply(405, f"{head.path} takes {allowed}", rid)
            self._finish(head, reply, extra=f"Allow: {allowed}\r\n")
            return
        elif allowed == "GET":
            reply = self.server.get_reply(head.path, rid)
        elif not _json_content_type(head.headers):
            reply = error_reply(415, "send the body as Content-Type: application/json", rid)
        elif isinstance(decoded := self._decoded(head, body), tuple):
            reply = error_reply(*decoded, rid)
        elif self.server.batcher is not None and head.path == "/predict":
            self.server.batcher.submit(decoded, rid, lambda reply: self._finish(head, reply), None, self.trace)
            return
        elif self._offload(decoded):
            self.server.pool.submit(self._call_model, head, decoded, rid)
            return
        else:
            reply = self.server.service.call(decoded, head.path == "/batch-predict", rid, None, self.trace)
        self._finish(head, reply)

    def _decoded(self, head: Head, body: bytes) -> bytes | tuple[int, str]:
        """The request's JSON bytes (or the error), remembered for a shadow when this server has one."""
        decoded = decode_body(head.headers, body, self.server.max_body)
        if self.server.mirror is not None and head.path == "/predict" and not isinstance(decoded, tuple):
            self.mirrored = decoded
        return decoded

    def _dispatch_v2(self, head: Head, body: bytes) -> None:
        """The Open Inference Protocol's routes (vci.serve.v2_rest); infer is called as /predict is."""
        route, rid = parse_path(head.path), self.request_id
        if route is None:
            self._finish(head, error_reply(404, f"no route {head.path[:200]}", rid))
            return
        template, name, version = route
        if head.method != method_of(template):
            self._finish(
                head,
                error_reply(405, f"{template} takes {method_of(template)}", rid),
                extra=f"Allow: {method_of(template)}\r\n",
            )
            return
        if method_of(template) == "GET":
            self._finish(head, v2_rest.get_reply(self.server.service, template, name, version, rid))
            return
        if isinstance(decoded := decode_body(head.headers, body, self.server.max_body), tuple):
            self._finish(head, error_reply(*decoded, rid))
            return
        codec = InferCall(str(name), version, head.headers.get(v2.HEADER_LENGTH))
        if self.server.batcher is not None:
            self.server.batcher.submit(decoded, rid, lambda reply: self._finish(head, reply), codec, self.trace)
        elif self._offload(decoded):
            self.server.pool.submit(self._call_model, head, decoded, rid, codec)
        else:
            self._finish(head, self.server.service.call(decoded, False, rid, codec, self.trace))

    def _offload(self, body: bytes) -> bool:
        """Whether the model call goes to the pool: always once the model is slow on average, before
        its first call has been timed (a model without model_test), and for large bodies."""
        server = self.server
        if server.pool is None:
            return False
        seconds = server.service.predict_seconds
        return seconds is None or seconds >= server.inline_below or len(body) > INLINE_MAX_BODY

    def _call_model(self, head: Head, body: bytes, rid: str, codec: Codec | None = None) -> None:
        """Runs in a pool thread; hands the reply back to the loop (service.call never raises)."""
        reply = self.server.service.call(body, head.path == "/batch-predict", rid, codec, self.trace)
        self.loop.call_soon_threadsafe(self._finish, head, reply)

    def _end_trace(self, trace: Trace, method: str, route: str, status: int) -> None:
        """Hand the request's trace to the exporter (its server span ends now)."""
        self.trace = None
        if self.server.tracer is not None:
            attributes = (("http.request.method", method), ("http.route", route), ("http.response.status_code", status))
            error = f"HTTP {status}" if status >= 500 else None
            self.server.tracer.finish(trace, f"{method} {route}", attributes, self.request_id, error)

    def _begin(self) -> None:
        self.busy = True
        self.started = time.perf_counter()
        self.server.metrics.started()
        self.deadline = None  # no timeout while the request is answered (the timer, if due, does nothing)

    def _fail(self, exc: BadRequest) -> None:
        """Answer a request that could not be parsed or accepted, then close the connection.

        The client may still be sending (say a body over the limit): its bytes are dropped for a
        moment after a half-close, because closing with unread data sends a reset that can destroy
        the error response before the client reads it."""
        head, self.head = self.head, None
        self.buf.clear()
        self.chunks = None
        self.request_id = (request_id_from(head.headers) if head else None) or os.urandom(12).hex()
        self._begin()
        self.discarding = not self.transport.is_closing() and self.transport.can_write_eof()
        extra = f"Retry-After: {exc.retry_after}\r\n" if exc.retry_after is not None else ""
        self._finish(head, error_reply(exc.status, exc.message, self.request_id), close=True, extra=extra)
        if self.discarding:
            self.transport.write_eof()
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_later(2.0, self.transport.close)

    def _finish(self, head: Head | None, reply: Reply, *, close: bool = False, extra: str = "") -> None:
        """Write the reply, record it, and go on with the next request or close."""
        server, rid, trace = self.server, self.request_id, self.trace
        close = close or head is None or not head.keep_alive or server.draining or (self.eof and not self.buf)
        incoming = head.headers.get(TRACEPARENT) if head else None
        traceparent = trace.header() if trace is not None else passed_on(incoming)
        if traceparent is not None:
            extra += f"traceparent: {traceparent}\r\n"
        if not self.transport.is_closing():
            self.transport.write(
                render_response(
                    reply.status, reply.body, reply.content_type, rid, close=close, extra=extra + reply.headers
                )
            )
        route, seconds = head.path if head else "-", time.perf_counter() - self.started
        label = route_label(route) if is_v2(route) else route
        server.metrics.finished(label, reply.status, seconds)
        logs.request(rid, route[:200], head.method if head else "-", reply.status, seconds * 1000)
        if trace is not None and head is not None:
            self._end_trace(trace, head.method, label, reply.status)
        if server.payloads is not None and head is not None:  # the logging hook: a deque append, or a drop
            trace_id = trace.trace_hex if trace is not None else trace_id_of(traceparent)
            server.payloads.offer(route, head.headers, self.body, reply.status, reply.body, seconds, rid, trace_id)
        self.body = b""
        if self.mirrored is not None:  # after the answer is written: a shadow never delays it
            if reply.status == 200 and server.mirror is not None and head is not None:
                sent = head.headers.get(TRACESTATE)
                state = trace.state if trace is not None else state_of(traceparent, sent)
                server.mirror.offer(self.mirrored, reply.body, traceparent, state)
            self.mirrored = None
        self.busy = False
        self._release()
        if close:
            if not self.discarding:
                self.transport.close()
            return
        self._arm(server.request_timeout if self.buf else server.idle_timeout)
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if self.buf:
            self.loop.call_soon(self._advance)  # not recursion: a long pipeline must not blow the stack
