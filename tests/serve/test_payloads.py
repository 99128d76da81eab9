"""Payload logging against real server processes: each sink (file, stdout, CloudEvents over HTTP, S3 on
moto), include and redact, drop-not-block under a slow or dead sink, the flush on SIGTERM, and the refusal
of an S3 sink in an image without boto3."""

from __future__ import annotations

import gzip
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.s3server import dummy_aws_env, free_port, reset_moto, start_moto

from .conftest import build_model_dir, http_call, post_json, unlabelled
from .models import EchoModel

BUCKET = "payload-logs"


def payload_env(sink: str, **more: str) -> dict[str, str]:
    env = {"VCI_PAYLOAD_SINK": sink, "VCI_ENVIRONMENT": "staging", "VCI_RELEASE_ID": "rel-0007"}
    return {**env, **{f"VCI_PAYLOAD_{key.upper()}": value for key, value in more.items()}}


def echo_server(start_server, env: dict[str, str]):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, extra_env=env)
    server.wait_state()
    return server


def read_lines(path, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        assert time.monotonic() < deadline, f"{len(lines)} records of {count} in {path}"
        time.sleep(0.02)


def metric(server, name: str) -> float:
    text = unlabelled(http_call(server, "GET", "/metrics")[2].decode())
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    assert values, f"no {name} in /metrics"
    return sum(values)


def test_the_file_sink_records_each_prediction_with_its_release_and_answer(start_server, tmp_path):
    path = tmp_path / "payloads.jsonl"
    server = echo_server(start_server, payload_env(f"file:{path}"))
    assert post_json(server, "/predict", {"x": 1}, {"X-Request-Id": "req-one"})[0] == 200
    assert post_json(server, "/predict", "reject")[0] == 422
    assert http_call(server, "GET", "/healthz")[0] == 200  # not a prediction: no record
    assert post_json(server, "/batch-predict", [1, 2])[0] == 200
    first, refused, batch = read_lines(path, 3)
    assert first["request_id"] == "req-one" and first["route"] == "/predict" and first["status"] == 200
    assert first["input"] == {"x": 1} and first["output"] == {"greeting": "hi", "echo": {"x": 1}}
    assert first["environment"] == "staging" and first["release_id"] == "rel-0007"
    assert first["run_id"] == "20261124-1200-abcd" and first["model_digest"].startswith("sha256:")
    assert first["latency_ms"] > 0 and first["time"].endswith("Z")
    assert refused["status"] == 422 and "reject" in refused["error"] and "output" not in refused
    assert batch["route"] == "/batch-predict" and batch["input"] == [1, 2] and len(batch["output"]) == 2
    assert metric(server, "vci_payload_records_written_total") == 3


def test_include_and_redact_keep_fields_out_of_the_records(start_server, tmp_path):
    path = tmp_path / "payloads.jsonl"
    env = payload_env(f"file:{path}", include="input", redact="input.customer.email,input.rows.*.ssn")
    server = echo_server(start_server, env)
    value = {"customer": {"email": "a@example.com", "age": 41}, "rows": [{"ssn": "123-45"}, {"ssn": "678-90"}]}
    assert post_json(server, "/predict", value)[0] == 200
    (record,) = read_lines(path, 1)
    assert record["input"] == {"customer": {"email": "[redacted]", "age": 41}, "rows": [{"ssn": "[redacted]"}] * 2}
    assert "output" not in record
    assert "a@example.com" not in path.read_text() and "123-45" not in path.read_text()


def test_the_stdout_sink_writes_json_lines_beside_the_servers_log(start_server):
    server = echo_server(start_server, payload_env("stdout"))
    assert post_json(server, "/predict", 5, {"X-Request-Id": "out-1"})[0] == 200
    records = server.wait_log(lambda r: r.get("request_id") == "out-1" and "output" in r)
    (record,) = [r for r in records if r.get("request_id") == "out-1" and "output" in r]
    assert record["input"] == 5 and record["output"]["echo"] == 5 and "event" not in record


class Receiver(BaseHTTPRequestHandler):
    """A CloudEvents receiver: keeps (headers, body) of each POST; ``delay`` seconds before answering."""

    events: list = []
    delay = 0.0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        self.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("Handler", (Receiver,), {"events": [], "delay": 0.0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def test_the_http_sink_sends_binary_mode_cloudevents(start_server, receiver):
    httpd, handler = receiver
    server = echo_server(start_server, payload_env(f"http://127.0.0.1:{httpd.server_address[1]}/events"))
    assert post_json(server, "/predict", {"a": 1}, {"X-Request-Id": "ce-1"})[0] == 200
    deadline = time.monotonic() + 10
    while len(handler.events) < 2:
        assert time.monotonic() < deadline, handler.events
        time.sleep(0.02)
    (request_headers, request_body), (response_headers, response_body) = handler.events
    assert request_headers["ce-specversion"] == "1.0" and request_headers["ce-id"] == "ce-1"
    assert request_headers["ce-type"] == "dev.vci.inference.request"
    assert response_headers["ce-type"] == "dev.vci.inference.response" and response_headers["ce-id"] == "ce-1"
    assert request_headers["ce-source"] == "/vci/staging" and request_headers["ce-releaseid"] == "rel-0007"
    assert request_headers["content-type"] == "application/json" and request_headers["ce-status"] == "200"
    assert json.loads(request_body) == {"a": 1} and json.loads(response_body)["echo"] == {"a": 1}


def test_a_slow_sink_drops_records_and_never_slows_a_prediction(start_server, receiver):
    httpd, handler = receiver
    handler.delay = 2.0  # each event takes 2 s: the writer is stuck on the first record
    env = payload_env(f"http://127.0.0.1:{httpd.server_address[1]}/", queue="5")
    server = echo_server(start_server, env)
    started = time.monotonic()
    for n in range(40):
        assert post_json(server, "/predict", n)[0] == 200
    assert time.monotonic() - started < 1.5  # 40 predictions well within one sink call
    assert metric(server, 'vci_payload_records_dropped_total{reason="queue_full"}') >= 30


def test_a_dead_sink_drops_records_counted_and_logged(start_server):
    server = echo_server(start_server, payload_env(f"http://127.0.0.1:{free_port()}/"))
    for n in range(15):  # over about a second: a writer poll (50 ms) sees one or two records at a time
        assert post_json(server, "/predict", n)[0] == 200
        time.sleep(0.07)
    deadline = time.monotonic() + 10
    while metric(server, 'vci_payload_records_dropped_total{reason="sink_failed"}') < 15:
        assert time.monotonic() < deadline, http_call(server, "GET", "/metrics")[2].decode()
        time.sleep(0.05)
    failures = [r for r in server.log_records() if r.get("event") == "payload_sink_failed"]
    assert 1 <= len(failures) <= 3  # backed off (1 s, then 2 s): not one attempt per poll
    assert "Connection refused" in failures[0]["error"]


@pytest.fixture(scope="module")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


def s3_objects(endpoint: str) -> dict[str, list[dict]]:
    import boto3

    client = boto3.session.Session(**_credentials()).client("s3", endpoint_url=endpoint)
    found = {}
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        found[item["Key"]] = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    return found


def _credentials() -> dict:
    env = dummy_aws_env()
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def s3_server(start_server, endpoint: str, **more: str):
    import boto3

    reset_moto(endpoint)
    boto3.session.Session(**_credentials()).client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    env = {**dummy_aws_env(), "VCI_S3_ENDPOINT_URL": endpoint, **payload_env(f"s3://{BUCKET}/logs", **more)}
    return echo_server(start_server, env)


def test_the_s3_sink_writes_gzip_json_lines_by_environment_and_hour_every_n_records(start_server, moto_endpoint):
    server = s3_server(start_server, moto_endpoint, batch_records="4", batch_seconds="3600")
    for n in range(10):
        assert post_json(server, "/predict", {"n": n})[0] == 200
    deadline = time.monotonic() + 10
    while sum(len(v) for v in s3_objects(moto_endpoint).values()) < 8:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    objects = s3_objects(moto_endpoint)
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime())
    assert all(key.startswith(f"logs/staging/{hour}/") and key.endswith(".jsonl.gz") for key in objects)
    assert sorted(len(records) for records in objects.values()) == [4, 4]  # 2 left wait for the 3600 s
    inputs = sorted(r["input"]["n"] for records in objects.values() for r in records)
    assert inputs == list(range(8))
    assert server.stop() == 0  # SIGTERM writes the last two
    objects = s3_objects(moto_endpoint)
    assert sorted(len(records) for records in objects.values()) == [2, 4, 4]


def test_the_s3_sink_sends_a_partial_batch_after_batch_seconds(start_server, moto_endpoint):
    server = s3_server(start_server, moto_endpoint, batch_records="1000", batch_seconds="0.5")
    assert post_json(server, "/predict", "one")[0] == 200
    deadline = time.monotonic() + 10
    while not s3_objects(moto_endpoint):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ((record,),) = s3_objects(moto_endpoint).values()
    assert record["input"] == "one" and record["release_id"] == "rel-0007"


def test_an_s3_sink_in_an_image_without_boto3_stops_the_start_saying_so(tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hi"})
    shadow = tmp_path / "shadow" / "boto3"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "vci.serve", "--model-dir", str(tmp_path / "model"), "--port", "0"],
        env={"PYTHONPATH": f"{shadow.parent}:{REPO}", "PATH": "/usr/bin:/bin", **payload_env("s3://bucket/p")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 14, proc.stderr  # ServeError
    (exit_record,) = [json.loads(line) for line in proc.stderr.splitlines() if '"event":"exit"' in line]
    assert "needs boto3" in exit_record["error"] and "listening" not in proc.stderr


def test_two_workers_appending_to_one_file_keep_every_line_whole(start_server, tmp_path):
    path = tmp_path / "payloads.jsonl"
    server = start_server(
        EchoModel, artifacts={"greeting": b"hi"}, extra_env=payload_env(f"file:{path}"), args=("--workers", "2")
    )
    server.wait_state()
    big = "x" * 20_000  # a chunk of records far over a buffered writer's 8 KiB
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: post_json(server, "/predict", {"n": n, "pad": big})[0], range(48)))
    assert statuses == [200] * 48
    records = read_lines(path, 48)
    assert sorted(r["input"]["n"] for r in records) == list(range(48))


def grpc_call(server, method: str, body: bytes, request_id: str) -> tuple[bytes | None, str]:
    """One gRPC call: (answer or None, status code name)."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        try:
            answer = channel.unary_unary(method).with_call(body, timeout=10, metadata=(("x-request-id", request_id),))
        except grpc.RpcError as exc:
            return None, exc.code().name
    return answer[0], "OK"


def model_infer(rows: list[list[float]]) -> bytes:
    from vci.serve import v2_grpc

    request = v2_grpc.messages()["ModelInferRequest"](model_name="serve-tests", id="infer-1")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[len(rows), len(rows[0])])
    tensor.contents.fp32_contents.extend(v for row in rows for v in row)
    return request.SerializeToString()


def test_grpc_calls_are_recorded_like_http_ones_in_the_file_sink(start_server, tmp_path):
    from .models import SumModel

    path = tmp_path / "payloads.jsonl"
    server = start_server(SumModel, grpc=True, extra_env=payload_env(f"file:{path}"))
    server.wait_state()
    assert grpc_call(server, "/vci.Model/Predict", b"[[1, 2]]", "g-1") == (b"[3]", "OK")
    assert grpc_call(server, "/vci.Model/BatchPredict", b"[[[1]], [[2, 3]]]", "g-2")[1] == "OK"
    assert grpc_call(server, "/vci.Model/Predict", b"{oops", "g-3") == (None, "INVALID_ARGUMENT")
    assert grpc_call(server, "/vci.Model/Health", b"", "g-4")[1] == "OK"  # not a prediction: no record
    assert (
        grpc_call(server, "/inference.GRPCInferenceService/ModelInfer", model_infer([[1, 2], [3, 4]]), "g-5")[1] == "OK"
    )
    assert grpc_call(server, "/inference.GRPCInferenceService/ServerLive", b"", "g-6")[1] == "OK"  # no record
    records = {r["request_id"]: r for r in read_lines(path, 4)}
    assert sorted(records) == ["g-1", "g-2", "g-3", "g-5"]
    predict = records["g-1"]
    assert predict["route"] == "/vci.Model/Predict" and predict["status"] == 200 and predict["trace_id"] is None
    assert predict["input"] == [[1, 2]] and predict["output"] == [3] and predict["release_id"] == "rel-0007"
    assert predict["environment"] == "staging" and predict["model_digest"].startswith("sha256:")
    assert records["g-2"]["output"] == [[1], [5]]
    assert records["g-3"]["status"] == 400 and "not valid JSON" in records["g-3"]["error"]
    infer = records["g-5"]
    assert infer["route"] == "/inference.GRPCInferenceService/ModelInfer" and infer["status"] == 200
    assert infer["input"]["model_name"] == "serve-tests" and infer["input"]["id"] == "infer-1"
    assert infer["input"]["inputs"][0]["contents"]["fp32_contents"] == [1, 2, 3, 4]
    assert infer["output"]["outputs"][0]["name"] == "output-0" and infer["output"]["id"] == "infer-1"
    assert metric(server, "vci_payload_records_written_total") == 4


def test_a_grpc_call_reaches_the_stdout_sink(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"}, grpc=True, extra_env=payload_env("stdout"))
    server.wait_state()
    assert grpc_call(server, "/vci.Model/Predict", b"7", "out-g")[1] == "OK"
    records = server.wait_log(lambda r: r.get("request_id") == "out-g" and "output" in r)
    (record,) = [r for r in records if r.get("request_id") == "out-g" and "output" in r]
    assert record["route"] == "/vci.Model/Predict" and record["input"] == 7 and record["output"]["echo"] == 7
