"""KServe's Python client (from PyPI, in a virtualenv of its own: scripts/test.sh, VCI_KSERVE_PYTHON) over
REST (JSON and binary tensors) and gRPC against a running server of a logged iris model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .v2fixtures import iris_classifier, iris_server

CLIENT = Path(__file__).with_name("kserve_client.py")


def kserve_python() -> str:
    python = os.environ.get("VCI_KSERVE_PYTHON") or ""
    if not os.access(python, os.X_OK):
        pytest.fail(
            f"KServe's client is not installed (VCI_KSERVE_PYTHON={python!r}): bash scripts/test.sh installs it"
        )
    return python


def test_kserve_client_over_rest_and_grpc(tmp_path):
    python = kserve_python()
    server, _ = iris_server(tmp_path)
    try:
        run = subprocess.run(
            [python, str(CLIENT), server.url, f"127.0.0.1:{server.grpc_port}", "iris"],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    classifier, _ = iris_classifier()
    expected = classifier.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tolist()
    assert seen["rest_ready"] == [True, True] and seen["rest_model_ready"] is True
    assert seen["rest_binary_False"] == ["kserve-False", expected]
    assert seen["rest_binary_True"] == ["kserve-True", expected]
    assert "no model 'roses'" in seen["rest_error"] and "404" in seen["rest_error"]
    assert seen["grpc_ready"] == [True, True, True]
    assert seen["grpc_infer"] == ["kserve-False", expected]
    assert seen["grpc_error"][0] == "NOT_FOUND" and "no model 'roses'" in seen["grpc_error"][1]
