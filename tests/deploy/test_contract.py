"""The serving contract's check on images vci did not build: which route is missing, from what each answered."""

import pytest

from vci.deploy.contract import Answer, check_contract, problems
from vci.errors import DeployError


def answers(**status):
    paths = {"healthz": "/healthz", "readyz": "/readyz", "predict": "/predict", "v2": "/v2/health/ready"}
    return [Answer("POST" if key == "predict" else "GET", path, status.get(key, 404)) for key, path in paths.items()]


@pytest.mark.parametrize("predict", [200, 400, 401, 422, 500])
def test_a_predict_route_that_answers_anything_but_missing_keeps_the_contract(predict):
    assert problems(answers(healthz=200, readyz=200, predict=predict)) == []


def test_the_v2_routes_instead_of_predict_keep_the_contract():
    assert problems(answers(healthz=200, readyz=200, v2=200)) == []


@pytest.mark.parametrize("predict", [404, 405, 501, 503])
def test_no_predict_and_no_v2_is_named(predict):
    found = problems(answers(healthz=200, readyz=200, predict=predict))
    assert found == [f"no way to predict: POST /predict answered {predict} and GET /v2/health/ready 404"]


def test_each_missing_probe_route_is_named():
    found = problems(answers(readyz=500, predict=200))
    assert found == ["GET /healthz answered 404 (200 expected)", "GET /readyz answered 500 (200 expected)"]


class Routes:
    """A stand-in for requests.Session.request over a fixed routing table (method, path) -> status."""

    def __init__(self, table, down=()):
        self.table, self.down, self.asked = table, down, []

    def __call__(self, method, url, timeout, **body):
        path = url.removeprefix("http://svc")
        self.asked.append((method, path, body))
        if path in self.down:
            raise ConnectionError("refused")
        return type("Response", (), {"status_code": self.table.get((method, path), 404)})()


def test_check_contract_asks_every_route_and_raises_naming_what_is_missing():
    routes = Routes({("GET", "/healthz"): 200, ("GET", "/readyz"): 200}, down=("/v2/health/ready",))
    with pytest.raises(DeployError, match="reg/x@sha256:1 does not implement vci's serving contract") as refused:
        check_contract(routes, "http://svc", "reg/x@sha256:1")
    assert "POST /predict answered 404 and GET /v2/health/ready nothing (ConnectionError)" in str(refused.value)
    assert ("POST", "/predict", {"json": []}) in routes.asked
    assert refused.value.exit_code == 13
    check_contract(Routes({**routes.table, ("POST", "/predict"): 422}), "http://svc", "reg/x@sha256:1")
