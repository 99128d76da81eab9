"""DeployedModel's calls against a real scripted HTTP server: errors, auth, gzip, batch and health."""

import gzip
import json
import logging

import pytest

from fakes.flaky_server import FAST, CountingSession, FlakyServer, Reply, error, fast_client, free_port
from vci.client import DeployedModel
from vci.errors import RemoteError, UsageError
from vci.redact import mask_url


@pytest.fixture
def server():
    with FlakyServer() as srv:
        yield srv


client = fast_client


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


def test_sets_are_sent_sorted_and_a_set_of_mixed_members_is_sent_too(server):
    assert client(server).predict({"ids": {3, 1, 2}}) == {"ids": [1, 2, 3]}
    assert sorted(map(str, client(server).predict({"mixed": {1, "one"}})["mixed"])) == ["1", "one"]


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
    assert mask_url("https://bob:pw@host:8443/proxy") == "https://***@host:8443/proxy"
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
    assert health == {
        "ready": False,
        "status": 503,
        "reason": "model_test() failed: ValueError: bad weights",
        "metadata": {"run_id": "r1", "state": "self_test_failed"},
    }
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
