"""Start-up, readiness, refusal of tampered models, graceful drain, workers and the import boundary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import REPO, build_model_dir, http_call, post_json, serve_until_exit, unlabelled
from .models import BrokenInitModel, EchoModel, FailingSelfTestModel, SlowLoadModel

IMAGE_DIGEST = "sha256:" + "ab" * 32


def test_healthz_answers_while_loading_and_predict_waits_for_ready(start_server):
    server = start_server(
        SlowLoadModel,
        env={"SLOW_LOAD_SECONDS": "1.5"},
        extra_env={"VCI_IMAGE_DIGEST": IMAGE_DIGEST, "VCI_RELEASE_ID": "r-7"},
    )
    assert http_call(server, "GET", "/healthz")[0] == 200
    status, _, body = http_call(server, "GET", "/readyz")
    assert status == 503 and json.loads(body)["state"] == "loading"
    status, _, body = post_json(server, "/predict", 1)
    assert status == 503 and "not ready" in body["error"] and body["request_id"]
    server.wait_state()
    assert http_call(server, "GET", "/readyz")[0] == 200
    status, _, body = post_json(server, "/predict", [1])
    assert (status, body) == (200, [1])
    meta = json.loads(http_call(server, "GET", "/metadata")[2])
    assert meta["image_digest"] == IMAGE_DIGEST and meta["state"] == "ready" and meta["release_id"] == "r-7"
    events = [r["event"] for r in server.log_records()]
    assert events.index("listening") < events.index("model_loaded") < events.index("model_test")


def test_failed_self_test_keeps_the_server_unready(start_server):
    server = start_server(FailingSelfTestModel)
    assert server.wait_state(("self_test_failed", "ready")) == "self_test_failed"
    for _ in range(2):  # still refusing on a later ask: no retry makes it ready
        status, _, body = http_call(server, "GET", "/readyz")
        assert status == 503 and "the weights are all zero" in json.loads(body)["error"]
        status, _, body = post_json(server, "/predict", 1)
        assert status == 503 and "model_test() failed" in body["error"]
    assert http_call(server, "GET", "/healthz")[0] == 200
    failed = [r for r in server.log_records() if r["event"] == "model_test"]
    assert failed and failed[0]["result"] == "failed"


def test_a_tampered_blob_is_refused_before_unpickling(tmp_path):
    model_dir = tmp_path / "model"
    build_model_dir(model_dir, EchoModel, artifacts={"greeting": b"hello"})
    manifest = json.loads((model_dir / "manifest.json").read_text())
    blob = model_dir / "blobs" / "sha256" / manifest["model"]["digest"].split(":")[1]
    blob.write_bytes(blob.read_bytes().replace(b"hello", b"jello") + b"\x00")  # a changed pickle
    proc, records = serve_until_exit(model_dir, tmp_path / "work")
    assert proc.returncode == 9  # IntegrityError's exit code
    failure = next(r for r in records if r["event"] == "model_load_failed")
    assert "does not match its record" in failure["error"]
    assert "model_loaded" not in proc.stderr


def test_a_model_that_cannot_be_constructed_stops_the_server(tmp_path):
    build_model_dir(tmp_path / "model", BrokenInitModel)
    proc, records = serve_until_exit(tmp_path / "model", tmp_path / "work")
    assert proc.returncode == 14  # ServeError's exit code
    failure = next(r for r in records if r["event"] == "model_load_failed")
    assert "weights file is from another model version" in failure["traceback"]
    assert records[-1]["event"] == "exit" and records[-1]["code"] == 14


def test_sigterm_lets_a_slow_request_finish_then_exits_zero(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hello"})
    server.wait_state()
    post_json(server, "/predict", {"sleep": 0.1})  # the model is now slow on average: calls use the pool
    result = {}
    slow = threading.Thread(target=lambda: result.update(answer=post_json(server, "/predict", {"sleep": 2})))
    slow.start()
    deadline = time.monotonic() + 10
    while "vci_requests_in_flight 2" not in unlabelled(http_call(server, "GET", "/metrics")[2].decode()):
        assert time.monotonic() < deadline, "the slow request never started"
        time.sleep(0.01)
    server.proc.send_signal(signal.SIGTERM)
    slow.join(15)
    status, headers, body = result["answer"]
    assert status == 200 and body["echo"] == {"sleep": 2}
    assert headers["connection"] == "close"
    assert server.proc.wait(15) == 0
    events = [r["event"] for r in server.log_records()]
    assert events[-3:] == ["draining", "request", "stopped"] or events[-2:] == ["draining", "stopped"]


def test_sigint_during_load_exits_zero(start_server):
    server = start_server(SlowLoadModel, env={"SLOW_LOAD_SECONDS": "5"})
    assert server.stop(signal.SIGINT) == 0


def test_several_workers_share_the_port_and_stop_together(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"w"}, args=("--workers", "2"))
    server.wait_state()
    answers = {post_json(server, "/predict", i)[2]["echo"] for i in range(10)}
    assert answers == set(range(10))
    assert server.stop() == 0
    exits = [r for r in server.log_records() if r["event"] == "worker_exited"]
    assert sorted(r["worker"] for r in exits) == [0, 1] and all(r["code"] == 0 for r in exits)


def running(pid: str) -> bool:
    """Whether process ``pid`` is alive (a zombie waiting for its new parent to reap it is not)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_workers_die_with_a_supervisor_killed_outright(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"w"}, args=("--workers", "2"))
    server.wait_state()
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    assert len(children) == 2
    server.proc.kill()  # SIGKILL: the supervisor forwards nothing
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(map(running, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in children if running(pid)]
    assert not alive, f"workers {alive} outlived their supervisor (they would hold the port)"


CHECK_MODULES = """
import json, sys, threading, time, http.client
from vci.serve import run_server
stop = threading.Event()
ready = sys.argv[2]
t = threading.Thread(target=run_server, args=(sys.argv[1],), kwargs=dict(
    host="127.0.0.1", port=0, grpc_port=0 if sys.argv[4] == "on" else None, ready_file=ready,
    work_dir=sys.argv[3], stop_event=stop))
t.start()
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        info = json.load(open(ready))
        if info["state"] == "ready":
            break
    except (OSError, ValueError):
        pass
    time.sleep(0.02)
conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=10)
conn.request("POST", "/predict", body="1", headers={"Content-Type": "application/json"})
status = conn.getresponse().status
stop.set()
t.join(20)
print(json.dumps({"status": status, "alive": t.is_alive(), "modules": sorted(sys.modules)}))
"""

FORBIDDEN = (
    "boto3",
    "botocore",
    "kubernetes",
    "docker",
    "click",
    "vci.store",
    "vci.runs",
    "vci.cli",
    "vci.deploy",
    "vci.oci",
    "vci.build",
    "vci.release",
    "vci.client",
    "opentelemetry",  # tracing encodes its spans itself (vci.serve.otlp), and only when asked to
)


@pytest.mark.parametrize("grpc", ["on", "off"])
def test_the_server_imports_nothing_but_what_it_serves_with(tmp_path, grpc):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hello"})
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHECK_MODULES,
            str(tmp_path / "model"),
            str(tmp_path / "ready.json"),
            str(tmp_path / "work"),
            grpc,
        ],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == 200 and not report["alive"]
    modules = report["modules"]
    assert "vci.serve.http" in modules and "cloudpickle" in modules  # a server really ran here
    assert ("grpc" in modules) == (grpc == "on")  # grpcio is imported only when gRPC is enabled
    leaked = [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert leaked == []


def test_sigterm_drains_and_exits_zero_as_pid_1(tmp_path):
    """In a new PID namespace the server is PID 1, which the kernel never kills by a signal's default
    action: SIGTERM stops it only because the server handles it (what a container runtime sends)."""
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"pid1"})
    ready = tmp_path / "ready.json"
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            sys.executable,
            "-m",
            "vci.serve",
            "--model-dir",
            str(tmp_path / "model"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and json.loads(ready.read_text())["state"] == "ready"):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "log").read_text()
            time.sleep(0.02)
        assert json.loads(ready.read_text())["pid"] == 1
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        subprocess.run(["kill", "-TERM", children[0]], check=True)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
    assert '"event":"stopped"' in (tmp_path / "log").read_text()
