"""The Open Inference Protocol (V2) against a running server of a logged iris model, through Triton's
Python clients (REST with binary and JSON tensors, gRPC) as their users call them, and raw requests
for the protocol's JSON and error shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from .conftest import ServerProcess, http_call, post_json
from .v2fixtures import IRIS_ROW, iris_classifier, iris_model_dir, iris_server

ROWS = np.array([IRIS_ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("iris")
    server, digest = iris_server(tmp)
    yield server, digest
    server.stop()


@pytest.fixture(scope="module")
def expected():
    classifier, _ = iris_classifier()
    return classifier.predict(ROWS)


@pytest.mark.parametrize("binary", [True, False])
def test_triton_http_client_infers_and_reads_metadata(iris, expected, binary):
    server, digest = iris
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    assert client.is_model_ready("iris", model_version=digest)
    assert not client.is_model_ready("iris", model_version="sha256:" + "0" * 64)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == [digest]
    tensor = httpclient.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=binary)
    wanted = [httpclient.InferRequestedOutput("output-0", binary_data=binary)]
    result = client.infer("iris", [tensor], outputs=wanted, request_id="triton-1", model_version=digest)
    assert result.as_numpy("output-0").tolist() == expected.tolist()
    response = result.get_response()
    assert response["id"] == "triton-1" and response["model_version"] == digest
    assert response["outputs"][0]["datatype"] == "INT64" and response["outputs"][0]["shape"] == [3]


def test_triton_http_client_gets_the_protocols_errors(iris):
    server, _ = iris
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    tensor = httpclient.InferInput("input-0", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([IRIS_ROW], dtype=np.float32))
    with pytest.raises(InferenceServerException, match="no model 'roses'") as info:
        client.infer("roses", [tensor])
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException, match="produces no output 'proba'"):
        client.infer("iris", [tensor], outputs=[httpclient.InferRequestedOutput("proba")])


def test_triton_grpc_client_infers_with_raw_contents(iris, expected):
    server, digest = iris
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    assert client.get_model_metadata("iris").versions == [digest]
    assert list(client.get_server_metadata().extensions) == ["binary_tensor_data"]
    tensor = grpcclient.InferInput("input-0", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS.astype(np.float32))
    result = client.infer("iris", [tensor], request_id="grpc-1")
    assert result.as_numpy("output-0").tolist() == expected.tolist()
    assert result.get_response().id == "grpc-1"
    with pytest.raises(InferenceServerException, match="no model 'roses'") as info:
        client.infer("roses", [tensor])
    assert "NOT_FOUND" in info.value.status()
    bad = grpcclient.InferInput("input-0", [1, 4], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    bad._input.shape[:] = [2, 4]  # a client whose shape and data disagree
    with pytest.raises(InferenceServerException, match="16 bytes of data do not make shape") as info:
        client.infer("iris", [bad])
    assert "INVALID_ARGUMENT" in info.value.status()


def test_json_tensors_nested_data_parameters_and_metrics(iris, expected):
    server, _ = iris
    request = {
        "id": "json-1",
        "parameters": {"binary_data_output": False},
        "inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROWS.tolist()}],  # nested
    }
    status, headers, body = post_json(server, "/v2/models/iris/infer", request)
    assert status == 200, body
    assert body["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [3], "data": expected.tolist()}]
    assert body["id"] == "json-1" and body["model_name"] == "iris"
    metrics = http_call(server, "GET", "/metrics")[2].decode()
    assert 'route="/v2/models/{name}/infer",status="200"' in metrics
    assert "iris" not in metrics  # a model name never becomes a label value


@pytest.mark.parametrize(
    "path,method,body,status,text",
    [
        ("/v2/models/iris/infer", "POST", b"{oops", 400, "not valid JSON"),
        ("/v2/models/iris/infer", "POST", b'{"inputs": []}', 400, "non-empty list"),
        (
            "/v2/models/iris/infer",
            "POST",
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP8", "data": [1]}]}',
            400,
            "datatype 'FP8'",
        ),
        (
            "/v2/models/iris/infer",
            "POST",
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": ["a"]}]}',
            400,
            "data is not INT32",
        ),
        ("/v2/models/iris/infer", "GET", None, 405, "takes POST"),
        ("/v2/models/iris/explain", "POST", b"{}", 404, "no route"),
        ("/v2/models/iris", "GET", None, 200, '"versions"'),
        ("/v2/models/tulips/ready", "GET", None, 404, "no model 'tulips'"),
        ("/v2/health/live", "GET", None, 200, ""),
    ],
)
def test_protocol_error_shape_and_routes(iris, path, method, body, status, text):
    server, _ = iris
    got, headers, raw = http_call(server, method, path, body, {"Content-Type": "application/json"} if body else {})
    assert got == status, raw
    assert text in raw.decode()
    if status >= 400:
        assert isinstance(json.loads(raw)["error"], str)  # {"error": message}


def test_binary_request_with_bytes_and_two_inputs_reaches_the_model_as_arrays(start_server):
    from .models import TensorEchoModel

    server = start_server(TensorEchoModel)
    server.wait_state()
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    words = httpclient.InferInput("words", [2], "BYTES")
    words.set_data_from_numpy(np.array([b"iris", "r\u00f6se".encode()], dtype=object))
    counts = httpclient.InferInput("counts", [2, 1], "UINT8")
    counts.set_data_from_numpy(np.array([[3], [250]], dtype=np.uint8))
    result = client.infer("serve-tests", [words, counts])
    assert result.as_numpy("types").tolist() == [b"words:ndarray:object:(2,)", b"counts:ndarray:uint8:(2, 1)"]
    assert result.as_numpy("total").tolist() == [253]


def test_v2_infer_goes_through_the_batcher(tmp_path, expected):
    model_dir, _ = iris_model_dir(tmp_path)
    (tmp_path / "run").mkdir()
    server = ServerProcess(model_dir, tmp_path / "run", args=("--max-batch-size", "8", "--max-latency-ms", "50"))
    try:
        server.wait_state()
        from concurrent.futures import ThreadPoolExecutor

        def one(i: int):
            request = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROWS[i % 3].tolist()}]}
            return post_json(server, "/v2/models/iris/infer", request)[2]["outputs"][0]["data"]

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(one, range(6)))
        assert answers == [[int(expected[i % 3])] for i in range(6)]
        metrics = http_call(server, "GET", "/metrics")[2].decode()
        batches = [line for line in metrics.splitlines() if line.startswith("vci_batch_size_count")]
        assert batches and 0 < float(batches[0].split()[-1]) < 6  # fewer model calls than requests
    finally:
        server.stop()
