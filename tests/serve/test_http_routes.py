"""The HTTP routes of a real ``python -m vci.serve`` process: answers, error statuses, ids, metrics."""

from __future__ import annotations

import json
import re

from .conftest import http_call, post_json, raw_exchange, unlabelled

JSON = {"Content-Type": "application/json"}


def test_predict_returns_the_models_json_and_uses_the_artifact(echo_server):
    status, headers, body = post_json(echo_server, "/predict", {"rows": [[5.1, 3.5]]})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body == {"greeting": "hello", "echo": {"rows": [[5.1, 3.5]]}}


def test_batch_predict_falls_back_to_predict_per_item(echo_server):
    status, _, body = post_json(echo_server, "/batch-predict", [1, "two"])
    assert status == 200
    assert body == [{"greeting": "hello", "echo": 1}, {"greeting": "hello", "echo": "two"}]


def test_batch_predict_needs_a_list(echo_server):
    status, _, body = post_json(echo_server, "/batch-predict", {"not": "a list"})
    assert status == 400
    assert "list" in body["error"]


def test_request_id_is_echoed_or_generated(echo_server):
    _, headers, body = post_json(echo_server, "/predict", 1, {"X-Request-Id": "ci-build-42.7"})
    assert headers["x-request-id"] == "ci-build-42.7"
    status, headers, _ = http_call(echo_server, "GET", "/healthz")
    assert status == 200 and re.fullmatch(r"[0-9a-f]{24}", headers["x-request-id"])
    _, headers, _ = http_call(echo_server, "GET", "/healthz", headers={"X-Request-Id": "bad id\twith space"})
    assert headers["x-request-id"] != "bad id\twith space"  # unsafe ids are replaced, never reflected


def test_error_statuses_are_json_with_the_request_id(echo_server):
    cases = [
        ("POST", "/predict", b"{not json", JSON, 400),
        ("POST", "/predict", b"\xff\xfe\x00garbage", JSON, 400),
        ("POST", "/predict", b"", JSON, 400),
        ("POST", "/predict", b"1", {"Content-Type": "text/plain"}, 415),
        ("POST", "/predict", b'"x"' + b" " * 5000, JSON, 413),
        ("GET", "/no-such-route", None, {}, 404),
        ("GET", "/predict", None, {}, 405),
        ("POST", "/metrics", b"{}", JSON, 405),
        ("POST", "/predict", b'"reject"', JSON, 422),
        ("POST", "/predict", b'"boom"', JSON, 500),
        ("POST", "/predict", b'"not-json"', JSON, 500),
        ("POST", "/predict", b'"exit"', JSON, 500),
        ("POST", "/predict", b"[" * 2000 + b"]" * 2000, JSON, 400),
    ]
    for method, path, body, headers, expected in cases:
        status, resp_headers, raw = http_call(
            echo_server, method, path, body, {**headers, "X-Request-Id": f"case-{expected}"}
        )
        assert status == expected, (path, body[:20] if body else None, raw)
        error = json.loads(raw)
        assert error["request_id"] == resp_headers["x-request-id"] == f"case-{expected}"
        assert error["error"]
    _, headers, _ = http_call(echo_server, "GET", "/predict")
    assert headers["allow"] == "POST"


def test_internal_errors_never_reach_the_client_but_are_logged(echo_server):
    status, _, body = post_json(echo_server, "/predict", "boom", {"X-Request-Id": "boom-1"})
    assert status == 500
    assert "secret-internal-detail" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    records = echo_server.wait_log(lambda r: r.get("request_id") == "boom-1" and r["event"] == "request")
    logged = [r for r in records if r.get("request_id") == "boom-1"]
    failure = next(r for r in logged if r["event"] == "predict_failed")
    assert "secret-internal-detail" in failure["traceback"]
    access = next(r for r in logged if r["event"] == "request")
    assert access["status"] == 500 and access["route"] == "/predict" and access["latency_ms"] >= 0


def test_model_error_message_and_status_reach_the_client(echo_server):
    status, _, body = post_json(echo_server, "/predict", "reject")
    assert (status, body["error"]) == (422, "inputs named 'reject' are refused")


def test_health_ready_and_metadata(echo_server, tmp_path):
    status, _, body = http_call(echo_server, "GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] == "alive"
    status, _, body = http_call(echo_server, "GET", "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, _, body = http_call(echo_server, "GET", "/metadata")
    meta = json.loads(body)
    manifest_digest = json.loads(body)["model_digest"]
    assert status == 200
    assert meta["project"] == "serve-tests" and meta["run_id"] == "20261124-1200-abcd"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", manifest_digest) and meta["vci_version"]
    assert "image_digest" not in meta  # VCI_IMAGE_DIGEST is not set for this server


def _metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{want}}}" if labels else name) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_requests_and_latency(echo_server):
    before = unlabelled(http_call(echo_server, "GET", "/metrics")[2].decode())
    for _ in range(3):
        post_json(echo_server, "/predict", 1)
    http_call(echo_server, "GET", "/nope")
    status, headers, raw = http_call(echo_server, "GET", "/metrics")
    after = unlabelled(raw.decode())
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    ok = dict(route="/predict", status="200")
    assert _metric(after, "vci_requests_total", **ok) - _metric(before, "vci_requests_total", **ok) == 3
    assert _metric(after, "vci_requests_total", route="other", status="404") >= 1
    count = _metric(after, "vci_request_duration_seconds_count", route="/predict")
    assert count - _metric(before, "vci_request_duration_seconds_count", route="/predict") >= 3
    assert _metric(after, "vci_request_duration_seconds_bucket", route="/predict", le="+Inf") == count
    assert _metric(after, "vci_requests_in_flight") == 1  # this very scrape
    assert _metric(after, "vci_model_load_seconds") > 0 and _metric(after, "vci_model_ready") == 1


def test_keep_alive_pipelining_and_chunked_bodies(echo_server):
    body = b'{"a": 1}'
    one = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    chunked = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\n[1,\r\n2\r\n 2\r\n1;ext=1\r\n]\r\n0\r\n\r\n"
    )
    answer = raw_exchange(echo_server, one * 3 + chunked + b"GET /healthz HTTP/1.1\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 5
    assert answer.count(b'"echo":{"a":1}') == 3 and b'"echo":[1,2]' in answer


def test_expect_100_continue_is_answered(echo_server):
    import socket

    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"7")
        assert b'"echo":7' in s.recv(1000)


def test_a_set_is_answered_as_the_same_list_by_every_server_process(start_server):
    """Sets are sorted where their members allow, so hash randomisation does not change the answer
    (two processes, two PYTHONHASHSEEDs: the same bytes); a set of mixed members is still answered."""
    from .models import SetModel

    bodies = []
    for seed in ("1", "2"):
        server = start_server(SetModel, extra_env={"PYTHONHASHSEED": seed})
        server.wait_state()
        status, _, body = http_call(server, "POST", "/predict", b"0", JSON)
        assert status == 200, body
        bodies.append(body)
    assert bodies[0] == bodies[1]
    answer = json.loads(bodies[0])
    assert answer["words"] == sorted(f"word-{i}" for i in range(32))
    assert sorted(map(str, answer["mixed"])) == ["1", "one"]
