"""The peers: a real MLflow and a real BentoML (each in its own virtualenv: scripts/test.sh exports
VCI_MLFLOW_PYTHON and VCI_BENTOML_PYTHON) write the models once per session, both at once, and say what they
predict; the tests import those models with vci and serve them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PEERS = {"mlflow": "VCI_MLFLOW_PYTHON", "bentoml": "VCI_BENTOML_PYTHON"}


def peer_python(tool: str) -> str:
    python = os.environ.get(PEERS[tool]) or ""
    if not os.access(python, os.X_OK):
        pytest.fail(f"{tool} is not installed ({PEERS[tool]}={python!r}): bash scripts/test.sh installs it")
    return python


class Peer:
    """One peer's script, started when first asked for and read once."""

    def __init__(self, tool: str, out: Path):
        self.tool, self.out = tool, out
        out.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "BENTOML_HOME": str(out / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
            "DO_NOT_TRACK": "true",
        }
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no reports home, from either
        env.pop("PYTHONPATH", None)  # the peer runs its own packages only
        self.process = subprocess.Popen(
            [peer_python(tool), str(HERE / f"peer_{tool}.py"), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._result: dict | None = None

    def result(self) -> dict:
        if self._result is None:
            stdout, stderr = self.process.communicate(timeout=600)
            assert self.process.returncode == 0, f"{self.tool} peer failed:\n{stderr[-3000:]}"
            self._result = json.loads(stdout.strip().splitlines()[-1])
        return self._result


@pytest.fixture(scope="session")
def peers(tmp_path_factory):
    """Both peers, started together (MLflow's takes most of a minute; BentoML's runs beside it)."""
    root = tmp_path_factory.mktemp("peers")
    started = {tool: Peer(tool, root / tool) for tool in PEERS}
    yield started
    for peer in started.values():
        if peer.process.poll() is None:
            peer.process.kill()
            peer.process.wait()


@pytest.fixture()
def mlflow_models(peers):
    return peers["mlflow"].result(), peers["mlflow"].out


@pytest.fixture()
def bentoml_models(peers):
    return peers["bentoml"].result(), peers["bentoml"].out / "bentoml"


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project directory with a local store and cache (runs deploy to its local staging)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_STORE", str(tmp_path / "store"))
    return tmp_path


def pinned(manifest: dict, name: str) -> str | None:
    """The version the run pinned for ``name`` (None if not pinned)."""
    found = [line.split("==")[1] for line in manifest["requirements"] if line.split("==")[0].lower() == name]
    return found[0] if found else None


def assert_close(got, expected, tol: float = 1e-6) -> None:
    import numpy as np

    assert np.asarray(got).shape == np.asarray(expected).shape, (got, expected)
    assert np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), atol=tol), (got, expected)


def vci_import(*args: str) -> subprocess.CompletedProcess:
    """``vci import ARGS`` in a process of its own (this checkout's vci: PYTHONPATH is inherited)."""
    return subprocess.run([sys.executable, "-m", "vci", "import", *args], capture_output=True, text=True, timeout=120)
