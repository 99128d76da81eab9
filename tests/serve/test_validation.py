"""A running server checks each request against the run's input schema: 422 naming the first wrong field."""

from __future__ import annotations

import json

import pytest

from vci.schema import from_examples

from .conftest import http_call, post_json
from .models import BatchModel, SumModel

ROWS = from_examples([[[5.1, 3.5, 1.4, 0.2]], [[1, 2, 3, 4], [5, 6, 7, 8]]])  # rows of 4 numbers
SCHEMAS = {"input": ROWS, "output": None, "from": {"input": "examples", "output": None}}


def test_a_wrong_field_is_422_naming_it_and_a_right_one_reaches_the_model(start_server):
    server = start_server(SumModel, schemas=SCHEMAS)
    server.wait_state()
    assert post_json(server, "/predict", [[1, 2, 3, 4]])[2] == [10]
    status, _, body = post_json(server, "/predict", [[1, 2, 3, 4], [1, 2, 3, "4"]])
    assert status == 422
    assert body["error"] == "$[1][3]: expected number, got string"
    assert body["request_id"]
    status, _, body = post_json(server, "/predict", [[1, 2, 3]])
    assert (status, body["error"]) == (422, "$[0]: expected 4 items, got 3")
    status, _, body = post_json(server, "/predict", {"rows": 1})
    assert (status, body["error"]) == (422, "$: expected array, got object")
    records = server.wait_log(lambda r: r.get("status") == 422)
    assert not any(r.get("event") == "predict_failed" for r in records)  # the model never saw them


def test_batch_predict_names_the_item(start_server):
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    server = start_server(BatchModel, schemas={"input": schema, "output": None, "from": {"input": "declared"}})
    server.wait_state()
    assert post_json(server, "/batch-predict", [{"x": 1}, {"x": 2.5}])[0] == 200
    status, _, body = post_json(server, "/batch-predict", [{"x": 1}, {"y": 2}])
    assert (status, body["error"]) == (422, '$[1]: missing required key "x"')


def test_no_validate_lets_the_request_through_to_the_model(start_server):
    server = start_server(SumModel, schemas=SCHEMAS, args=("--no-validate",))
    server.wait_state()
    status, _, body = post_json(server, "/predict", [[1, 2, 3, "4"]])
    assert status == 500 and "TypeError" in body["error"]  # what a model meets without the check
    assert any(r.get("event") == "input_validation" and r["enabled"] is False for r in server.log_records())


def test_vci_validate_0_turns_it_off_too(start_server):
    server = start_server(SumModel, schemas=SCHEMAS, extra_env={"VCI_VALIDATE": "0"})
    server.wait_state()
    assert post_json(server, "/predict", [[1, 2, 3]])[0] == 200


def test_a_run_without_schemas_is_not_checked(start_server):
    server = start_server(SumModel)
    server.wait_state()
    assert post_json(server, "/predict", [[1, 2, 3]])[2] == [6]
    status, _, body = http_call(server, "GET", "/openapi.json")
    assert status == 200 and json.loads(body)["paths"]["/predict"]["post"]["requestBody"]


def test_grpc_predict_is_checked_too(start_server):
    grpc = pytest.importorskip("grpc")
    server = start_server(SumModel, schemas=SCHEMAS, grpc=True)
    server.wait_state()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        predict = channel.unary_unary("/vci.Model/Predict")
        assert json.loads(predict(b"[[1, 2, 3, 4]]", timeout=10)) == [10]
        try:
            predict(b'[[1, 2, 3, "4"]]', timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "$[0][3]: expected number, got string" in exc.details()
        else:
            raise AssertionError("a wrong input reached the model over gRPC")


def test_a_schema_the_validator_cannot_apply_is_served_unchecked_and_said(start_server):
    odd = {"input": {"type": "array", "contains": {"type": "string"}}, "output": None, "from": {"input": "declared"}}
    server = start_server(SumModel, schemas=odd)
    server.wait_state()
    assert post_json(server, "/predict", [[1, 2]])[2] == [3]
    [record] = [r for r in server.log_records() if r.get("event") == "input_validation"]
    assert record["enabled"] is False and "'contains'" in record["reason"]
