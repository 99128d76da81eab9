"""A real Prometheus scraping a real model server: drift series through /api/v1/query, and every panel of
the Grafana dashboard (``vci render --grafana``) answered with data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.prometheus import PrometheusServer
from tests.registry import free_port
from vci.deploy.dashboard import grafana_dashboard, panel_queries

from .conftest import REPO, ServerProcess, build_model_dir, http_call, post_json
from .models import BatchSumModel

EXAMPLES = {"inputs": [[[4.0, 2.0, 1.0, 0.1]], [[8.0, 4.0, 7.0, 2.5]]], "expected_outputs": [[7.1], [21.5]]}
VARIABLES = {"$release": ".*", "$track": ".*", "$__rate_interval": "30s"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A batching server (release rel-9) with a dead payload sink, after predictions of both kinds."""
    tmp = tmp_path_factory.mktemp("prom")
    build_model_dir(tmp / "model", BatchSumModel, examples=EXAMPLES)
    (tmp / "run").mkdir()
    env = {"VCI_RELEASE_ID": "rel-9", "VCI_PAYLOAD_SINK": f"http://127.0.0.1:{free_port()}/"}
    server = ServerProcess(tmp / "model", tmp / "run", extra_env=env, args=("--max-batch-size", "4"))
    server.wait_state()
    for row in ([5.0, 3.0, 1.0, 0.2], [9.5, 3.0, 1.0, 0.2], [1, 2, 3, 4]):  # the last sums to an int: a class
        assert post_json(server, "/predict", [row])[0] == 200
    assert http_call(server, "POST", "/predict", b"{not json")[0] == 400
    deadline = time.monotonic() + 10
    while b'reason="sink_failed"' not in http_call(server, "GET", "/metrics")[2]:
        assert time.monotonic() < deadline, "the dead sink never counted a drop"
        time.sleep(0.05)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prometheus(served, tmp_path_factory):
    """``prometheus`` scraping ``served`` every second, once it has three scrapes (rate() then has two
    points); yields its query function (instant vector results)."""
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), {"vci": [f"127.0.0.1:{served.port}"]}) as prom:
        prom.wait_for('count_over_time(vci_model_ready{job="vci"}[1m]) >= 3')
        yield prom.query


def test_prometheus_scrapes_drift_series_with_the_release_label(prometheus):
    result = prometheus('vci_feature_window_max{feature="0"}')
    assert len(result) == 1
    assert result[0]["metric"]["release"] == "rel-9" and result[0]["metric"]["track"] == "stable"
    assert float(result[0]["value"][1]) == 9.5
    beyond = prometheus(
        'vci_feature_value_bucket{feature="0",le="+Inf"} - ignoring(le) vci_feature_value_bucket{feature="0",le="8.0"}'
    )
    assert float(beyond[0]["value"][1]) == 1  # 9.5 is beyond every example the model was logged with
    classes = prometheus("vci_prediction_class_total")
    assert [(c["metric"]["class"], c["value"][1]) for c in classes] == [("10", "1")]


def test_every_dashboard_panel_names_exported_series_and_answers(served, prometheus):
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in http_call(served, "GET", "/metrics")[2].decode().splitlines()
        if line and not line.startswith("#")
    }
    queries = panel_queries(grafana_dashboard())
    assert {title for title, _ in queries} >= {
        "Request rate",
        "Error rate",
        "Latency percentiles",
        "Batch sizes",
        "Payload-log drops",
    }
    for title, expr in queries:
        names = set(re.findall(r"\bvci_\w+", expr))
        assert names and names <= exported, f"{title}: {sorted(names - exported)} not exported"
        for variable, value in VARIABLES.items():
            expr = expr.replace(variable, value)
        result = prometheus(expr)
        assert result, f"{title}: no data for {expr}"
        assert all(r["metric"].get("release") == "rel-9" for r in result if "release" in r["metric"]), title


def test_vci_render_grafana_prints_the_dashboard_without_a_vci_yaml(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vci", "render", "--grafana"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == grafana_dashboard()
    assert grafana_dashboard()["uid"] == "vci-model-server" and len(grafana_dashboard()["panels"]) == 8
