"""The gRPC front end (``vci.Model``) with a real grpcio client channel: calls, ids, status mapping."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest

from vci.serve.grpc_server import grpc_code_name

from .conftest import REPO, build_model_dir
from .models import BatchModel, EchoModel, FailingSelfTestModel


@pytest.fixture
def channel(echo_server):
    with grpc.insecure_channel(f"127.0.0.1:{echo_server.grpc_port}") as ch:
        yield ch


def call(channel, method: str, value=None, raw: bytes | None = None, request_id: str | None = None):
    stub = channel.unary_unary(f"/vci.Model/{method}")
    metadata = (("x-request-id", request_id),) if request_id else None
    body = raw if raw is not None else json.dumps(value).encode()
    response, call_info = stub.with_call(body, timeout=10, metadata=metadata)
    return json.loads(response), dict(call_info.trailing_metadata())


def test_predict_and_request_id(channel):
    result, trailers = call(channel, "Predict", {"x": [1, 2]}, request_id="grpc-req-1")
    assert result == {"greeting": "hello", "echo": {"x": [1, 2]}}
    assert trailers["x-request-id"] == "grpc-req-1"


def test_batch_predict_and_health(channel):
    result, _ = call(channel, "BatchPredict", [1, 2])
    assert [r["echo"] for r in result] == [1, 2]
    health, _ = call(channel, "Health", raw=b"")
    assert health["status"] == "SERVING" and health["model_digest"].startswith("sha256:")


@pytest.mark.parametrize(
    "method,raw,code,text",
    [
        ("Predict", b"{broken", grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON"),
        ("BatchPredict", b'{"a": 1}', grpc.StatusCode.INVALID_ARGUMENT, "list"),
        ("Predict", b'"reject"', grpc.StatusCode.INVALID_ARGUMENT, "refused"),
        ("Predict", b'"boom"', grpc.StatusCode.INTERNAL, "server log"),
        ("Predict", b'"' + b"x" * 5000 + b'"', grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
        ("NoSuchMethod", b"1", grpc.StatusCode.UNIMPLEMENTED, ""),
    ],
)
def test_errors_map_to_grpc_status_codes(channel, method, raw, code, text):
    with pytest.raises(grpc.RpcError) as info:
        call(channel, method, raw=raw)
    assert info.value.code() == code
    assert text in (info.value.details() or "")
    assert "secret-internal-detail" not in (info.value.details() or "")


def test_the_server_keeps_serving_after_grpc_errors(channel, echo_server):
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            call(channel, "Predict", raw=b"\xff")
    assert call(channel, "Predict", 7)[0]["echo"] == 7
    records = echo_server.wait_log(lambda r: r.get("protocol") == "grpc" and r["status"] == 200)
    grpc_lines = [r for r in records if r.get("protocol") == "grpc"]
    assert {r["route"] for r in grpc_lines} >= {"/vci.Model/Predict"}
    assert {r["status"] for r in grpc_lines} >= {400, 200}


def test_batch_predict_uses_the_models_batch_method(start_server):
    server = start_server(BatchModel, grpc=True)
    server.wait_state()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        result, _ = call(ch, "BatchPredict", ["a", "b", "c"])
    assert result == [{"batched": x, "size": 3} for x in "abc"]


def test_health_is_unavailable_when_not_ready(start_server):
    server = start_server(FailingSelfTestModel, grpc=True)
    server.wait_state(("self_test_failed",))
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        for method in ("Health", "Predict"):
            with pytest.raises(grpc.RpcError) as info:
                call(ch, method, 1)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "model_test() failed" in info.value.details()


def test_http_status_to_grpc_code_table():
    assert [grpc_code_name(s) for s in (400, 404, 409, 413, 418, 422, 429, 500, 503)] == [
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ABORTED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "INVALID_ARGUMENT",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "UNAVAILABLE",
    ]


def test_grpc_asked_for_without_grpcio_is_a_clear_error(tmp_path):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"x"})
    code = (
        "import sys; sys.modules['grpc'] = None; from vci.serve.__main__ import main; "
        f"sys.exit(main(['--model-dir', {str(tmp_path / 'model')!r}, '--host', '127.0.0.1', "
        "'--port', '0', '--grpc-port', '0']))"
    )
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 14
    assert "grpcio is not installed" in proc.stderr
