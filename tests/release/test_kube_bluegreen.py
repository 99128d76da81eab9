"""Blue-green on the Kubernetes API test server with real model-server pods: the candidate's Deployment beside
production's, the Service's selector switched in one write, the previous Deployment kept (scaled to zero)
so that a rollback is one switch back, and the next release settling the environment back to one
Deployment. wrk and users through the API server's service proxy (which routes by the Service's selector,
endpoint by endpoint) see no failed request through the switch, the switch back or the settling."""

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from vci.config import load_settings  # noqa: E402
from vci.deploy import deploy, status, target_for  # noqa: E402
from vci.deploy.kubeproxy import proxy_session  # noqa: E402
from vci.ledger import Ledger  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.release.rollback import rollback  # noqa: E402

from . import test_kube_release as release_tests  # noqa: E402
from .test_bluegreen import FAST_GATE, Users, Wrk  # noqa: E402

cluster = release_tests.cluster  # its API server (real model-server pods) and registry, one per module
stage = release_tests.stage
JSON = {"Content-Type": "application/json"}


class ProxiedUsers(Users):
    """Users of production through the API server's service proxy, one request after another, no retry."""

    def __init__(self, settings):
        super().__init__(settings)
        target = target_for(settings, "production")
        self.url, self.session = target.proxy_url() + "/predict", proxy_session(target.cluster.api_client.configuration)
        self.answers: list[tuple] = []

    def _send(self):
        while not self.stop.is_set():
            try:
                answer = self.session.post(self.url, data=b"[1]", headers=JSON, timeout=10)
                answer.raise_for_status()
                self.answers.append(tuple(answer.json()))
            except Exception as exc:  # noqa: BLE001 - counted: a live request must never fail
                self.errors.append(exc)

    def switches(self) -> list[tuple]:
        """The answers with repeats folded: [(2,), (3,)] is one switch, and no answer of the other side
        before it or after it."""
        return [a for i, a in enumerate(self.answers) if i == 0 or a != self.answers[i - 1]]


@pytest.fixture()
def settings(cluster, tmp_path, monkeypatch):
    kube, reg, base = cluster
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    kubeconfig = str(kube.kubeconfig(tmp_path / "kubeconfig"))
    common = {"target": "kubernetes", "kubeconfig": kubeconfig, "base_image": base}
    production = {
        **common,
        "namespace": "ml-prod",
        "repository": f"{reg.host}/ml/iris",
        "canary": FAST_GATE,
        "blue_green": {"keep": "10m", "scale_down": True},
        "prestop_delay": 2,
    }
    config = {
        "project": "iris",
        "store": str(tmp_path / "store"),
        "environments": {
            "staging": {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/iris-staging"},
            "production": production,
        },
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    yield load_settings(cwd=tmp_path, environ={})


def staged(settings, tmp_path, factor) -> str:
    """A run of ``factor`` on staging; its digest."""
    return stage(settings, tmp_path, factor)[1].rsplit("@", 1)[1]


def test_switch_switch_back_and_settling_under_load_fail_no_request(settings, tmp_path, cluster):
    kube = cluster[0]
    target = target_for(settings, "production")
    blue = staged(settings, tmp_path, 2)
    first = promote(settings, "staging", "production", strategy="direct", timeout=60)
    green = staged(settings, tmp_path, 3)
    proxy = target.proxy_url()
    with Wrk(proxy, tmp_path, token=kube.token) as wrk, ProxiedUsers(settings) as users:
        result = promote(settings, "staging", "production", strategy="blue-green", timeout=60)
    assert result["outcome"] == "succeeded", result
    assert wrk.requests > 50 and wrk.failed == 0, wrk.output
    print(f"switch: wrk {wrk.requests} requests, users {len(users.answers)}")
    assert users.errors == [] and users.switches() == [(2,), (3,)]  # blue until the switch, then green only
    live = status(settings, "production")
    assert (live.digest, live.deployment) == (green, "iris-production-green")
    assert live.kept["digest"] == blue and live.kept["replicas"] == 0  # scale_down: kept at zero
    service = target.cluster.read("Service", "iris-production", "ml-prod")
    assert service["spec"]["selector"]["vci.dev/track"] == "green"
    gates = Ledger.for_settings(settings).get("production", result["release_id"]).extra["blue_green"]
    assert gates["smoke"]["passed"] and gates["step"]["requests"] >= 5 and gates["kept"]["scaled_down"]

    with Wrk(proxy, tmp_path, token=kube.token) as wrk, ProxiedUsers(settings) as users:
        back = rollback(settings, "production")
    assert back["switched"] is True and wrk.failed == 0 and users.errors == [], wrk.output
    assert users.switches() == [(3,), (2,)]
    live = status(settings, "production")
    assert (live.digest, live.deployment, live.kept) == (blue, "iris-production", None)
    assert target.cluster.read("Deployment", "iris-production-green", "ml-prod") is None

    promote(settings, "staging", "production", strategy="blue-green", timeout=60)  # green again, kept blue
    with Wrk(proxy, tmp_path, token=kube.token) as wrk, ProxiedUsers(settings) as users:
        settled = deploy(settings, first["image"], "production", timeout=60)  # the next release settles first
    assert settled.status == "deployed" and wrk.failed == 0 and users.errors == [], wrk.output
    assert (users.answers[0], users.answers[-1]) == ((3,), (2,))  # green's, then the new release's
    live = status(settings, "production")
    assert (live.digest, live.deployment, live.kept) == (blue, "iris-production", None)
    service = target.cluster.read("Service", "iris-production", "ml-prod")
    assert "vci.dev/track" not in service["spec"]["selector"]  # every track again: a canary can run
    assert target.cluster.read("Deployment", "iris-production-green", "ml-prod") is None
