"""Shadow releases on the Kubernetes API test server with real model-server pods: the candidate runs as its own
Deployment and Service at no live traffic, production's pods mirror to it through the ConfigMap they mount (no
restart), with the environment's token auth, and the gate sums each stable pod's counts read through the pod
proxy. Live users go through the API server's service proxy meanwhile and must never see the candidate.

The pods are ``ServePod`` processes (tests/deploy/serving.py) run by the test server's process backend, whose
kubelet fills configMap and secret volumes as a real one does, and whose cluster network (kube-proxy, DNS)
lets a pod reach a Service (tests/fakes/kube/network.py, podnet.py)."""

import base64
import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from tests.deploy.serving import MODEL_DIRS  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.deploy import deploy, status, target_for  # noqa: E402
from vci.deploy.manifests import render_deployment, render_service, render_shadow  # noqa: E402
from vci.ledger import Ledger  # noqa: E402
from vci.release.promote import promote  # noqa: E402

from .test_kube_release import cluster  # noqa: E402, F401 - its module-scoped cluster, with ServePod pods
from .test_shadow import Doubler, TenPercentOff, log  # noqa: E402

TOKEN = "shadow-test-token"
SHADOW = {"min_requests": 40, "duration": "60s", "max_disagreement": 0.02, "compare": "exact"}


@pytest.fixture()
def settings(cluster, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    kube, reg, base = cluster
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    monkeypatch.setenv("VCI_TOKEN", TOKEN)  # what production's users (and vci's own requests) present
    kubeconfig = str(kube.kubeconfig(tmp_path / "kubeconfig"))
    common = {"target": "kubernetes", "kubeconfig": kubeconfig, "base_image": base}
    production = {"namespace": "ml-prod", "repository": f"{reg.host}/ml/iris", "replicas": 2}
    config = {
        "project": "iris",
        "store": str(tmp_path / "store"),
        "environments": {
            "staging": {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/iris-staging"},
            "production": {**common, **production, "shadow": SHADOW, "auth": {"secret": "iris-tokens"}},
        },
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(cwd=tmp_path, environ={})
    core = target_for(settings, "production").cluster.core
    token = {"token": base64.b64encode(TOKEN.encode()).decode()}
    core.create_namespaced_secret("ml-prod", {"metadata": {"name": "iris-tokens"}, "data": token})
    yield settings
    for env in ("staging", "production"):
        target_for(settings, env).undeploy()
    core.delete_namespaced_secret("iris-tokens", "ml-prod")


def stage(settings, tmp_path, cls, name: str) -> str:
    """Log a run of ``cls``, deploy it to staging (package, push, apply, wait); return its image digest."""
    run = log(settings, tmp_path, cls, 2, name)
    image = target_for(settings, "staging").resolve_image(run.id)["image"]
    MODEL_DIRS[image.rsplit("@", 1)[1]] = str(run.model_dir())
    deploy(settings, image, "staging", timeout=60)
    return image.rsplit("@", 1)[1]


class Users:
    """Production's users: one number a request, 0..99 in turn, through the environment's Service (the API
    server's service proxy); every answer must be production's (twice the number), none may fail."""

    def __init__(self, settings):
        self.model = target_for(settings, "production").client(deadline=10.0)
        self.wrong, self.sent = [], 0
        self.stop, self.paused = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self):
        while not self.stop.is_set():
            if self.paused.is_set():  # the shadow waits for more traffic meanwhile
                time.sleep(0.05)
                continue
            n = self.sent % 100
            try:
                answer = self.model.predict([n])
            except Exception as exc:  # noqa: BLE001 - counted: a live request must never fail
                answer = exc
            if answer != [2 * n]:
                self.wrong.append((n, answer))
            self.sent += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def stable_pods(target) -> dict:
    """name -> (uid, restarts) of the stable pods."""
    pods = target.cluster.core.list_namespaced_pod(target.namespace, label_selector="vci.dev/track=stable").items
    return {p.metadata.name: (p.metadata.uid, p.status.container_statuses[0].restart_count) for p in pods}


def shadow_left(target) -> list[str]:
    """What of a shadow is still on the cluster."""
    kinds = ("Deployment", "Service", "NetworkPolicy", "ConfigMap")
    return [kind for kind in kinds if target.cluster.read(kind, "iris-production-shadow", target.namespace)]


def test_a_candidate_that_disagrees_is_refused_and_one_that_agrees_is_promoted(settings, tmp_path):
    target = target_for(settings, "production")
    live = stage(settings, tmp_path, Doubler, "live")
    promote(settings, "staging", "production", strategy="direct", timeout=60)
    before, pods = status(settings, "production"), stable_pods(target)
    assert len(pods) == 2

    stage(settings, tmp_path, TenPercentOff, "off")
    with Users(settings) as users:
        refused = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert refused["outcome"] == "rolled-back" and "above max_disagreement" in refused["reason"], refused
    comparison = refused["shadow"]
    assert comparison["compared"] >= 40 and 0 < comparison["disagreed"] < comparison["compared"]
    assert comparison["live_latency_ms"] > 0 and comparison["shadow_latency_ms"] > 0
    after = status(settings, "production")
    assert (after.digest, after.release_id) == (live, before.release_id)
    assert stable_pods(target) == pods  # the mirror went on and off without restarting production's pods
    assert shadow_left(target) == [] and after.shadow is None
    assert users.sent > 40 and users.wrong == []  # no user ever got the candidate's answer, nor an error

    same = stage(settings, tmp_path, Doubler, "same")  # another digest, the same answers: through the CLI
    config = yaml.safe_load((tmp_path / "vci.yaml").read_text())
    config["environments"]["production"]["shadow"].update(min_requests=150, fraction=0.25)  # long enough to watch
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    seen = []
    with Users(settings) as users:
        watcher = threading.Thread(target=lambda: seen.append(watch_status(settings, users, tmp_path)), daemon=True)
        watcher.start()
        promoted = vci_cli(tmp_path, "promote", "--digest", same, "--strategy", "shadow", "--timeout", "60")
        watcher.join(30)
    assert promoted.returncode == 0, promoted.stderr
    summary = promoted.stdout.splitlines()
    assert summary[0].startswith(f"succeeded: staging -> production {same} (shadow, release ") and users.wrong == []
    assert re.fullmatch(r"shadow: \d+ compared, 0 disagreed \(0\.0%\), .*; latency live [\d.]+ ms .*", summary[-1])
    assert status(settings, "production").digest == same and shadow_left(target) == []
    running = seen[0]  # `vci status --output json` while the shadow ran: its comparison so far
    assert "release_id" in running, running
    release_id = summary[0].rsplit("release ", 1)[1].rstrip(")")
    assert running["release_id"] == release_id and running["compared"] > 0 and running["disagreed"] == 0
    assert running["candidate"].endswith(same) and running["disagreement_rate"] == 0.0
    record = Ledger.for_settings(settings).get("production", release_id)
    assert record.strategy == "shadow" and record.extra["shadow"]["compared"] >= 150


def vci_cli(cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vci", *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def watch_status(settings, users, cwd, timeout: float = 60.0) -> dict:
    """``vci status --env production --output json`` once the shadow has compared something: the users pause
    meanwhile, so the shadow (short of its min_requests) is still running when the command reads it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shadow = status(settings, "production").shadow
        if shadow and shadow["compared"]:
            users.paused.set()
            try:
                shown = vci_cli(cwd, "status", "--env", "production", "--output", "json")
            finally:
                users.paused.clear()
            return json.loads(shown.stdout)["shadow"]
        time.sleep(0.2)
    return {}


def test_the_environments_service_never_selects_the_shadows_pods(settings):
    target = target_for(settings, "production")
    image = {"image": "reg.example/ml/iris@sha256:" + "a" * 64}
    service = render_service(target.spec(image, None))
    shadow = target.spec(image, "r1", track="shadow")
    deployment, own, policy = render_shadow(shadow)
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    assert not selects(service["spec"]["selector"])  # no live traffic
    assert selects(own["spec"]["selector"]) and own["metadata"]["name"] == "iris-production-shadow"
    assert selects(policy["spec"]["podSelector"]["matchLabels"])  # its pods take what the stable pods take
    stable_pods = render_deployment(target.spec(image, None))["spec"]["template"]["metadata"]["labels"]
    narrow = replace(shadow, network_policy={"from_namespaces": ["ingress-nginx"]})  # the namespace's pods not named
    peers = render_shadow(narrow)[2]["spec"]["ingress"][0]["from"]
    assert any(all(stable_pods.get(k) == v for k, v in (p.get("podSelector") or {}).get("matchLabels", {}).items())
               for p in peers if "podSelector" in p)  # the stable pods may still mirror to it  # fmt: skip
    assert "VCI_SHADOW_CONFIG" not in {
        e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_pods_deployed_without_the_mount_refuse_a_shadow_before_anything_starts(settings):
    from vci.errors import DeployError

    target = target_for(settings, "production")
    image = {"image": "reg.example/ml/iris@sha256:" + "b" * 64}
    old = render_deployment(target.spec(image, "r-old", replicas=0))  # as a vci before cluster shadows rendered it
    old["spec"]["template"]["spec"]["volumes"] = [
        v for v in old["spec"]["template"]["spec"]["volumes"] if "configMap" not in v
    ]
    target.cluster.apply(old)
    with pytest.raises(DeployError, match="without the shadow's ConfigMap mount") as refused:
        target.start_shadow(image["image"], release_id="r-new", fraction=0.5)
    assert "deploy 'production' once with this vci" in refused.value.hint and shadow_left(target) == []
