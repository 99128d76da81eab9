"""DeployedModel against a real scripted HTTP server: retries, deadlines, errors, ids, auth, gzip."""

import gzip
import json
import logging
import socket
import threading
import time

import pytest
import requests

from fakes.flaky_server import FlakyServer, Reply, error
from vci.client import DeployedModel, backoff_delay, redact_url, retry_after_seconds, server_message
from vci.errors import RemoteError, UsageError

FAST = {"backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
def server():
    with FlakyServer() as srv:
        yield srv


def client(server, **kwargs) -> DeployedModel:
    return DeployedModel(server.url, **{"deadline": 5.0, "timeout": 2.0, **FAST, **kwargs})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CountingSession(requests.Session):
    """A real requests session that counts the requests it was asked to send."""

    def __init__(self):
        super().__init__()
        self.calls, self.closed = 0, False

    def close(self):
        self.closed = True
        super().close()

    def request(self, *args, **kwargs):
        self.calls += 1
        return super().request(*args, **kwargs)


# -- retry policy ---------------------------------------------------------------------------------------

def test_503_twice_then_200_succeeds_on_the_third_attempt(server):
    server.script("/predict", error(503, "loading"), error(503, "loading"), Reply(200, {"y": 1}))
    assert client(server).predict({"x": 1}) == {"y": 1}
    assert server.count("/predict") == 3
    assert [json.loads(r.body) for r in server.on("/predict")] == [{"x": 1}] * 3


@pytest.mark.parametrize("status", [429, 502, 504])
def test_other_transient_statuses_are_retried(server, status):
    server.script("/predict", error(status, "busy"), Reply(200, [1]))
    assert client(server).predict([0]) == [1]
    assert server.count("/predict") == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500])
def test_client_errors_and_500_are_not_retried(server, status):
    server.script("/predict", then=error(status, "bad input: expected 4 features"))
    with pytest.raises(RemoteError) as caught:
        client(server).predict([1, 2])
    assert server.count("/predict") == 1
    assert caught.value.status == status
    assert caught.value.message == (f"model server at {server.url} answered {status}: "
                                    "bad input: expected 4 features")


def test_request_id_is_constant_across_retries_and_new_per_call(server):
    server.script("/predict", error(503, "x"), error(503, "x"), Reply(200, "ok"))
    model = client(server)
    output, request_id = model.predict_with_id(1)
    ids = {r.headers["X-Request-Id"] for r in server.on("/predict")}
    assert output == "ok" and ids == {request_id} and len(server.on("/predict")) == 3
    _, second = model.predict_with_id(2)
    assert second != request_id


def test_error_carries_the_servers_request_id(server):
    server.script("/predict", Reply(400, {"error": "no", "request_id": "srv-42"}))
    with pytest.raises(RemoteError) as caught:
        client(server).predict(1)
    assert caught.value.request_id == "srv-42"


def test_retry_after_is_honoured(server):
    server.script("/predict", error(429, "slow down", **{"Retry-After": "1"}), Reply(200, 7))
    assert client(server).predict(0) == 7
    first, second = server.on("/predict")
    assert second.at - first.at >= 0.9  # backoff alone would wait about 0.01 s


def test_retry_after_beyond_the_deadline_fails_at_once(server):
    server.script("/predict", then=error(429, "quota", **{"Retry-After": "120"}))
    with pytest.raises(RemoteError) as caught:
        client(server, deadline=3.0).predict(0)
    assert server.count("/predict") == 1
    assert caught.value.status == 429 and "quota" in caught.value.message
    assert "beyond this call's deadline" in caught.value.hint


def test_deadline_bounds_a_server_that_always_answers_503(server):
    server.script("/predict", then=error(503, "the model is not ready: model_test() failed"))
    start = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        client(server, deadline=0.5).predict(0)
    elapsed = time.monotonic() - start
    assert caught.value.status == 503
    assert "model_test() failed" in caught.value.message and "attempts" in caught.value.message
    assert server.count("/predict") >= 3
    assert elapsed < 0.5 + 2.0  # generous margin: asserts the bound, not the timing


def test_dropped_connection_is_retried(server):
    server.script("/predict", Reply(drop=True), Reply(200, "fine"))
    assert client(server).predict(0) == "fine"
    assert server.count("/predict") == 2


def test_slow_server_times_out_per_attempt_and_fails_at_the_deadline(server):
    server.script("/predict", then=Reply(200, "late", delay=1.0))
    with pytest.raises(RemoteError) as caught:
        client(server, timeout=0.2, deadline=0.7).predict(0)
    assert "timed out" in caught.value.message and caught.value.status is None
    assert server.count("/predict") >= 2


# -- unreachable servers --------------------------------------------------------------------------------

def test_connection_refused_is_retried_then_raised_with_a_hint():
    session = CountingSession()
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteError) as caught:
        DeployedModel(url, session=session, deadline=0.5, **FAST).predict(0)
    assert session.calls >= 3
    assert "Connection refused" in caught.value.message and url in caught.value.message
    assert "vci status" in caught.value.hint
    assert caught.value.status is None and caught.value.request_id


def test_a_server_that_comes_up_during_the_deadline_is_reached():
    port = free_port()
    holder = {}
    timer = threading.Timer(0.4, lambda: holder.setdefault("srv", FlakyServer(port).__enter__()))
    timer.start()
    try:
        model = DeployedModel(f"http://127.0.0.1:{port}", deadline=10.0, **FAST)
        assert model.predict({"a": 1}) == {"a": 1}
    finally:
        timer.join()
        holder["srv"].stop()


# -- what errors say ------------------------------------------------------------------------------------

def test_non_json_error_body_from_a_proxy_is_surfaced(server):
    page = b"<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>"
    server.script("/predict", then=Reply(502, page, headers={"Content-Type": "text/html"}))
    with pytest.raises(RemoteError) as caught:
        client(server, deadline=0.3).predict(0)
    assert caught.value.status == 502
    assert "answered 502" in caught.value.message
    assert "<h1>502 Bad Gateway</h1> <p>nginx</p>" in caught.value.message


def test_non_json_success_body_is_an_error_not_a_crash(server):
    server.script("/predict", Reply(200, b"Welcome to nginx!", headers={"Content-Type": "text/html"}))
    with pytest.raises(RemoteError) as caught:
        client(server).predict(0)
    assert "not JSON: Welcome to nginx!" in caught.value.message and caught.value.status == 200


def test_input_that_is_not_json_is_refused_before_sending(server):
    with pytest.raises(UsageError, match="cannot be sent as JSON"):
        client(server).predict(object())
    assert server.count("/predict") == 0


def test_numpy_like_inputs_are_converted(server):
    class Array:
        def tolist(self):
            return [[1.5, 2.5]]
    assert client(server).predict({"rows": Array()}) == {"rows": [[1.5, 2.5]]}


# -- auth and headers -----------------------------------------------------------------------------------

def test_token_is_sent_as_bearer_and_masked(server, caplog):
    caplog.set_level(logging.DEBUG, logger="vci.client")
    server.script("/predict", error(503, "warming"), Reply(200, 1))
    model = client(server, token="s3cret-token", headers={"X-Team": "ml"})
    assert model.predict(0) == 1
    assert {r.headers["Authorization"] for r in server.on("/predict")} == {"Bearer s3cret-token"}
    assert server.on("/predict")[0].headers["X-Team"] == "ml"
    assert "s3cret-token" not in repr(model) and "***" in repr(model)
    assert "retrying POST /predict" in caplog.text and "s3cret-token" not in caplog.text


def test_token_comes_from_vci_token_and_stays_out_of_errors(server, monkeypatch):
    monkeypatch.setenv("VCI_TOKEN", "env-token")
    server.script("/predict", then=error(401, "invalid token"))
    with pytest.raises(RemoteError) as caught:
        client(server).predict(0)
    assert server.on("/predict")[0].headers["Authorization"] == "Bearer env-token"
    assert "env-token" not in str(caught.value) and "VCI_TOKEN" in caught.value.hint


def test_no_token_sends_no_authorization(server, monkeypatch):
    monkeypatch.delenv("VCI_TOKEN", raising=False)
    client(server).predict(0)
    assert "Authorization" not in server.on("/predict")[0].headers
    assert "token=None" in repr(client(server))


def test_a_session_with_its_own_credentials_is_not_overridden_by_vci_token(server, monkeypatch):
    monkeypatch.setenv("VCI_TOKEN", "env-token")
    session = CountingSession()
    session.headers["Authorization"] = "Bearer cluster-credentials"
    model = client(server, session=session)
    model.predict(0)
    model.close()
    assert not session.closed  # a session passed in belongs to the caller
    client(server, session=session, token="explicit").predict(1)
    auth = [r.headers["Authorization"] for r in server.on("/predict")]
    assert auth == ["Bearer cluster-credentials", "Bearer explicit"] and session.calls == 2


def test_credentials_in_the_url_are_redacted():
    assert redact_url("https://bob:pw@host:8443/proxy") == "https://***@host:8443/proxy"
    assert "pw" not in repr(DeployedModel("https://bob:pw@host/x"))


def test_a_proxy_url_with_a_path_prefix_is_joined(server):
    server.script("/api/v1/namespaces/ns/services/iris:http/proxy/predict", Reply(200, "via proxy"))
    model = DeployedModel(server.url + "/api/v1/namespaces/ns/services/iris:http/proxy/", **FAST)
    assert model.predict(0) == "via proxy"


# -- gzip -----------------------------------------------------------------------------------------------

def test_large_bodies_are_gzipped_when_enabled(server):
    data = [[float(i), float(i) / 3] for i in range(2000)]
    assert client(server, gzip_min_bytes=1024).predict(data) == data
    request = server.on("/predict")[0]
    assert request.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(request.raw)) == data and len(request.raw) < len(request.body) / 2


def test_small_bodies_and_default_clients_send_plain_json(server):
    data = [[float(i)] for i in range(2000)]
    client(server, gzip_min_bytes=1_000_000).predict(data)
    client(server).predict(data)
    assert all("Content-Encoding" not in r.headers for r in server.on("/predict"))
    assert all(json.loads(r.raw) == data for r in server.on("/predict"))


def test_a_server_refusing_gzip_gets_plain_json_from_then_on(server):
    server.script("/predict", error(415, "unsupported Content-Encoding: gzip"))
    model = client(server, gzip_min_bytes=10)
    assert model.predict(list(range(100))) == list(range(100))
    assert model.predict(list(range(50))) == list(range(50))
    encodings = [r.headers.get("Content-Encoding") for r in server.on("/predict")]
    assert encodings == ["gzip", None, None]


# -- batch, metadata, health ----------------------------------------------------------------------------

def test_batch_predict_sends_one_list_and_returns_one_output_each(server):
    assert client(server).batch_predict(iter([[1], [2], [3]])) == [[1], [2], [3]]
    assert server.count("/batch-predict") == 1
    assert json.loads(server.on("/batch-predict")[0].body) == [[1], [2], [3]]


def test_batch_predict_with_a_wrong_number_of_outputs_is_an_error(server):
    server.script("/batch-predict", Reply(200, [0]))
    with pytest.raises(RemoteError, match="answered 2 inputs with 1 outputs"):
        client(server).batch_predict([[1], [2]])


def test_metadata_is_retried_like_any_call(server):
    server.script("/metadata", Reply(drop=True), Reply(200, {"run_id": "r1", "model_digest": "sha256:ab"}))
    assert client(server).metadata() == {"run_id": "r1", "model_digest": "sha256:ab"}
    assert server.count("/metadata") == 2


def test_health_reports_a_server_that_is_not_ready_without_retrying(server):
    server.script("/readyz", then=error(503, "model_test() failed: ValueError: bad weights"))
    server.script("/metadata", then=Reply(200, {"run_id": "r1", "state": "self_test_failed"}))
    health = client(server).health()
    assert health == {"ready": False, "status": 503, "reason": "model_test() failed: ValueError: bad weights",
                      "metadata": {"run_id": "r1", "state": "self_test_failed"}}
    assert server.count("/readyz") == 1


def test_health_of_a_ready_server_and_a_missing_metadata_route(server):
    server.script("/readyz", Reply(200, {"status": "ready"}))
    server.script("/metadata", error(404, "not found"))
    assert client(server).health() == {"ready": True, "status": 200, "reason": "ready", "metadata": None}


def test_health_of_an_unreachable_server_raises():
    with pytest.raises(RemoteError, match="cannot reach model server"):
        DeployedModel(f"http://127.0.0.1:{free_port()}", **FAST).health()


def test_wait_ready_polls_until_ready(server):
    server.script("/readyz", error(503, "loading"), error(503, "loading"), then=Reply(200, {}))
    health = client(server).wait_ready(timeout=5)
    assert health["ready"] and server.count("/readyz") == 3


def test_wait_ready_gives_up_with_the_last_reason(server):
    server.script("/readyz", then=error(503, "model_test() failed: boom"))
    with pytest.raises(RemoteError) as caught:
        client(server).wait_ready(timeout=0.3)
    assert "was not ready after" in caught.value.message
    assert "model_test() failed: boom" in caught.value.message
    assert server.count("/readyz") >= 2


# -- pure parts -----------------------------------------------------------------------------------------

def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    import random
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.1, 1.0, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        full = min(1.0, 0.1 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert len(set(delays)) == len(delays)


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_server_message_prefers_the_json_error_and_trims_text():
    assert server_message(b'{"error": "bad", "request_id": "r"}') == ("bad", "r")
    assert server_message(b"") == ("(empty body)", None)
    text, rid = server_message(b"x" * 1000, limit=10)
    assert text == "x" * 10 + "..." and rid is None


def test_a_url_without_a_scheme_is_a_usage_error():
    with pytest.raises(UsageError, match="not a model server URL"):
        DeployedModel("localhost:8080")
