"""``vci serve RUN_ID``: fetch the run (verified) into the cache, serve it in the foreground, drain on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import vci
from vci.config import load_settings
from vci.deploy.process import free_port

from .test_local import Doubler


def wait_ready(url: str, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server not ready in time")


def test_serve_run_id_in_the_foreground(tmp_path):
    settings = load_settings({"store": str(tmp_path / "store")}, cwd=tmp_path, environ={})
    (tmp_path / "factor.txt").write_text("6")
    run = vci.init("demo", settings=settings)
    run.log_artifact("factor", tmp_path / "factor.txt")
    run.log_model(Doubler, artifacts=["factor"])
    run.commit()
    port = free_port()
    env = {**os.environ, "VCI_STORE": settings.store, "VCI_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vci", "serve", run.id, "--port", str(port), "--backlog", "200"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        req = urllib.request.Request(url + "/predict", data=b"[7]", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == [42]
        with urllib.request.urlopen(url + "/metadata", timeout=10) as resp:
            meta = json.loads(resp.read())
        assert run.id in json.dumps(meta) and run.version in json.dumps(meta)
        assert any((tmp_path / "cache" / "models").iterdir())  # served from the verified local cache
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split()[:3] == ["LISTEN", "0", "200"]  # ss shows a listener's backlog as Send-Q
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
