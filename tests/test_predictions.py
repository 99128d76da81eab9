"""The payload_log setting (its checks, the server variables it becomes), the record's redaction, and
`vci predictions` reading records back from a file and from S3 (moto), newest first, joined to the ledger."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.s3server import dummy_aws_env, reset_moto, start_moto
from vci.config import load_settings
from vci.errors import ConfigError
from vci.ledger import Ledger, make_record
from vci.serve.payloads import PayloadSettings, iso_time, object_name, partition, redact_path
from vci.store.local import LocalStore

ROOT = Path(__file__).resolve().parents[1]


def settings_with(tmp_path, payload_log: dict, name: str = "staging"):
    (tmp_path / "vci.yaml").write_text(json.dumps({"environments": {name: {"payload_log": payload_log}}}))
    return load_settings(cwd=tmp_path, environ={})


def test_payload_log_becomes_the_servers_variables_and_back(tmp_path):
    given = {"sink": "s3://logs-bucket/p", "sample": 0.25, "include": ["input"], "redact": ["input.*.ssn"]}
    env = settings_with(tmp_path, {**given, "batch_records": 50, "batch_seconds": 2}).environment("staging")
    variables = env.server_env
    assert variables["VCI_PAYLOAD_SINK"] == "s3://logs-bucket/p" and variables["VCI_ENVIRONMENT"] == "staging"
    read = PayloadSettings.from_environ(variables)
    assert read is not None and read.sample == 0.25 and read.include == ("input",)
    assert read.redact == (("input", "*", "ssn"),) and read.batch_records == 50 and read.batch_seconds == 2.0
    assert PayloadSettings.from_environ({}) is None  # no sink: logging off


@pytest.mark.parametrize(
    "payload_log, problem",
    [
        ({"sink": "kafka://broker/topic"}, "sink must be stdout"),
        ({"sink": "file:relative/path"}, "sink must be stdout"),
        ({"sink": "stdout", "sample": 0}, "sample must be a fraction"),
        ({"sink": "stdout", "sample": 1.5}, "sample must be a fraction"),
        ({"sink": "stdout", "include": ["inputs"]}, "did you mean 'input'"),
        ({"sink": "stdout", "redact": ["customer.email"]}, "redact must list field paths"),
        ({"sink": "stdout", "batch_records": 0}, "batch_records must be a number from 1"),
        ({"sink": "stdout", "sampel": 1}, "did you mean 'sample'"),
    ],
)
def test_a_payload_log_that_cannot_work_is_refused_naming_the_key(tmp_path, payload_log, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        settings_with(tmp_path, payload_log)
    assert "payload_log" in str(caught.value)


def test_the_payload_variables_cannot_be_set_through_env(tmp_path):
    (tmp_path / "vci.yaml").write_text(json.dumps({"environments": {"staging": {"env": {"VCI_PAYLOAD_SINK": "x"}}}}))
    with pytest.raises(ConfigError, match="comes from the payload_log setting"):
        load_settings(cwd=tmp_path, environ={})


def test_redact_replaces_named_fields_items_and_wildcards_only():
    record = {"input": {"a": {"email": "x@y", "keep": 1}, "rows": [{"ssn": 1, "n": 2}, {"ssn": 3}], "list": [5, 6]}}
    for path in ("input.a.email", "input.rows.*.ssn", "input.list.1", "input.absent.x", "output.x"):
        redact_path(record, tuple(path.split(".")))
    assert record == {
        "input": {
            "a": {"email": "[redacted]", "keep": 1},
            "rows": [{"ssn": "[redacted]", "n": 2}, {"ssn": "[redacted]"}],
            "list": [5, "[redacted]"],
        }
    }


# --- vci predictions ---------------------------------------------------------------------------------


def vci(*args, cwd, env=None):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full.pop("VCI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


def record(at: float, n: int, release: str = "rel-1", env: str = "staging") -> dict:
    return {
        "time": iso_time(at),
        "request_id": f"r{n}",
        "environment": env,
        "release_id": release,
        "route": "/predict",
        "status": 200,
        "latency_ms": 0.5,
        "input": n,
        "output": n * 2,
    }


def project(tmp_path, sink: str) -> Path:
    (tmp_path / "vci.yaml").write_text(
        json.dumps({"store": str(tmp_path / "store"), "environments": {"staging": {"payload_log": {"sink": sink}}}})
    )
    ledger = Ledger(LocalStore(tmp_path / "store"))
    ledger.append(
        make_record(
            release_id="rel-1",
            environment="staging",
            action="deploy",
            outcome="succeeded",
            digest="sha256:" + "a" * 64,
            run_id="20261201-1200-abcd",
        )
    )
    return tmp_path


def test_predictions_from_a_file_newest_first_within_since_and_limit_joined_to_the_ledger(tmp_path):
    now = time.time()
    lines = [record(now - 7200, 0), record(now - 30, 1), record(now - 20, 2), record(now - 10, 3, "rel-unknown")]
    lines.append(record(now - 5, 4, env="production"))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"torn')
    cwd = project(tmp_path, f"file:{tmp_path / 'p.jsonl'}")
    out = vci("predictions", "--env", "staging", "--since", "1h", "--limit", "2", "--output", "json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [r["request_id"] for r in result["records"]] == ["r3", "r2"]
    assert set(result["releases"]) == {"rel-1"}  # rel-unknown (r3's) is not in the ledger
    out = vci("predictions", "--since", "1h", "--output", "json", cwd=cwd)
    result = json.loads(out.stdout)
    assert [r["request_id"] for r in result["records"]] == ["r3", "r2", "r1"]
    assert result["releases"]["rel-1"]["digest"] == "sha256:" + "a" * 64
    assert result["releases"]["rel-1"]["run_id"] == "20261201-1200-abcd"
    text = vci("predictions", cwd=cwd).stdout
    assert text.index("r3") < text.index("r0") and "rel-1" in text


def test_predictions_refuse_a_sink_they_cannot_read_and_an_environment_without_one(tmp_path):
    cwd = project(tmp_path, "http://127.0.0.1:9/events")
    out = vci("predictions", cwd=cwd)
    assert out.returncode == 3 and "cannot read back" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "vci.yaml").write_text(json.dumps({"store": str(tmp_path / "store")}))
    out = vci("predictions", cwd=cwd)
    assert out.returncode == 3 and "logs no payloads" in out.stderr


@pytest.fixture(scope="module")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


def test_predictions_from_s3_read_the_newest_hours_objects_first(tmp_path, moto_endpoint):
    import boto3

    reset_moto(moto_endpoint)
    aws = dummy_aws_env()
    client = boto3.session.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket="logs")
    now = time.time()
    for n, at in enumerate((now - 3 * 3600, now - 3600, now - 60)):  # three hours' objects, two records each
        body = "".join(json.dumps(record(at + i, 10 * n + i)) + "\n" for i in range(2))
        key = partition("vci", "staging", at) + object_name(at, n)
        client.put_object(Bucket="logs", Key=key, Body=gzip.compress(body.encode()))
    cwd = project(tmp_path, "s3://logs/vci")
    env = {**aws, "VCI_S3_ENDPOINT_URL": moto_endpoint}
    out = vci("predictions", "--since", "2h", "--output", "json", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    assert [r["request_id"] for r in json.loads(out.stdout)["records"]] == ["r21", "r20", "r11", "r10"]
    out = vci("predictions", "--limit", "3", "--output", "json", cwd=cwd, env=env)
    assert [r["request_id"] for r in json.loads(out.stdout)["records"]] == ["r21", "r20", "r11"]
