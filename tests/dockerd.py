"""A real Docker Engine for tests: its own dockerd with private roots and socket, host networking only.

    with DockerDaemon() as daemon:         # or the session fixture ``dockerd`` below
        daemon.host                          # "unix:///tmp/vci-dockerd-XXXX/docker.sock" (for DOCKER_HOST)
        with daemon.client() as client:      # a docker.DockerClient on it
        box = daemon.run("repo:tag", port)   # a container on the host network with VCI_PORT=port

How it runs (the recipe of /work/shared/REAL_COMPONENTS.md): ``dockerd`` (Debian's docker.io, installed
with apt-get when missing) with its own ``--data-root``, ``--exec-root``, ``--pidfile``, ``-H unix://...``
and a config file that turns networking off (``"bridge": "none", "iptables": false``), so it touches
neither the host's firewall nor /etc/docker nor /var/run/docker.sock. Containers use the host network
(``network_mode="host"``), each on its own port through VCI_PORT. The storage driver is overlay2 when
the kernel and the filesystem allow it, else vfs. dockerd starts its own containerd under the exec-root.
Start-up is a bounded wait for ``/_ping``; stop sends SIGTERM to dockerd's PID (then SIGKILL, and kills
its containerd by the PID it recorded), unmounts what is left under the root and deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DRIVERS = ("overlay2", "vfs")


def ensure_dockerd() -> str | None:
    """Install Debian's docker.io (without recommends) if ``dockerd`` is missing; what was done, or None."""
    if shutil.which("dockerd"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io"]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not shutil.which("dockerd"):
        raise RuntimeError(f"cannot install docker.io: {proc.stderr.strip()[-400:]}")
    return "installed docker.io with apt-get"


class DockerDaemon:
    """One private dockerd; ``driver`` is the storage driver it ended up with."""

    def __init__(self, root: str | Path | None = None):
        # a short path: unix socket paths (ours and containerd's under the exec-root) must stay < 108 bytes
        self.root = Path(root or tempfile.mkdtemp(prefix="vci-dockerd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log_path = self.root / "dockerd.log"
        self.driver: str | None = None
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> DockerDaemon:
        ensure_dockerd()
        failures = []
        for driver in DRIVERS:
            try:
                self._start(driver, timeout)
                self.driver = driver
                return self
            except RuntimeError as exc:
                failures.append(f"{driver}: {exc}")
                self._terminate()
        raise RuntimeError("dockerd did not start with any storage driver:\n" + "\n".join(failures))

    def _start(self, driver: str, timeout: float) -> None:
        data = self.root / f"data-{driver}"
        config = self.root / "daemon.json"
        config.write_text(
            json.dumps(
                {"bridge": "none", "iptables": False, "ip-masq": False, "storage-driver": driver, "log-level": "info"}
            )
        )
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [
                "dockerd",
                "--config-file",
                str(config),
                "--data-root",
                str(data),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "-H",
                self.host,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self._process.returncode}: {self.log_tail(8)}")
            if self._pings():
                return
            time.sleep(0.1)
        raise RuntimeError(f"dockerd not answering on {self.socket} after {timeout}s: {self.log_tail(8)}")

    def _pings(self) -> bool:
        import docker
        import requests

        try:
            with contextlib.closing(docker.DockerClient(base_url=self.host, timeout=2)) as client:
                return bool(client.ping())
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def client(self, timeout: float = 300):
        """``with daemon.client() as client:`` a docker.DockerClient on this daemon, closed afterwards."""
        import docker

        return contextlib.closing(docker.DockerClient(base_url=self.host, timeout=timeout))

    def run(self, image: str, port: int, env: dict[str, str] | None = None):
        """Start ``image`` detached on the host network with VCI_PORT=port, a read-only root and a /tmp tmpfs."""
        with self.client() as client:
            return client.containers.run(
                image,
                detach=True,
                network_mode="host",
                read_only=True,
                tmpfs={"/tmp": ""},
                environment={"VCI_PORT": str(port), **(env or {})},
            )

    def _terminate(self) -> None:
        """Stop dockerd by its PID (TERM, then KILL) and the containerd it started, by its recorded PID."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        for pidfile in (self.root / "exec").glob("containerd/*.pid"):
            _kill_if_alive(pidfile)

    def stop(self) -> None:
        self._terminate()
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> DockerDaemon:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_if_alive(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever dockerd left mounted below ``root`` (deepest first)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def dockerd():
    """One real dockerd for the whole test session."""
    with DockerDaemon() as daemon:
        yield daemon
