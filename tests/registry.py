"""A real CNCF distribution registry for tests: own config, free port, optional auth and TLS, its log.

    with RegistryServer(tmp_path, users={"ci": "secret"}, tls=True) as reg:
        reg.host          # "127.0.0.1:PORT"
        reg.requests()    # [LoggedRequest(method, uri, status), ...] parsed from the registry's JSON log

The registry runs with its own config file in ``root`` (never /etc/docker/registry), listens on
127.0.0.1 only, is waited for with a bounded poll of ``GET /v2/``, and is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

BINARY = "docker-registry"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    uri: str
    status: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_cert(directory: Path, name: str = "registry") -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}" for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class RegistryServer:
    """One ``docker-registry serve`` process; ``token`` is a dict for ``auth.token`` (realm, service, ...)."""

    def __init__(
        self,
        root: str | Path,
        *,
        users: dict[str, str] | None = None,
        tls: bool = False,
        token: dict | None = None,
        port: int | None = None,
    ):
        if shutil.which(BINARY) is None:
            raise RuntimeError(f"{BINARY} is not installed: apt-get install -y docker-registry")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        self.cert: Path | None = None
        self.log_path = self.root / "registry.log"
        self._process: subprocess.Popen | None = None
        self.config_path = self._write_config(users, token)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def _write_config(self, users, token) -> Path:
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": "vci-test-secret"},
        }
        if users:
            config["auth"] = {
                "htpasswd": {"realm": "vci-test", "path": str(htpasswd_file(self.root / "htpasswd", users))}
            }
        if token:
            config["auth"] = {"token": dict(token)}
        if self.tls:
            key, self.cert = self_signed_cert(self.root)
            config["http"]["tls"] = {"certificate": str(self.cert), "key": str(key)}
        path = self.root / "config.yml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    def start(self, timeout: float = 15.0) -> RegistryServer:
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [BINARY, "serve", str(self.config_path)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"registry exited with {self._process.returncode}: {self.log_tail()}")
            try:
                if requests.get(
                    f"{self.url}/v2/", verify=str(self.cert) if self.tls else True, timeout=1
                ).status_code in (200, 401):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry on {self.host} not ready after {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.kill(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def requests(self, settle: float = 0.1) -> list[LoggedRequest]:
        """Every request the registry logged as completed, in order (the log is JSON lines).

        The registry logs a request just after answering it, so the log is read until it stops growing
        for ``settle`` seconds (bounded to 3 s).
        """
        previous, deadline = None, time.monotonic() + 3
        while True:
            found = self._parse_log()
            if found == previous or time.monotonic() > deadline:
                return found
            previous = found
            time.sleep(settle)

    def _parse_log(self) -> list[LoggedRequest]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if "http.request.method" in entry and "http.response.status" in entry:
                found.append(
                    LoggedRequest(
                        entry["http.request.method"],
                        entry["http.request.uri"],
                        int(entry["http.response.status"]),
                    )
                )
        return found

    def mark(self) -> int:
        """A position in the request log; ``requests_since(mark)`` gives what came after it."""
        return len(self.requests())

    def requests_since(self, mark: int) -> list[LoggedRequest]:
        return self.requests()[mark:]

    def corrupt_blob(self, digest: str, data: bytes) -> None:
        """Replace a stored blob's bytes behind the registry's back (what someone with its disk can do)."""
        hexdigest = digest.split(":", 1)[1]
        (self.root / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data").write_bytes(data)


def blob_uploads(logged: list[LoggedRequest]) -> list[LoggedRequest]:
    """Requests that carried blob bytes: PATCH or PUT on an upload session (mount POSTs excluded)."""
    return [r for r in logged if "/blobs/uploads/" in r.uri and r.method in ("PATCH", "PUT")]


def blob_mounts(logged: list[LoggedRequest]) -> list[LoggedRequest]:
    return [r for r in logged if r.method == "POST" and "mount=" in r.uri]
