"""The gRPC front end: ``vci.Model`` with JSON bytes in and out, no protoc step (grpcio imported here only).

Methods (request and response messages are raw bytes holding UTF-8 JSON)::

    /vci.Model/Predict        JSON input           -> JSON output of model.predict
    /vci.Model/BatchPredict   JSON list of inputs  -> JSON list of outputs (batch_predict when defined)
    /vci.Model/Health         empty                -> {"status": "SERVING", "model_digest": ...}
                                                      or UNAVAILABLE while loading / after a failed self-test

A client calls them with ``channel.unary_unary("/vci.Model/Predict")`` (no serializers: bytes pass
through). Send ``x-request-id`` in the call metadata to have it echoed in the trailing metadata.
Errors carry the same message as the HTTP ``{"error": ...}`` body, with the status mapped by
:func:`grpc_code` (400 -> INVALID_ARGUMENT, 503 -> UNAVAILABLE, 500 -> INTERNAL, ...).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import ServeError
from . import logs, v2_grpc
from .auth import Tokens
from .payloads import PayloadLog
from .service import Reply
from .tracing import TRACEPARENT, TRACESTATE, Trace, Tracer, passed_on, trace_id_of

SERVICE = "vci.Model"
METHODS = ("Predict", "BatchPredict", "Health")
TRACED = ("Predict", "BatchPredict", "ModelInfer")  # the methods whose calls are spans (vci.serve.tracing)
_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


def grpc_code_name(http_status: int) -> str:
    """The gRPC status code name for an HTTP status (other 4xx -> FAILED_PRECONDITION, 5xx -> INTERNAL)."""
    if http_status in _CODES:
        return _CODES[http_status]
    return "FAILED_PRECONDITION" if 400 <= http_status < 500 else "INTERNAL"


def grpc_code(http_status: int):
    import grpc

    return getattr(grpc.StatusCode, grpc_code_name(http_status))


class GrpcFrontEnd:
    """A grpc.server exposing the model service; ``start`` binds, ``stop`` drains."""

    def __init__(
        self,
        service,
        metrics,
        *,
        max_body: int,
        threads: int = 8,
        reuse_port: bool = False,
        auth: Tokens | None = None,
        payloads: PayloadLog | None = None,
        tracer: Tracer | None = None,
    ):
        try:
            import grpc
        except ImportError as exc:
            raise ServeError(
                "gRPC was asked for (--grpc-port / VCI_GRPC_PORT) but grpcio is not installed",
                hint="add grpcio to the run's requirements or unset VCI_GRPC_PORT",
            ) from exc
        self.service, self.metrics, self.auth = service, metrics, auth
        self.payloads, self.tracer = payloads, tracer  # the HTTP side's (vci.serve.payloads, vci.serve.tracing)
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vci-grpc"),
            options=[("grpc.max_receive_message_length", max_body), ("grpc.so_reuseport", int(reuse_port))],
        )
        handlers = {
            "Predict": grpc.unary_unary_rpc_method_handler(lambda req, ctx: self._call(req, ctx, "Predict")),
            "BatchPredict": grpc.unary_unary_rpc_method_handler(lambda req, ctx: self._call(req, ctx, "BatchPredict")),
            "Health": grpc.unary_unary_rpc_method_handler(lambda req, ctx: self._call(req, ctx, "Health")),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self._add_v2(grpc)

    def _add_v2(self, grpc) -> None:
        """The Open Inference Protocol's service beside vci.Model (vci.serve.v2_grpc), when protobuf is here."""
        if (why := v2_grpc.available()) is not None:
            logs.event("v2_grpc_unavailable", "warning", error=why, hint="add protobuf to the run's requirements")
            return
        handlers = {
            m: grpc.unary_unary_rpc_method_handler(lambda req, ctx, m=m: self._call(req, ctx, m, v2_grpc.SERVICE))
            for m in v2_grpc.METHODS
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(v2_grpc.SERVICE, handlers),))

    def start(self, host: str, port: int) -> int:
        """Bind and start; return the bound port (useful with ``port=0``)."""
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ServeError(
                f"cannot listen for gRPC on {address}: {exc}",
                hint="choose a free port with --grpc-port / VCI_GRPC_PORT",
            ) from exc
        if not bound:
            raise ServeError(
                f"cannot listen for gRPC on {address}", hint="choose a free port with --grpc-port / VCI_GRPC_PORT"
            )
        self.server.start()
        return bound

    def stop(self, grace: float):
        """Refuse new calls, let running ones finish within ``grace`` seconds; returns a threading.Event."""
        return self.server.stop(grace)

    def _call(self, request: bytes, context, method: str, service: str = SERVICE) -> bytes:
        metadata = dict(context.invocation_metadata())
        rid = metadata.get("x-request-id") or os.urandom(12).hex()
        route = f"/{service}/{method}"
        started = time.perf_counter()
        self.metrics.started()
        incoming = metadata.get(TRACEPARENT)
        tracer = self.tracer if method in TRACED else None
        trace = tracer.begin(incoming, started, metadata.get(TRACESTATE)) if tracer is not None else None
        try:
            refusal = self.auth.refusal(route, self.auth.presented(metadata), rid) if self.auth else None
            if refusal is not None:
                reply = refusal
            elif service == SERVICE:
                reply = self._reply(request, method, rid, trace)
            else:
                reply = v2_grpc.reply(self.service, method, request, rid, trace)
        except BaseException as exc:  # service.call maps model errors; this is a last resort
            logs.failure("predict_failed", exc, request_id=rid)
            reply = Reply(500, json.dumps({"error": "internal server error"}).encode())
        elapsed = time.perf_counter() - started
        self.metrics.finished(route, reply.status, elapsed)
        logs.request(rid, route, "POST", reply.status, elapsed * 1000, protocol="grpc")
        traceparent = trace.header() if trace is not None else passed_on(incoming)
        if trace is not None and self.tracer is not None:
            self.tracer.finish(trace, route[1:], _span_attributes(service, method, reply.status), rid,
                               f"HTTP {reply.status}" if reply.status >= 500 else None)  # fmt: skip
        if self.payloads is not None:  # as HTTP's: a deque append, or a drop (prediction methods only)
            trace_id = trace.trace_hex if trace is not None else trace_id_of(traceparent)
            self.payloads.offer(route, {}, request, reply.status, reply.body, elapsed, rid, trace_id)
        trailing = (("x-request-id", rid),) + (((TRACEPARENT, traceparent),) if traceparent else ())
        context.set_trailing_metadata(trailing)
        if reply.status != 200:
            context.abort(grpc_code(reply.status), json.loads(reply.body).get("error", "error"))
        return reply.body

    def _reply(self, request: bytes, method: str, rid: str, trace: Trace | None) -> Reply:
        service = self.service
        if method != "Health":
            return service.call(request, method == "BatchPredict", rid, None, trace)
        if service.ready:
            return Reply(200, json.dumps({"status": "SERVING", "model_digest": service.digest}).encode())
        return Reply(503, json.dumps({"error": f"NOT_SERVING: {service.reason}"}).encode())


def _span_attributes(service: str, method: str, status: int) -> tuple:
    """A call's server span attributes (OpenTelemetry's RPC semantic conventions)."""
    code = grpc_code(status).value[0] if status != 200 else 0
    return (("rpc.system", "grpc"), ("rpc.service", service), ("rpc.method", method), ("rpc.grpc.status_code", code))
