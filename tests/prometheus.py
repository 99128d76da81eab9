"""A real Prometheus (Debian's 2.42) for tests: own config scraping the given targets every second.

    with PrometheusServer(tmp_path, {"staging": ["127.0.0.1:PORT"]}) as prom:
        prom.url                          # "http://127.0.0.1:PORT"
        prom.wait_for('up{job="staging"} == 1')

It listens on 127.0.0.1 only, keeps its data in ``root``, is waited for with a bounded poll of
``GET /-/ready``, and is stopped by its PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from registry import free_port

BINARY = "prometheus"


class PrometheusServer:
    def __init__(self, root: Path, jobs: dict[str, list[str]], interval: str = "1s"):
        self.root, self.port = Path(root), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scrape = [{"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()]
        self.config = {"global": {"scrape_interval": interval, "evaluation_interval": interval}}
        self.config["scrape_configs"] = scrape
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrometheusServer:
        binary = shutil.which(BINARY)
        assert binary, "prometheus is not installed: scripts/test.sh installs it (Debian package prometheus)"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(self.config))
        self.log = open(self.root / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise AssertionError("prometheus did not become ready in 30 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def query(self, promql: str) -> list:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 30) -> list:
        """The query's result once it has one (bounded: AssertionError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.query(promql)
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"{promql} gave no result in {timeout} s")
