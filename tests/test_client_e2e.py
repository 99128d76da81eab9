"""DeployedModel against the real model server (``python -m vci.serve`` in its own process)."""

import time

import pytest

from serve.conftest import ServerProcess, build_model_dir
from serve.models import EchoModel, FailingSelfTestModel, SlowLoadModel
from vci.client import DeployedModel
from vci.errors import RemoteError

pytestmark = pytest.mark.slow
FAST = {"backoff": 0.02, "max_backoff": 0.2}


@pytest.fixture
def serve(tmp_path):
    """Factory: ``serve(model_class, env=...)`` -> a listening server process, stopped afterwards."""
    servers = []

    def start(cls, extra_env=None):
        n = len(servers)
        build_model_dir(tmp_path / f"model{n}", cls, artifacts={"greeting": b"hello\n"})
        (tmp_path / f"run{n}").mkdir()
        servers.append(ServerProcess(tmp_path / f"model{n}", tmp_path / f"run{n}", extra_env=extra_env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def predict_records(server, until=lambda records: True, timeout: float = 5.0) -> list[dict]:
    """The server's access-log records for /predict; waits (bounded) for ``until`` since the server
    writes a record just after it answers."""
    stop = time.monotonic() + timeout
    while True:
        records = [r for r in server.log_records() if r.get("route") == "/predict"]
        if until(records) or time.monotonic() > stop:
            return records
        time.sleep(0.02)


def test_predict_batch_and_metadata_round_trip(serve):
    server = serve(EchoModel)
    model = DeployedModel(server.url, deadline=20, **FAST)
    health = model.wait_ready(timeout=20)
    assert health["ready"] and health["status"] == 200
    assert health["metadata"]["run_id"] == "20261124-1200-abcd"
    assert model.predict([5.1, 3.5]) == {"greeting": "hello", "echo": [5.1, 3.5]}
    assert model.batch_predict([1, 2]) == [{"greeting": "hello", "echo": 1}, {"greeting": "hello", "echo": 2}]
    assert model.metadata()["model_digest"] == health["metadata"]["model_digest"]


def test_the_servers_log_carries_the_clients_request_id(serve):
    server = serve(EchoModel)
    model = DeployedModel(server.url, deadline=20, **FAST)
    model.wait_ready(timeout=20)
    output, request_id = model.predict_with_id("hi", request_id="ci-build-42-smoke-1")
    assert output["echo"] == "hi" and request_id == "ci-build-42-smoke-1"
    assert [r["request_id"] for r in predict_records(server, until=bool)] == ["ci-build-42-smoke-1"]


def test_model_errors_surface_once_and_internal_details_stay_on_the_server(serve):
    server = serve(EchoModel)
    model = DeployedModel(server.url, deadline=20, **FAST)
    model.wait_ready(timeout=20)
    with pytest.raises(RemoteError) as rejected:
        model.predict("reject")
    assert rejected.value.status == 422
    assert rejected.value.message == (f"model server at {server.url} answered 422: inputs named 'reject' are refused")
    with pytest.raises(RemoteError) as failed:
        model.predict("boom")
    assert failed.value.status == 500 and "secret-internal-detail" not in str(failed.value)
    records = predict_records(server, until=lambda rs: len(rs) >= 2)
    assert len(records) == 2 and failed.value.request_id == records[-1]["request_id"]  # no retries


def test_predict_rides_out_a_model_that_is_still_loading(serve):
    server = serve(SlowLoadModel, extra_env={"SLOW_LOAD_SECONDS": "1.0"})
    assert DeployedModel(server.url, deadline=30, **FAST).predict({"x": 1}) == {"x": 1}
    records = predict_records(server, until=lambda rs: any(r["status"] == 200 for r in rs))
    statuses = [r["status"] for r in records]
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {503} and len(statuses) >= 2


def test_a_failed_self_test_is_reported_not_retried_forever(serve):
    server = serve(FailingSelfTestModel)
    server.wait_state(("self_test_failed",))
    model = DeployedModel(server.url, deadline=0.5, **FAST)
    health = model.health()
    assert health["ready"] is False and health["status"] == 503
    assert "the weights are all zero" in health["reason"]
    with pytest.raises(RemoteError) as caught:
        model.predict(1)
    assert caught.value.status == 503 and "the weights are all zero" in caught.value.message
    with pytest.raises(RemoteError, match="not ready after .* the weights are all zero"):
        model.wait_ready(timeout=0.3)


def test_a_stopped_server_is_unreachable_with_a_hint(serve):
    server = serve(EchoModel)
    model = DeployedModel(server.url, deadline=0.5, **FAST)
    model.wait_ready(timeout=20)
    server.stop()
    with pytest.raises(RemoteError) as caught:
        model.predict(1)
    assert "cannot reach model server" in caught.value.message and "vci status" in caught.value.hint
