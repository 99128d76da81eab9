"""Fixtures for the model server tests: model directories written by hand and real server processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vci.digests import sha256_bytes
from vci.modeldir import blob_path, encode_manifest, manifest_digest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


def write_blob(model_dir: Path, data: bytes) -> dict:
    digest = sha256_bytes(data)
    path = blob_path(model_dir, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def build_model_dir(
    model_dir: Path,
    cls,
    *,
    artifacts: dict[str, bytes] | None = None,
    env: dict[str, str] | None = None,
    run_id: str = "20261124-1200-abcd",
    schemas: dict | None = None,
    examples: dict | None = None,
) -> str:
    """Write a schema-1 model directory for ``cls`` (pickled by value); return its model digest.
    ``schemas`` (``{"input", "output", "from"}``) and ``examples`` go into the manifest as a run has them."""
    import cloudpickle

    from . import models

    cloudpickle.register_pickle_by_value(models)
    try:
        model = write_blob(model_dir, cloudpickle.dumps(cls))
    finally:
        cloudpickle.unregister_pickle_by_value(models)
    records = {}
    for key, data in (artifacts or {}).items():
        records[key] = {**write_blob(model_dir, data), "kind": "file", "filename": f"{key}.txt"}
    manifest = {
        "schema": 1,
        "id": run_id,
        "project": "serve-tests",
        "created": "2026-11-24T12:00:00Z",
        "vci_version": "0.1.0",
        "artifacts": records,
        "model": {**model, "class": f"{cls.__module__}.{cls.__qualname__}", "artifacts": sorted(records)},
        "requirements": [],
        "environment": {"python": "3.11.7", "env": env or {}},
        "examples": examples,
    }
    if schemas is not None:
        manifest["schemas"] = schemas
    (model_dir / "manifest.json").write_bytes(encode_manifest(manifest))
    return manifest_digest(manifest)


class ServerProcess:
    """``python -m vci.serve`` on free ports, its log captured in a file."""

    def __init__(
        self,
        model_dir: Path,
        tmp: Path,
        *,
        grpc: bool = False,
        extra_env: dict | None = None,
        args: tuple[str, ...] = (),
    ):
        self.ready_file = tmp / "ready.json"
        self.log_path = tmp / "server.log"
        cmd = [
            sys.executable,
            "-m",
            "vci.serve",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(self.ready_file),
            "--work-dir",
            str(tmp / "work"),
            *args,
        ]
        if grpc:
            cmd += ["--grpc-port", "0"]
        env = {**os.environ, "PYTHONPATH": str(REPO), **(extra_env or {})}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        self.info = self._wait_listening()
        self.url = self.info["url"]
        self.port = self.info["port"]
        self.grpc_port = self.info["grpc_port"]

    def _wait_listening(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                return json.loads(self.ready_file.read_text())
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"server did not listen within {START_TIMEOUT}s:\n{self.log()}")

    def wait_state(self, states=("ready",), timeout: float = START_TIMEOUT) -> str:
        """Wait until the ready file reports one of ``states`` (written when loading ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = json.loads(self.ready_file.read_text())["state"]
            if state in states:
                return state
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"server never reached {states}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stray_lines(self) -> list[str]:
        """Log lines that are not JSON records: an asyncio traceback, say (every path should be handled)."""
        return [line for line in self.log().splitlines() if not line.startswith("{")]

    def log_records(self) -> list[dict]:
        lines = self.log().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]

    def wait_log(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Log records, once one satisfies ``predicate`` (a response can arrive before its log line)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.log_records()
            if any(predicate(r) for r in records):
                return records
            assert time.monotonic() < deadline, f"no such log line:\n{self.log()[-3000:]}"
            time.sleep(0.01)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    """Factory: ``start_server(model_class, artifacts=..., grpc=..., ...)`` -> a listening ServerProcess."""
    servers = []

    def start(cls, *, artifacts=None, env=None, grpc=False, extra_env=None, args=(), model_dir=None, **manifest):
        n = len(servers)
        if model_dir is None:
            model_dir = tmp_path / f"model{n}"
            build_model_dir(model_dir, cls, artifacts=artifacts, env=env, **manifest)
        run_dir = tmp_path / f"run{n}"
        run_dir.mkdir()
        server = ServerProcess(model_dir, run_dir, grpc=grpc, extra_env=extra_env, args=args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL if server.proc.poll() is None else signal.SIGTERM)


CONSTANT_LABELS = re.compile(r'\{release="[^"]*",track="[^"]*"(\}|,)')  # every sample's first (vci.serve.metrics)


def unlabelled(exposition: str) -> str:
    """A server's /metrics without the release and track labels it puts on every sample."""
    return CONSTANT_LABELS.sub(lambda m: "{" if m.group(1) == "," else "", exposition)


def http_call(
    server, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0
) -> tuple[int, dict, bytes]:
    """One request on a fresh connection: ``(status, headers with lower-case names, body)``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_json(server, path: str, value, headers: dict | None = None) -> tuple[int, dict, object]:
    status, resp_headers, body = http_call(
        server, "POST", path, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    return status, resp_headers, json.loads(body)


def raw_exchange(server, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, half-close, and return everything the server answers until it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def serve_until_exit(model_dir: Path, work_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run a server that is expected to stop on its own (its model cannot be served): the finished
    process and the JSON records of its log."""
    proc = subprocess.run(
        [sys.executable, "-m", "vci.serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0"]
        + ["--work-dir", str(work_dir), *args],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc, [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]


def ready_echo_server(tmp: Path, *args: str) -> ServerProcess:
    """A ready EchoModel server (greeting "hi") with its model and run directories under ``tmp``."""
    from .models import EchoModel

    build_model_dir(tmp / "model", EchoModel, artifacts={"greeting": b"hi"})
    (tmp / "run").mkdir()
    server = ServerProcess(tmp / "model", tmp / "run", args=args)
    server.wait_state()
    return server


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    """One ready EchoModel server (with gRPC) shared by a module's read-mostly tests."""
    from .models import EchoModel

    tmp = tmp_path_factory.mktemp("echo")
    build_model_dir(tmp / "model", EchoModel, artifacts={"greeting": b"hello\n"})
    (tmp / "run").mkdir()
    server = ServerProcess(tmp / "model", tmp / "run", grpc=True, args=("--max-body-bytes", "4096"))
    server.wait_state()
    yield server
    server.stop()
