"""Serving through a rollout: with the preStop delay vci renders, a rolling update and a canary's removal lose
no request sent through the Service, on the API test server with real model-server processes as pods.

The test server terminates pods as a cluster does (tests/fakes/kube/pods.py, processes.py): a deleted pod keeps
receiving traffic for the server's endpoint lag (1 s: routing learns of the removal late), its preStop sleep
runs, then SIGTERM, then SIGKILL after the grace period. Each pod is ``python -m vci.serve`` for the model its
image holds (found by the image digest in ``VCI_IMAGE_DIGEST``, as tests/release/test_kube_release.py does)."""

import threading
import time

import pytest
import requests

from tests.deploy.serving import built
from vci.deploy import deploy, target_for
from vci.deploy.kubeproxy import proxy_session


class Load:
    """Clients sending predictions through the Service (the API server's proxy) until stopped."""

    def __init__(self, target, clients: int = 3):
        self.url = target.proxy_url() + "/predict"
        self.config = target.cluster.api_client.configuration
        self.answers: list = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(clients)]

    def _send(self):
        session = proxy_session(self.config)
        while not self.stopping.is_set():
            try:
                reply = session.post(self.url, json=[1], timeout=15)
                if reply.status_code == 200:
                    self.answers.append(reply.json()[0])
                else:
                    self.failures.append(f"{reply.status_code} {reply.text[:120]}")
            except requests.RequestException as exc:
                self.failures.append(repr(exc)[:160])

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)


@pytest.mark.slow
def test_a_rollout_and_a_canary_removal_lose_no_request(serving_settings, tmp_path):
    settings = serving_settings  # replicas 2, preStop 2 s: pods of real model servers
    v1, v2, canary = (built(settings, tmp_path, f) for f in ("2", "3", "5"))
    deploy(settings, v1, "staging")
    target = target_for(settings, "staging")
    with Load(target) as load:
        time.sleep(1)
        deploy(settings, v2, "staging")  # two pods replaced one at a time, each old one deleted under load
        pods = target.cluster.core.list_namespaced_pod("ml-staging", label_selector="vci.dev/track=stable").items
        assert [p.spec.containers[0].image for p in pods] == [v2, v2], "done once no old pod is left to answer"
        handle = target.start_canary(canary, release_id="r-canary")
        time.sleep(1.5)  # the canary takes a third of the traffic
        handle.remove()
        time.sleep(3.5)  # past the endpoint lag and the canary pod's preStop delay
    assert not load.failures, (
        f"{len(load.failures)} of {len(load.failures) + len(load.answers)} failed: {load.failures[:3]}"
    )
    assert {2.0, 3.0, 5.0} <= set(load.answers), "traffic reached every version"
    assert load.answers[-20:] == [3.0] * 20, "in the end only the new stable version answers"
    target.undeploy()
