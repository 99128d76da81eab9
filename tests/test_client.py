"""DeployedModel's retry policy against a real scripted HTTP server: statuses, deadlines, request ids."""

import json
import threading
import time

import pytest

from fakes.flaky_server import FAST, CountingSession, FlakyServer, Reply, error, fast_client, free_port
from vci.client import DeployedModel, server_message
from vci.errors import RemoteError, TransientRemoteError, UsageError


@pytest.fixture
def server():
    with FlakyServer() as srv:
        yield srv


client = fast_client


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
    assert caught.value.message == (f"model server at {server.url} answered {status}: bad input: expected 4 features")


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


def test_a_server_its_launcher_knows_is_gone_fails_at_once_with_that_reason():
    session, asked = CountingSession(), []
    url = f"http://127.0.0.1:{free_port()}"
    gone = DeployedModel(url, session=session, deadline=5.0, down=lambda: asked.append(1) or "its process exited")
    with pytest.raises(RemoteError) as caught:
        gone.predict(0)
    assert session.calls == 1 and asked == [1]  # no retry: the server cannot come back
    assert caught.value.message.startswith("its process exited") and "Connection refused" in caught.value.message
    with pytest.raises(RemoteError, match="its process exited"):
        gone.wait_ready(timeout=5)  # a wait ends too
    assert session.calls == 2
    alive = DeployedModel(url, session=CountingSession(), deadline=0.5, down=lambda: None, **FAST)
    with pytest.raises(TransientRemoteError):  # still starting or restarting: retried to the deadline
        alive.predict(0)
    assert alive.session.calls >= 3


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


# -- pure parts -----------------------------------------------------------------------------------------


def test_server_message_prefers_the_json_error_and_trims_text():
    assert server_message(b'{"error": "bad", "request_id": "r"}') == ("bad", "r")
    assert server_message(b"") == ("(empty body)", None)
    text, rid = server_message(b"x" * 1000, limit=10)
    assert text == "x" * 10 + "..." and rid is None


def test_a_url_without_a_scheme_is_a_usage_error():
    with pytest.raises(UsageError, match="not a model server URL"):
        DeployedModel("localhost:8080")


def test_importing_the_client_does_not_import_requests():
    import subprocess
    import sys

    code = "import sys, vci, vci.client; vci.DeployedModel; print('requests' in sys.modules)"
    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "False"
