"""Tracing: the traceparent's parsing and the OTEL_* settings (pure), then real servers exporting their spans
to a local OTLP/HTTP receiver (tests/fakes/otlp_receiver.py decodes them with opentelemetry-proto)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from tests.fakes.otlp_receiver import OtlpReceiver, decode
from vci.errors import UsageError
from vci.serve import otlp
from vci.serve.shadow import SHADOW_CONFIG, Mirror
from vci.serve.tracing import TraceSettings, parse, passed_on, state_of

from .conftest import http_call, post_json
from .models import BatchModel, EchoModel
from .test_payloads import metric

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"
INCOMING = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"
STATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


@pytest.mark.parametrize(
    "header, parsed",
    [
        (INCOMING, (INCOMING_TRACE, INCOMING_SPAN, True)),
        (f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-00", (INCOMING_TRACE, INCOMING_SPAN, False)),
        (f"cc-{INCOMING_TRACE}-{INCOMING_SPAN}-01-what-the-future-adds", (INCOMING_TRACE, INCOMING_SPAN, True)),
        (f"ff-{INCOMING_TRACE}-{INCOMING_SPAN}-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-{INCOMING_SPAN}-01", None),  # all-zero trace id
        (f"00-{INCOMING_TRACE}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{INCOMING_TRACE.upper()}-{INCOMING_SPAN}-01", None),  # upper case hex
        (f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01-extra", None),  # version 00 has four fields
        (f"00-{INCOMING_TRACE[:-1]}-{INCOMING_SPAN}-01", None),
        ("garbage", None),
    ],
)
def test_traceparent_parsing_follows_w3c_trace_context(header, parsed):
    assert parse(header) == parsed
    assert passed_on(header) == (header if parsed else None)


@pytest.mark.parametrize(
    "state, kept",
    [
        ("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", True),
        ("tenant@vendor=a b c,  ,x=1", True),  # a multi-tenant key, a space inside a value, an empty member
        ("Upper=1", False),  # keys are lower case
        ("a=1,a=2", False),  # a key appears once
        ("a=", False),  # a value has at least one character
        ("a=1,b=x=y", False),  # "=" is not a value's character
        (",".join(f"k{n}=v" for n in range(33)), False),  # at most 32 members
        ("a=" + "v" * 255 + ",b=" + "v" * 255, False),  # over 512 characters: dropped whole
    ],
)
def test_tracestate_is_passed_on_unchanged_only_when_valid_beside_a_valid_traceparent(state, kept):
    assert state_of(INCOMING, state) == (state if kept else None)
    assert state_of(None, state) is None  # no (valid) traceparent: no tracestate either


def test_tracing_is_off_without_an_endpoint_and_refuses_what_it_cannot_follow():
    assert TraceSettings.from_environ({}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert TraceSettings.from_environ({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert TraceSettings.from_environ({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    base = TraceSettings.from_environ(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t0k,x=1",
            "OTEL_SERVICE_NAME": "iris",
            "OTEL_RESOURCE_ATTRIBUTES": "team=ml,service.name=ignored",
            "VCI_TRACK": "canary",
        }
    )
    assert base is not None and base.url == "http://c:4318/v1/traces"
    assert base.headers == (("authorization", "Bearer t0k"), ("x", "1"))
    assert dict(base.resource) == {"team": "ml", "service.name": "iris", "vci.track": "canary"}
    exact = TraceSettings.from_environ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/otlp/traces"})
    assert exact is not None and exact.url == "https://c/otlp/traces"
    for bad, named in (
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes' is not a sampler"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "is not a ratio"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, "is not an http(s) URL"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "secret-without-equals"}, "OTEL_EXPORTER_OTLP_HEADERS has an entry"),
    ):
        with pytest.raises(UsageError) as refused:
            TraceSettings.from_environ({**endpoint, **bad})
        assert named in str(refused.value) and "secret-without" not in str(refused.value)


def test_samplers_decide_as_opentelemetry_specifies():
    def settings(sampler: str, arg: str = "1.0") -> TraceSettings:
        found = TraceSettings.from_environ(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_TRACES_SAMPLER": sampler,
                "OTEL_TRACES_SAMPLER_ARG": arg,
            }
        )
        assert found is not None
        return found

    default = settings("parentbased_always_on")
    assert default.sampled(INCOMING_TRACE, None) and default.sampled(INCOMING_TRACE, True)
    assert not default.sampled(INCOMING_TRACE, False)
    assert not settings("always_off").sampled(INCOMING_TRACE, True)
    assert settings("always_on").sampled(INCOMING_TRACE, False)
    half = settings("traceidratio", "0.5")  # the trace id's low 64 bits against 0.5 * 2**64
    assert half.sampled("7" * 16 + "7fffffffffffffff", None) and not half.sampled("0" * 16 + "8000000000000000", None)
    assert settings("parentbased_traceidratio", "0").sampled(INCOMING_TRACE, True)
    assert not settings("traceidratio", "0").sampled(INCOMING_TRACE, None)


def test_the_encoder_writes_what_opentelemetry_proto_decodes():
    attributes = (("http.route", "/predict"), ("code", 200), ("neg", -3), ("ratio", 0.5))
    ids = (bytes.fromhex(INCOMING_TRACE), bytes.fromhex("b7ad6b7169203331"), bytes.fromhex(INCOMING_SPAN))
    times = (1_700_000_000_000_000_001, 1_700_000_000_400_000_000)
    span = otlp.Span(*ids, "POST /predict", otlp.SERVER, *times, attributes, (("ok", True),), "HTTP 500", True)
    child = otlp.encode_child(ids[0], bytes.fromhex("00000000000000c1"), ids[1], "predict", *times)
    received, predict = decode(
        otlp.encode_request({"service.name": "iris"}, otlp.framed([otlp.encode_span(span), child]))
    )
    assert (received.trace_id, received.span_id, received.parent_id) == (
        INCOMING_TRACE,
        "b7ad6b7169203331",
        INCOMING_SPAN,
    )
    assert (received.name, received.kind, received.status) == ("POST /predict", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR")
    assert (received.start_ns, received.end_ns) == (1_700_000_000_000_000_001, 1_700_000_000_400_000_000)
    assert received.attributes == {"http.route": "/predict", "code": 200, "neg": -3, "ratio": 0.5, "ok": True}
    assert received.resource == {"service.name": "iris"} and received.flags == 0x301  # sampled, remote parent
    assert (predict.trace_id, predict.span_id, predict.parent_id) == (
        INCOMING_TRACE,
        "00000000000000c1",
        "b7ad6b7169203331",
    )
    assert (predict.name, predict.kind, predict.status, predict.attributes) == (
        "predict",
        "SPAN_KIND_INTERNAL",
        "STATUS_CODE_UNSET",
        {},
    )
    assert (predict.start_ns, predict.end_ns, predict.flags) == (*times, 0x101)  # sampled, a local parent


@pytest.fixture
def receiver():
    found = OtlpReceiver(required_headers={"authorization": "Bearer collector-secret-0123"})
    yield found
    found.close()


def tracing_env(receiver: OtlpReceiver, **more: str) -> dict[str, str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "echo",
           "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20collector-secret-0123"}  # fmt: skip
    return {**env, **more}


def request_trace(spans, trace_id: str | None = None, request_id: str | None = None) -> tuple:
    """The server span of one request (by trace id or request id) and its children by name."""
    servers = [s for s in spans if s.kind == "SPAN_KIND_SERVER"]
    (server,) = [s for s in servers if s.trace_id == trace_id or s.attributes.get("vci.request_id") == request_id]
    children = {s.name: s for s in spans if s.parent_id == server.span_id}
    assert all(c.trace_id == server.trace_id and c.kind == "SPAN_KIND_INTERNAL" for c in children.values())
    assert all(server.start_ns <= c.start_ns <= c.end_ns <= server.end_ns for c in children.values()), (
        server,
        children,
    )
    return server, children


def test_a_predict_is_a_server_span_under_the_incoming_one_with_its_steps(start_server, receiver):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, extra_env=tracing_env(receiver))
    server.wait_state()
    sent = {"traceparent": INCOMING, "tracestate": STATE, "X-Request-Id": "rq-1"}
    status, headers, _ = post_json(server, "/predict", {"x": 1}, sent)
    assert status == 200
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", INCOMING_TRACE, "01") and span_id != INCOMING_SPAN
    assert post_json(server, "/predict", {"x": 2}, {"X-Request-Id": "rq-2"})[0] == 200  # no traceparent: a new trace
    assert post_json(server, "/predict", "reject", {"X-Request-Id": "rq-3"})[0] == 422
    assert http_call(server, "GET", "/healthz")[0] == 200  # not traced
    spans = receiver.wait_spans(4 + 4 + 2)
    traced, steps = request_trace(spans, INCOMING_TRACE)
    assert (traced.span_id, traced.parent_id, traced.name) == (span_id, INCOMING_SPAN, "POST /predict")
    assert sorted(steps) == ["decode", "encode", "predict"]
    assert steps["decode"].end_ns <= steps["predict"].start_ns <= steps["predict"].end_ns <= steps["encode"].start_ns
    assert traced.attributes == {"http.request.method": "POST", "http.route": "/predict",
                                 "http.response.status_code": 200, "vci.request_id": "rq-1"}  # fmt: skip
    assert traced.resource["service.name"] == "echo" and traced.flags & 0x300 == 0x300  # its parent is remote
    assert traced.trace_state == STATE
    root, _ = request_trace(spans, request_id="rq-2")
    assert root.parent_id == "" and root.trace_id != INCOMING_TRACE
    refused, refused_steps = request_trace(spans, request_id="rq-3")
    assert sorted(refused_steps) == ["decode", "predict"]  # the model refused it (ModelError: 422)
    assert refused.attributes["http.response.status_code"] == 422 and refused.status == "STATUS_CODE_UNSET"
    assert not any(s.attributes.get("http.route") == "/healthz" for s in spans)
    assert receiver.refused == [] and metric(server, "vci_trace_spans_exported_total") >= 10


def test_batched_requests_get_a_queue_span_and_share_the_batch_call(start_server, receiver):
    server = start_server(
        BatchModel, extra_env=tracing_env(receiver), args=("--max-batch-size", "4", "--max-latency-ms", "50")
    )
    server.wait_state()
    parents = [f"00-{n:032x}-{n:016x}-01" for n in (11, 12)]
    with_threads = [
        threading.Thread(target=post_json, args=(server, "/predict", n, {"traceparent": tp}))
        for n, tp in enumerate(parents)
    ]
    for thread in with_threads:
        thread.start()
    for thread in with_threads:
        thread.join(15)
    spans = receiver.wait_spans(2 * 5)
    calls = [request_trace(spans, f"{n:032x}")[1] for n in (11, 12)]
    for steps in calls:
        assert sorted(steps) == ["decode", "encode", "predict", "queue"]
        assert steps["queue"].end_ns <= steps["predict"].start_ns
    assert calls[0]["predict"].start_ns == calls[1]["predict"].start_ns  # one batch_predict for both


def test_grpc_calls_are_traced_and_pass_the_traceparent_back(start_server, receiver):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, grpc=True, extra_env=tracing_env(receiver))
    server.wait_state()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = channel.unary_unary("/vci.Model/Predict")
        _, call = stub.with_call(b'{"x": 1}', timeout=10, metadata=(("traceparent", INCOMING),))
        trailing = dict(call.trailing_metadata())
        channel.unary_unary("/vci.Model/Health").with_call(b"", timeout=10)  # not traced
    assert trailing["traceparent"].split("-")[1] == INCOMING_TRACE
    traced, steps = request_trace(receiver.wait_spans(4), INCOMING_TRACE)
    assert traced.name == "vci.Model/Predict" and traced.parent_id == INCOMING_SPAN
    assert traced.span_id == trailing["traceparent"].split("-")[2]
    assert traced.attributes["rpc.system"] == "grpc" and traced.attributes["rpc.grpc.status_code"] == 0
    assert sorted(steps) == ["decode", "encode", "predict"]


def test_a_collector_that_refuses_loses_spans_counted_never_a_request(start_server, receiver):
    receiver.status = 503
    env = tracing_env(receiver)
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, extra_env=env)
    server.wait_state()
    for n in range(3):
        assert post_json(server, "/predict", {"x": n}, {"traceparent": INCOMING})[0] == 200
    records = server.wait_log(lambda r: r.get("event") == "trace_export_failed")
    (failed,) = [r for r in records if r.get("event") == "trace_export_failed"]
    assert "503" in failed["error"] and failed["level"] == "warning"
    assert "collector-secret" not in server.log()
    assert metric(server, 'vci_trace_spans_dropped_total{reason="export_failed"}') >= 4


def test_without_an_endpoint_the_traceparent_is_passed_on_unchanged(start_server, tmp_path):
    path = tmp_path / "payloads.jsonl"
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, extra_env={"VCI_PAYLOAD_SINK": f"file:{path}"})
    server.wait_state()
    assert post_json(server, "/predict", {"x": 1}, {"traceparent": INCOMING})[1]["traceparent"] == INCOMING
    assert "traceparent" not in post_json(server, "/predict", {"x": 2}, {"traceparent": "00-zz-zz-01"})[1]
    assert "vci_trace_spans" not in http_call(server, "GET", "/metrics")[2].decode()
    from .test_payloads import read_lines

    first, second = read_lines(path, 2)
    assert first["trace_id"] == INCOMING_TRACE and second["trace_id"] is None


class _Candidate(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        _Candidate.seen.append((self.headers.get("traceparent"), self.headers.get("tracestate")))
        body = b"1"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_shadow_copy_carries_the_traceparent_and_tracestate_to_the_candidate(tmp_path):
    candidate = ThreadingHTTPServer(("127.0.0.1", 0), _Candidate)
    threading.Thread(target=candidate.serve_forever, daemon=True).start()
    config = tmp_path / "shadow.json"
    url = f"http://127.0.0.1:{candidate.server_address[1]}"
    config.write_text(json.dumps({"url": url, "fraction": 1.0, "compare": "exact", "release_id": "r1"}))
    try:
        mirror = Mirror(config)
        deadline = time.monotonic() + 10
        while mirror.config is None and time.monotonic() < deadline:
            time.sleep(0.05)
        mirror.offer(b"1", b"1", INCOMING, STATE)
        mirror.offer(b"1", b"1")
        while len(_Candidate.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _Candidate.seen == [(INCOMING, STATE), (None, None)]
    finally:
        candidate.shutdown()
        candidate.server_close()


def test_a_served_request_passes_its_trace_context_to_the_shadow(start_server, tmp_path):
    candidate = ThreadingHTTPServer(("127.0.0.1", 0), _Candidate)
    threading.Thread(target=candidate.serve_forever, daemon=True).start()
    config = tmp_path / "shadow.json"
    url = f"http://127.0.0.1:{candidate.server_address[1]}"
    config.write_text(json.dumps({"url": url, "fraction": 1.0, "compare": "exact", "release_id": "r1"}))
    _Candidate.seen.clear()
    try:
        server = start_server(EchoModel, artifacts={"greeting": b"hi"}, extra_env={SHADOW_CONFIG: str(config)})
        server.wait_state()
        deadline = time.monotonic() + 10
        while not _Candidate.seen and time.monotonic() < deadline:  # until the server has read its shadow
            assert post_json(server, "/predict", {"x": 1}, {"traceparent": INCOMING, "tracestate": STATE})[0] == 200
            time.sleep(0.1)
        assert _Candidate.seen[0] == (INCOMING, STATE)
    finally:
        candidate.shutdown()
        candidate.server_close()
