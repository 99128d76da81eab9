"""Analysis from Prometheus: a real Prometheus scraping a real model server's /metrics, its query read in
a promotion's gate and at every canary step; a value past its bound, no data, or no Prometheus fails."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus import PrometheusServer  # noqa: E402
from registry import free_port  # noqa: E402
from vci.deploy import deploy, deployed_model, status  # noqa: E402
from vci.errors import DeployError  # noqa: E402
from vci.release.analysis import one_value  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.release.rollback import history  # noqa: E402

from .conftest import make_run, release_settings, stop_all  # noqa: E402

READY = 'vci_model_ready{job="staging"}'
PREDICTED = 'sum(vci_requests_total{job="staging",route="/predict"})'
CANARY = {"steps": [50, 100], "interval": 0.3, "min_requests": 3, "step_timeout": 30, "max_error_rate": 0.5}


def vector(*values):
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, v]} for v in values]},
    }


@pytest.mark.parametrize(
    "body, value, problem",
    [
        (vector("3"), 3.0, ""),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "0.25"]}}, 0.25, ""),
        (vector(), None, "no series matched"),
        (vector("1", "2"), None, "2 series, not one (aggregate them: sum(...))"),
        (vector("NaN"), None, "the value is NaN"),
        ({"status": "error", "error": "parse error"}, None, "the query failed: parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, None, "a matrix result"),
    ],
)
def test_one_value(body, value, problem):
    found, why = one_value(body)
    assert found == value and why.startswith(problem)


def with_analysis(tmp_path, analysis, **production):
    return release_settings(tmp_path, {"production": {"analysis": analysis, **production}})


@pytest.fixture()
def scraped_staging(settings, tmp_path):
    """Staging runs v1 and a real Prometheus scrapes its server's /metrics every second."""
    v1 = make_run(settings, tmp_path, 2)
    deploy(settings, v1.id, "staging")
    endpoint = status(settings, "staging").endpoint.removeprefix("http://")
    with PrometheusServer(tmp_path / "prometheus", {"staging": [endpoint]}) as prom:
        prom.wait_for(f"{READY} == 1")
        yield v1, prom


def test_the_gate_reads_prometheus_and_no_data_fails(scraped_staging, settings, tmp_path):
    v1, prom = scraped_staging
    client = deployed_model(settings, "staging")
    for _ in range(4):
        client.predict([1])
    prom.wait_for(f"{PREDICTED} >= 4")
    refusals = [
        ({"query": PREDICTED, "max": 2}, "> max 2"),
        ({"query": 'vci_model_ready{job="nothing"}', "min": 1}, "no data (no series matched)"),
        ({"query": "vci_model_ready", "min": 1, "prometheus": f"http://127.0.0.1:{free_port()}"}, "could not be read"),
        ({"query": "sum(", "max": 1}, "answered 400"),
    ]
    for analysis, fragment in refusals:
        failing = with_analysis(tmp_path, {"prometheus": prom.url, **analysis})
        with pytest.raises(DeployError, match="the analysis gate failed") as refused:
            promote(failing, "staging", "production", digest=v1.version)
        assert fragment in str(refused.value) and "'production' is untouched" in str(refused.value), refused.value
        assert status(failing, "production").state == "not-deployed"
    assert [r["outcome"] for r in history(settings, "production")["releases"]] == ["failed"] * len(refusals)

    passing = with_analysis(tmp_path, {"prometheus": prom.url, "query": READY, "min": 1})
    done = promote(passing, "staging", "production", digest=v1.version)
    assert done["outcome"] == "succeeded" and status(passing, "production").digest == v1.version
    assert done["gate"]["analysis"] == f"analysis '{READY}' = 1, min 1"
    assert history(passing, "production")["releases"][0]["gate"]["analysis"] == done["gate"]["analysis"]


def test_every_canary_step_reads_prometheus(scraped_staging, settings, tmp_path):
    v1, prom = scraped_staging
    deploy(settings, v1.id, "production")
    v2 = make_run(settings, tmp_path, 2, delay=0.001)  # another digest, answering the same
    deploy(settings, v2.id, "staging")  # Prometheus still scrapes the old port: the query has no data now
    broken = with_analysis(tmp_path, {"prometheus": prom.url, "query": READY, "min": 1}, canary=CANARY)
    try:
        prom.wait_for('up{job="staging"} == 0')
        rolled = promote(broken, "staging", "production", digest=v2.version, strategy="canary")
        assert rolled["outcome"] == "rolled-back" and "no data" in rolled["reason"], rolled["reason"]
        assert status(broken, "production").digest == v1.version
        [step] = rolled["canary"]
        assert step["weight"] == 50 and not step["passed"] and f"analysis '{READY}'" in step["reason"]

        fine = with_analysis(
            tmp_path, {"prometheus": prom.url, "query": 'sum(up{job="staging"})', "max": 0}, canary=CANARY
        )
        done = promote(fine, "staging", "production", digest=v2.version, strategy="canary")
        assert done["outcome"] == "succeeded" and status(fine, "production").digest == v2.version
        assert "analysis 'sum(up{job=\"staging\"})' = 0, max 0" in done["canary"][0]["reason"]
    finally:
        stop_all(broken)
