"""The server's 500s say which failure it was: the model raised (its type and the request id to find the log
line by), or its result cannot be encoded as JSON (where, the type and how to convert it); and the seam
where an input schema answers 422."""

from __future__ import annotations

import json

from vci.serve.metrics import Metrics
from vci.serve.service import ModelService

from .conftest import build_model_dir, post_json
from .models import EchoModel


def test_an_exception_from_predict_names_its_type_and_the_request_id(echo_server):
    status, _, body = post_json(echo_server, "/predict", "boom", {"X-Request-Id": "fail-raise-1"})
    assert status == 500 and body["request_id"] == "fail-raise-1"
    assert "predict raised RuntimeError" in body["error"] and "request id fail-raise-1" in body["error"]
    assert "secret-internal-detail" not in body["error"]  # the message stays in the log
    records = echo_server.wait_log(lambda r: r.get("request_id") == "fail-raise-1" and r["event"] == "predict_failed")
    failure = next(r for r in records if r.get("request_id") == "fail-raise-1" and r["event"] == "predict_failed")
    assert failure["exception"] == "RuntimeError" and "secret-internal-detail" in failure["error"]


def test_a_result_json_cannot_encode_is_named_with_where_and_how(echo_server):
    status, _, body = post_json(echo_server, "/predict", "date", {"X-Request-Id": "fail-date-1"})
    assert status == 500
    assert 'datetime.datetime at result["rows"][0]["at"]' in body["error"] and "isoformat()" in body["error"]
    assert "raised" not in body["error"]  # predict itself succeeded
    records = echo_server.wait_log(lambda r: r.get("request_id") == "fail-date-1" and r["event"] == "result_not_json")
    logged = next(r for r in records if r["event"] == "result_not_json" and r.get("request_id") == "fail-date-1")
    assert logged["type"] == "datetime.datetime"

    status, _, body = post_json(echo_server, "/predict", "not-json")
    assert status == 500 and "a value of type object at result" in body["error"]
    status, _, body = post_json(echo_server, "/predict", "tuple-key")
    assert status == 500 and "dict key of type tuple at result" in body["error"]


def test_an_input_check_answers_422_before_the_model_is_called(tmp_path):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hi"})
    service = ModelService(str(tmp_path / "model"), str(tmp_path / "work"), Metrics(("/predict",)))
    service.load()
    assert json.loads(service.call(b"1", False, "r-1").body)["echo"] == 1  # no check installed: served
    calls = service.model.calls
    service.input_check = lambda data, batch: None if isinstance(data, list) else "the input must be a list of rows"
    reply = service.call(b"1", False, "r-2")
    assert reply.status == 422 and json.loads(reply.body)["error"] == "the input must be a list of rows"
    assert service.model.calls == calls  # the model never saw the refused input
    assert service.call(b"[1]", False, "r-3").status == 200
