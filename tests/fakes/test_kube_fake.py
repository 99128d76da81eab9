"""Tests of the fake Kubernetes API server through the official ``kubernetes`` client and ``kubectl``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: import the fake as ``fakes.kube``
from kubernetes import client, config, watch  # noqa: E402  (a test dependency: missing means failing)
from kubernetes.client.rest import ApiException  # noqa: E402

from fakes.kube import Forbid, start_kube_server  # noqa: E402


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} not reached in {timeout}s (last: {value!r})")


def deployment(name: str, image: str = "registry.example/model@sha256:" + "a" * 64, replicas: int = 2, **spec):
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "model", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
                    ]
                },
            },
            **spec,
        },
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kube = start_kube_server(tls=True, workdir=tmp_path_factory.mktemp("kube"))
    yield kube
    kube.stop()


@pytest.fixture(scope="module")
def kubeconfig(server, tmp_path_factory):
    return server.kubeconfig(tmp_path_factory.mktemp("kubeconfig") / "config", context="test")


@pytest.fixture(scope="module")
def api(kubeconfig):
    return config.new_client_from_config(str(kubeconfig), context="test")


@pytest.fixture
def namespace(api, request):
    digest = hashlib.sha256(request.node.name.encode()).hexdigest()[:8]  # parametrized tests: one namespace each
    name = request.node.name.replace("_", "-").lower()[:50].strip("-") + "-" + digest  # a DNS label, as checked
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def apps(api):
    return client.AppsV1Api(api)


def core(api):
    return client.CoreV1Api(api)


def status_of(api, name, ns) -> dict:
    return api.sanitize_for_serialization(apps(api).read_namespaced_deployment(name, ns))


def rolled_out(api, name, ns):
    d = status_of(api, name, ns)
    s, want = d.get("status") or {}, d["spec"]["replicas"]
    done = (
        s.get("observedGeneration") == d["metadata"]["generation"]
        and s.get("updatedReplicas", 0) == want
        and s.get("availableReplicas", 0) == want
        and s.get("replicas", 0) == want  # zeros are omitted
        and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )
    return d if done else None


def condition(obj: dict, kind: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def body_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# -- verbs, metadata, concurrency --------------------------------------------------------------------------
def test_create_get_list_and_metadata(api, namespace):
    created = apps(api).create_namespaced_deployment(namespace, deployment("web"))
    assert created.metadata.uid and created.metadata.generation == 1 and created.metadata.namespace == namespace
    assert created.spec.strategy.rolling_update.max_surge == 1 and created.spec.revision_history_limit == 10
    read = apps(api).read_namespaced_deployment("web", namespace)
    assert read.metadata.uid == created.metadata.uid
    apps(api).create_namespaced_deployment(namespace, deployment("other"))
    listed = apps(api).list_namespaced_deployment(namespace, label_selector="app in (web)")
    assert [d.metadata.name for d in listed.items] == ["web"]
    assert int(listed.metadata.resource_version) >= int(read.metadata.resource_version)
    named = apps(api).list_namespaced_deployment(namespace, field_selector="metadata.name=other")
    assert [d.metadata.name for d in named.items] == ["other"]
    with pytest.raises(ApiException) as missing:
        apps(api).read_namespaced_deployment("nope", namespace)
    assert missing.value.status == 404 and body_of(missing.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as twice:
        apps(api).create_namespaced_deployment(namespace, deployment("web"))
    assert twice.value.status == 409 and body_of(twice.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as no_ns:
        apps(api).create_namespaced_deployment("no-such-namespace", deployment("web"))
    assert no_ns.value.status == 404 and body_of(no_ns.value)["message"] == 'namespaces "no-such-namespace" not found'


def test_replace_with_stale_resource_version_is_a_conflict(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=0))
    first = wait_for(lambda: rolled_out(api, "web", namespace), what="rollout")  # the controller is done writing
    fresh = dict(first, spec=dict(first["spec"], replicas=1))
    updated = apps(api).replace_namespaced_deployment("web", namespace, fresh)
    assert updated.metadata.generation == 2 and updated.spec.replicas == 1
    stale = dict(first, spec=dict(first["spec"], replicas=4))  # still carries the first resourceVersion
    with pytest.raises(ApiException) as conflict:
        apps(api).replace_namespaced_deployment("web", namespace, stale)
    body = body_of(conflict.value)
    assert conflict.value.status == 409 and body["reason"] == "Conflict" and body["kind"] == "Status"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    unconditional = dict(stale, metadata={k: v for k, v in first["metadata"].items() if k != "resourceVersion"})
    assert apps(api).replace_namespaced_deployment("web", namespace, unconditional).spec.replicas == 4
    labelled = wait_for(lambda: rolled_out(api, "web", namespace), what="second rollout")
    labelled["metadata"]["labels"]["extra"] = "yes"
    after = apps(api).replace_namespaced_deployment("web", namespace, labelled)
    assert after.metadata.generation == 3, "metadata-only changes do not bump generation"


def test_status_is_written_only_through_the_status_subresource(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=0))
    live = wait_for(lambda: rolled_out(api, "web", namespace), what="observed")
    live["status"]["replicas"] = 7
    assert (apps(api).replace_namespaced_deployment("web", namespace, live).status.replicas or 0) == 0
    live = status_of(api, "web", namespace)
    live["status"]["replicas"] = 7
    written = apps(api).replace_namespaced_deployment_status("web", namespace, live)
    assert written.status.replicas == 7 and written.metadata.generation == live["metadata"]["generation"]


def test_watch_streams_added_and_modified_from_a_resource_version(api, namespace):
    start = apps(api).list_namespaced_deployment(namespace).metadata.resource_version
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=0))
    apps(api).patch_namespaced_deployment("web", namespace, {"metadata": {"labels": {"tier": "gold"}}})
    seen = []
    for event in watch.Watch().stream(
        apps(api).list_namespaced_deployment, namespace, resource_version=start, timeout_seconds=2
    ):
        seen.append((event["type"], event["object"].metadata.labels.get("tier")))
        if ("MODIFIED", "gold") in seen:
            break
    assert seen[0] == ("ADDED", None) and ("MODIFIED", "gold") in seen


def test_watch_from_a_compacted_resource_version_gets_410(tmp_path):
    kube = start_kube_server(history=5, workdir=tmp_path)
    try:
        api = config.new_client_from_config(str(kube.kubeconfig(tmp_path / "kc")), context="test")
        for n in range(10):
            core(api).create_namespaced_config_map("default", {"metadata": {"name": f"c{n}"}})
        with pytest.raises(ApiException) as gone:
            for _ in watch.Watch().stream(
                core(api).list_namespaced_config_map, "default", resource_version="2", timeout_seconds=2
            ):
                pass
        assert gone.value.status == 410
    finally:
        kube.stop()


# -- controllers -----------------------------------------------------------------------------------------
def replicasets(api, ns) -> list[dict]:
    return [api.sanitize_for_serialization(r) for r in apps(api).list_namespaced_replica_set(ns).items]


def test_a_deployment_rolls_out_and_a_new_template_gets_a_new_replicaset(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=3))
    done = wait_for(lambda: rolled_out(api, "web", namespace), what="first rollout")
    assert done["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert condition(done, "Available")["status"] == "True"
    [first] = replicasets(api, namespace)
    assert first["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]
    pods = core(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3 and all(p.metadata.owner_references[0].name == first["metadata"]["name"] for p in pods)
    assert all(p.status.phase == "Running" and p.status.pod_ip == "127.0.0.1" for p in pods)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "model", "image": "registry.example/model:v2"}]}}}}
    patched = apps(api).patch_namespaced_deployment("web", namespace, patch)  # strategic merge: by name
    assert patched.metadata.generation == 2 and patched.spec.template.spec.containers[0].ports[0].name == "http"
    done = wait_for(lambda: rolled_out(api, "web", namespace), what="second rollout")
    assert done["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    by_revision = {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r for r in replicasets(api, namespace)
    }
    assert set(by_revision) == {"1", "2"} and by_revision["1"]["spec"]["replicas"] == 0
    assert by_revision["2"]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/model:v2"
    pods = core(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert {p.spec.containers[0].image for p in pods if not p.metadata.deletion_timestamp} == {
        "registry.example/model:v2"
    }  # old pods may still be terminating, as on a real cluster
    events = core(api).list_namespaced_event(namespace, field_selector="involvedObject.name=web").items
    assert any(e.reason == "ScalingReplicaSet" and "Scaled down" in e.message for e in events)


def test_a_broken_image_never_becomes_available_and_exceeds_the_progress_deadline(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("good", replicas=1))
    wait_for(lambda: rolled_out(api, "good", namespace), what="good rollout")
    broken = deployment("good", image="registry.example/broken:1", replicas=1, progressDeadlineSeconds=2)
    live = status_of(api, "good", namespace)
    apps(api).replace_namespaced_deployment("good", namespace, dict(broken, metadata=live["metadata"]))

    def exceeded():
        d = status_of(api, "good", namespace)
        return d if condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded" else None

    d = wait_for(exceeded, timeout=8, what="ProgressDeadlineExceeded")
    assert condition(d, "Progressing")["status"] == "False"
    assert d["status"].get("updatedReplicas") == 1 and d["status"].get("availableReplicas") == 1  # the old pod
    assert d["status"].get("unavailableReplicas") == 1
    pods = core(api).list_namespaced_pod(namespace).items
    bad = [p for p in pods if "broken" in p.spec.containers[0].image]
    assert len(bad) == 1 and not bad[0].status.container_statuses[0].ready
    status = bad[0].status.container_statuses[0]
    assert status.state.waiting.reason == "CrashLoopBackOff" and status.restart_count >= 1
    assert status.last_state.terminated.exit_code == 1
    events = core(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={bad[0].metadata.name}")
    assert any(e.reason == "BackOff" and e.type == "Warning" for e in events.items)
    assert "crashed" in core(api).read_namespaced_pod_log(bad[0].metadata.name, namespace, tail_lines=2)


def test_delete_cascades_in_the_background_and_in_the_foreground(api, namespace):
    for name in ("bg", "fg"):
        apps(api).create_namespaced_deployment(namespace, deployment(name, replicas=1))
        wait_for(lambda name=name: rolled_out(api, name, namespace), what=f"{name} rollout")
    apps(api).delete_namespaced_deployment("bg", namespace)

    def gone(app: str) -> bool:
        return not core(api).list_namespaced_pod(namespace, label_selector=f"app={app}").items

    wait_for(
        lambda: gone("bg") and not [r for r in replicasets(api, namespace) if r["metadata"]["name"].startswith("bg-")],
        what="background cascade",
    )
    apps(api).delete_namespaced_deployment("fg", namespace, propagation_policy="Foreground")
    lingering = apps(api).read_namespaced_deployment("fg", namespace)  # kept until its dependents are gone
    assert lingering.metadata.deletion_timestamp and "foregroundDeletion" in lingering.metadata.finalizers
    wait_for(
        lambda: gone("fg") and not apps(api).list_namespaced_deployment(namespace).items, what="foreground cascade"
    )


# -- refusals --------------------------------------------------------------------------------------------
def test_requests_without_a_valid_token_are_unauthorized(server, api):
    configuration = client.Configuration()
    configuration.host, configuration.ssl_ca_cert = server.url, str(server.ca_file)
    configuration.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(ApiException) as wrong:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespace()
    assert wrong.value.status == 401 and body_of(wrong.value)["reason"] == "Unauthorized"
    configuration.api_key = {}
    with pytest.raises(ApiException) as none:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespace()
    assert none.value.status == 401


def test_forbid_rules_answer_403_like_rbac(server, api, namespace):
    rule = Forbid(verb="delete", resource="deployments", namespace=namespace)
    server.forbid.append(rule)
    try:
        apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=0))
        with pytest.raises(ApiException) as denied:
            apps(api).delete_namespaced_deployment("web", namespace)
        body = body_of(denied.value)
        assert denied.value.status == 403 and body["reason"] == "Forbidden"
        assert body["message"] == (
            f'deployments.apps "web" is forbidden: User "vci-tester" cannot delete resource '
            f'"deployments" in API group "apps" in the namespace "{namespace}"'
        )
        assert apps(api).read_namespaced_deployment("web", namespace).metadata.name == "web"
    finally:
        server.forbid.remove(rule)
    apps(api).delete_namespaced_deployment("web", namespace)


def test_invalid_objects_are_refused_as_the_real_server_does(api, namespace):
    bad_quantity = deployment("web")
    bad_quantity["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}
    with pytest.raises(ApiException) as decoding:
        apps(api).create_namespaced_deployment(namespace, bad_quantity)
    assert (
        decoding.value.status == 400
        and "quantities must match the regular expression" in body_of(decoding.value)["message"]
    )  # a decoding error on the real server: 400 BadRequest, not 422
    over = deployment("web")
    over["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    cases = [
        (deployment("Bad_Name"), "metadata.name"),
        (over, "resources.requests"),
        (
            dict(deployment("web"), spec=dict(deployment("web")["spec"], selector={"matchLabels": {"a": "b"}})),
            "`selector` does not match template `labels`",
        ),
    ]
    for obj, needle in cases:
        with pytest.raises(ApiException) as invalid:
            apps(api).create_namespaced_deployment(namespace, obj)
        body = body_of(invalid.value)
        assert invalid.value.status == 422 and body["reason"] == "Invalid" and needle in body["message"], body
    canonical = deployment("web")
    canonical["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "0.5", "memory": "2048Mi"}
    }
    created = apps(api).create_namespaced_deployment(namespace, canonical)
    assert created.spec.template.spec.containers[0].resources.requests == {"cpu": "500m", "memory": "2Gi"}
    with pytest.raises(ApiException) as bad_ns:
        core(api).create_namespace({"metadata": {"name": "Not.A.Label"}})
    assert bad_ns.value.status == 422


# -- process pods and the service proxy ------------------------------------------------------------------
POD_SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def reply(self):
        if self.path == "/crash":
            os._exit(3)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        data = json.dumps({"pod": os.environ["POD"], "method": self.command, "path": self.path, "body": body,
                           "request_id": self.headers.get("X-Request-Id"),
                           "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = reply

    def log_message(self, *args):
        pass

if os.environ.get("IGNORE_SIGTERM"):
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("serving on", os.environ["VCI_PORT"], flush=True)
HTTPServer(("127.0.0.1", int(os.environ["VCI_PORT"])), Handler).serve_forever()
"""


class ProcessHandle:
    """What the runc runner returns, played by a local Python process."""

    def __init__(self, script: Path, port: int, log: Path, name: str, env: dict | None = None):
        import os

        self.log, self.port = log, port
        self.terminated_at = self.killed_at = None
        env = {**os.environ, **(env or {}), "VCI_PORT": str(port), "POD": name}
        self.process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )

    def terminate(self):
        self.terminated_at = time.monotonic()
        self.process.terminate()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.killed_at = time.monotonic()
                self.process.kill()
                self.process.wait(timeout=5)

    def alive(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        return self.log.read_text()

    @property
    def exit_code(self):
        return self.process.poll()


@pytest.fixture
def process_server(tmp_path):
    script = tmp_path / "pod_server.py"
    script.write_text(POD_SERVER)
    started = []

    def runner(pod_spec: dict, port: int) -> ProcessHandle:
        env = {e["name"]: e["value"] for e in pod_spec["containers"][0].get("env") or [] if "value" in e}
        handle = ProcessHandle(script, port, tmp_path / f"log-{port}-{len(started)}", f"pod-{port}", env)
        started.append(handle)
        return handle

    kube = start_kube_server(backend="process", runner=runner, workdir=tmp_path)
    kube.started = started
    yield kube
    kube.stop()
    assert not any(h.alive() for h in started), "stopping the server stops every pod process"


def process_deployment(replicas: int) -> dict:
    obj = deployment("model", replicas=replicas)
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    startup = dict(probe, failureThreshold=60)  # as vci renders it: slow starts do not count against liveness
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container.update(readinessProbe=probe, livenessProbe=dict(probe), startupProbe=startup)
    return obj


def test_process_pods_are_probed_proxied_round_robin_and_restarted(process_server, tmp_path):
    import requests

    api = config.new_client_from_config(str(process_server.kubeconfig(tmp_path / "kc")), context="test")
    apps(api).create_namespaced_deployment("default", process_deployment(2))
    core(api).create_namespaced_service(
        "default",
        {
            "metadata": {"name": "model"},
            "spec": {"selector": {"app": "model"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    wait_for(lambda: rolled_out(api, "model", "default"), what="process rollout")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {process_server.token}"
    url = f"{process_server.url}/api/v1/namespaces/default/services/http:model:http/proxy/predict?x=1"
    answers = [
        session.post(
            url,
            data=b'{"inputs": [1]}',
            headers={"X-Request-Id": f"r{n}", "Content-Type": "application/json"},
        ).json()
        for n in range(4)
    ]
    assert {a["method"] for a in answers} == {"POST"} and [a["request_id"] for a in answers] == [
        "r0",
        "r1",
        "r2",
        "r3",
    ]
    assert answers[0]["path"] == "/predict?x=1" and answers[0]["body"] == '{"inputs": [1]}'
    assert answers[0]["auth"] is None, "the caller's token is not forwarded to the pod"
    assert len({a["pod"] for a in answers}) == 2, "round robin over both ready pods"
    assert requests.get(url).status_code == 401, "the proxy needs the token too"
    pod = core(api).list_namespaced_pod("default", label_selector="app=model").items[0]
    port = pod.metadata.annotations["fake.kube.vci.dev/host-port"]
    assert "serving on " + port in core(api).read_namespaced_pod_log(pod.metadata.name, "default")
    pod_url = f"{process_server.url}/api/v1/namespaces/default/pods/{pod.metadata.name}:8080/proxy/crash"
    with pytest.raises(requests.RequestException):
        session.get(pod_url, timeout=5).raise_for_status()

    def restarted():
        fresh = core(api).read_namespaced_pod(pod.metadata.name, "default").status
        statuses = fresh.container_statuses or []
        return statuses and statuses[0].restart_count >= 1 and statuses[0].ready and statuses[0]

    status = wait_for(restarted, what="restart after the crash")
    assert status.last_state.terminated.exit_code == 3
    core(api).delete_namespaced_pod(pod.metadata.name, "default")
    mine = [h for h in process_server.started if h.port == int(port)]
    assert len(mine) == 2, "the crashed process was started again on the same port"
    wait_for(lambda: not any(h.alive() for h in mine), what="the deleted pod's process stops")


def test_a_service_without_ready_pods_has_no_endpoints(api, namespace, server):
    import requests

    core(api).create_namespaced_service(
        namespace, {"metadata": {"name": "empty"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}
    )
    reply = requests.get(
        f"{server.url}/api/v1/namespaces/{namespace}/services/empty/proxy/x",
        headers={"Authorization": f"Bearer {server.token}"},
        verify=str(server.ca_file),
    )
    assert reply.status_code == 503 and reply.json()["message"] == 'no endpoints available for service "empty"'


# -- server-side apply, kubectl, and vci's own cluster access -----------------------------------------------
def test_server_side_apply_creates_updates_and_drops_fields_it_no_longer_applies(api, namespace):
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"a": "1", "b": "2"},
    }
    with pytest.raises(ApiException) as no_manager:
        core(api).patch_namespaced_config_map(
            "settings", namespace, config_map, _content_type="application/apply-patch+yaml"
        )
    assert no_manager.value.status == 400
    core(api).patch_namespaced_config_map(
        "settings", namespace, config_map, field_manager="vci", _content_type="application/apply-patch+yaml"
    )
    again = dict(config_map, data={"a": "10"})
    applied = core(api).patch_namespaced_config_map(
        "settings", namespace, again, field_manager="vci", _content_type="application/apply-patch+yaml"
    )
    assert applied.data == {"a": "10"}
    assert [(m.manager, m.operation) for m in applied.metadata.managed_fields] == [("vci", "Apply")]
    rival = dict(config_map, data={"a": "20"})
    with pytest.raises(ApiException) as conflict:
        core(api).patch_namespaced_config_map(
            "settings", namespace, rival, field_manager="other", _content_type="application/apply-patch+yaml"
        )
    assert conflict.value.status == 409 and 'conflict with "vci"' in body_of(conflict.value)["message"]
    forced = core(api).patch_namespaced_config_map(
        "settings", namespace, rival, field_manager="other", force=True, _content_type="application/apply-patch+yaml"
    )
    assert forced.data == {"a": "20"}


def test_update_writers_own_what_they_change_and_an_apply_conflicts_with_them(api, namespace):
    applied = dict(deployment("web"), metadata={"name": "web", "labels": {"app": "web"}})
    apply = {"field_manager": "vci", "_content_type": "application/apply-patch+yaml"}
    apps(api).patch_namespaced_deployment("web", namespace, applied, **apply)
    for _ in range(5):  # another tool, by PUT: read, change, replace (again when the controller wrote between)
        live = apps(api).read_namespaced_deployment("web", namespace)
        live.metadata.annotations = {**(live.metadata.annotations or {}), "mesh.example/inject": "true"}
        try:
            apps(api).replace_namespaced_deployment("web", namespace, live, field_manager="platform")
            break
        except ApiException as exc:
            assert exc.status == 409  # the deployment controller's revision annotation came first
    apps(api).patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 5}})
    managers = {
        (m.manager, m.operation, m.subresource): m
        for m in apps(api).read_namespaced_deployment("web", namespace).metadata.managed_fields
    }
    assert set(managers) == {
        ("vci", "Apply", None),
        ("platform", "Update", None),
        ("OpenAPI-Generator", "Update", "scale"),
    }  # the User-Agent's prefix
    unscaled = dict(applied, spec={k: v for k, v in applied["spec"].items() if k != "replicas"})
    again = apps(api).patch_namespaced_deployment("web", namespace, unscaled, **apply)
    theirs = {k: v for k, v in again.metadata.annotations.items() if not k.startswith("deployment.kubernetes.io/")}
    assert theirs == {"mesh.example/inject": "true"}  # not vci's: kept (the controller's revision aside)
    assert again.spec.replicas == 5  # no longer vci's either (the scaler took it): not dropped
    with pytest.raises(ApiException) as conflict:  # replicas moved to the scaler; vci still says 2
        apps(api).patch_namespaced_deployment("web", namespace, deployment("web", replicas=3), **apply)
    assert conflict.value.status == 409
    assert 'conflict with "OpenAPI-Generator"' in body_of(conflict.value)["message"]
    version = again.metadata.resource_version
    same = dict(applied, spec=dict(applied["spec"], replicas=5))
    assert (
        apps(api).patch_namespaced_deployment("web", namespace, same, **apply).metadata.resource_version != version
    )  # vci now shares replicas: a change of its field set
    for _ in range(5):  # a no-op apply writes nothing (again when the deployment controller wrote between)
        before = apps(api).read_namespaced_deployment("web", namespace).metadata.resource_version
        if apps(api).patch_namespaced_deployment("web", namespace, same, **apply).metadata.resource_version == before:
            break
    else:
        raise AssertionError("every no-op apply changed the resource version")


def test_an_apply_removes_the_list_items_it_no_longer_applies_and_keeps_others(api, namespace):
    apply = dict(field_manager="vci", _content_type="application/apply-patch+yaml")
    web = deployment("lists")
    container = web["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    apps(api).patch_namespaced_deployment("lists", namespace, web, **apply)
    live = apps(api).read_namespaced_deployment("lists", namespace)  # a mesh adds its own variable
    live.spec.template.spec.containers[0].env.append(client.V1EnvVar(name="MESH", value="on"))
    apps(api).replace_namespaced_deployment("lists", namespace, live, field_manager="mesh")
    container["env"] = [{"name": "A", "value": "1"}]  # vci stops setting B (forced: here a whole list is one
    after = apps(api).patch_namespaced_deployment("lists", namespace, web, force=True, **apply)  # field)
    assert [e.name for e in after.spec.template.spec.containers[0].env] == ["A", "MESH"]


def kubectl(kubeconfig, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: model
        image: registry.example/model:v1
        ports: [{{name: http, containerPort: 8080}}]
"""


def test_kubectl_applies_and_gets_through_the_kubeconfig(api, kubeconfig, namespace, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST.format(namespace=namespace, replicas=1))
    created = kubectl(kubeconfig, "apply", "--validate=false", "-f", str(manifest))
    assert created.returncode == 0 and "deployment.apps/web created" in created.stdout, created.stderr
    manifest.write_text(MANIFEST.format(namespace=namespace, replicas=2))
    changed = kubectl(kubeconfig, "apply", "--validate=false", "-f", str(manifest))  # a strategic merge patch
    assert changed.returncode == 0 and "deployment.apps/web configured" in changed.stdout, changed.stderr
    assert apps(api).read_namespaced_deployment("web", namespace).spec.replicas == 2
    wait_for(lambda: rolled_out(api, "web", namespace), what="kubectl rollout")
    listed = kubectl(kubeconfig, "get", "deployments", "-n", namespace, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)["items"]
    assert item["metadata"]["name"] == "web" and item["status"]["availableReplicas"] == 2
    table = kubectl(kubeconfig, "get", "deployments", "-n", namespace)  # server-side printing (Table)
    row = table.stdout.split("\n")[1].split()
    assert table.returncode == 0 and row[:4] == ["web", "2/2", "2", "2"], table
    status = kubectl(kubeconfig, "rollout", "status", "deployment/web", "-n", namespace, "--timeout=20s")
    assert status.returncode == 0 and "successfully rolled out" in status.stdout, status.stderr
    forbidden = kubectl(kubeconfig, "get", "pods", "-n", namespace, "--token", "wrong")
    assert forbidden.returncode != 0 and "Unauthorized" in forbidden.stderr


def test_vci_cluster_access_applies_idempotently(api, namespace):
    from vci.deploy.kubeapi import Cluster

    cluster = Cluster(api)
    desired = dict(
        deployment("web", replicas=1), metadata={"name": "web", "namespace": namespace, "labels": {"app": "web"}}
    )
    desired["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert cluster.apply(desired) == "created"
    wait_for(lambda: rolled_out(api, "web", namespace), what="rollout")
    assert cluster.apply(desired) == "unchanged", "server defaults and canonical quantities compare equal"
    desired["spec"]["replicas"] = 2
    assert cluster.apply(desired) == "updated"


def test_vci_sees_quantities_as_the_server_canonicalises_them(api, namespace):
    from vci.deploy.kubeapi import Cluster

    cluster = Cluster(api)
    desired = dict(deployment("q", replicas=1), metadata={"name": "q", "namespace": namespace})
    container = desired["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "0.5", "memory": "2048Mi"}}
    assert cluster.apply(desired) == "created"
    live = cluster.read("Deployment", "q", namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "2Gi"}
    assert cluster.apply(desired) == "unchanged"
    container["resources"]["limits"]["cpu"] = "0.6"
    assert cluster.apply(desired) == "updated"


def test_a_write_beside_a_patch_waits_for_it_and_is_no_conflict(server, api, namespace, monkeypatch):
    """The API server's GuaranteedUpdate: a patch reads and writes as one step, so a controller writing at the
    same time never turns it into a 409; only a patch that names a stale resourceVersion itself gets one."""
    apps(api).create_namespaced_deployment(namespace, deployment("busy", replicas=0))
    store, writes = server.store, {"left": 0}

    def controller_writes_after(read):
        def reading(resource, ns, name, *args, **kwargs):
            found = read(resource, ns, name, *args, **kwargs)
            if name == "busy" and writes["left"] > 0:  # a controller (another thread) writes just after this read
                writes["left"] -= 1
                note = {"n": str(writes["left"])}
                change = lambda o: o["metadata"].setdefault("annotations", {}).update(note)  # noqa: E731
                controller = threading.Thread(target=store.mutate, args=(resource, ns, name, change))
                controller.start()
                controller.join(timeout=1.0)  # done at once unless the patch holds the store until it has written
            return found

        return reading

    monkeypatch.setattr(store, "get", controller_writes_after(store.get))
    monkeypatch.setattr(store, "find", controller_writes_after(store.find))
    writes["left"] = 1
    merged = apps(api).patch_namespaced_deployment("busy", namespace, {"metadata": {"labels": {"tier": "gold"}}})
    assert merged.metadata.labels["tier"] == "gold" and writes["left"] == 0
    wait_for(lambda: apps(api).read_namespaced_deployment("busy", namespace).metadata.annotations.get("n") == "0")
    applied = dict(deployment("busy", replicas=0), metadata={"name": "busy", "labels": {"tier": "applied"}})
    writes["left"] = 1
    apply = {"field_manager": "vci", "_content_type": "application/apply-patch+yaml", "force": True}
    assert (
        apps(api).patch_namespaced_deployment("busy", namespace, applied, **apply).metadata.labels["tier"] == "applied"
    )
    stale = merged.metadata.resource_version
    writes["left"] = 1
    with pytest.raises(ApiException) as refused:
        apps(api).patch_namespaced_deployment(
            "busy", namespace, {"metadata": {"resourceVersion": stale, "labels": {"x": "1"}}}
        )
    assert refused.value.status == 409


def test_vci_compares_its_dry_run_with_the_object_it_ran_on_not_an_older_read(api, namespace):
    from vci.deploy.kubeapi import Cluster

    cluster = Cluster(api)
    desired = dict(deployment("r", replicas=1), metadata={"name": "r", "namespace": namespace})
    assert cluster.apply(desired) == "created"
    stale = cluster.read("Deployment", "r", namespace)
    note = {"metadata": {"annotations": {"ops.example/owner": "controller"}}}  # a controller writes after vci read
    apps(api).patch_namespaced_deployment("r", namespace, note)
    assert cluster.apply(desired, live=stale) == "unchanged"
    container = desired["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "MODE", "value": "new"}]
    assert cluster.apply(desired, live=stale) == "updated"


def test_vci_rendered_objects_apply_once_then_stay_unchanged(api, namespace):
    from vci.deploy.kubeapi import Cluster
    from vci.deploy.manifests import DeploySpec, render

    spec = DeploySpec(
        name="iris",
        environment="prod",
        namespace=namespace,
        image="r.example/iris@sha256:" + "b" * 64,
        replicas=2,
        resources={"cpu": "500m", "memory": "512Mi"},
        run_id="run-1",
        autoscaling={"cpu": 70, "min_replicas": 2, "max_replicas": 5},
    )
    cluster = Cluster(api)
    objects = render(spec)
    assert [o["kind"] for o in objects][-1] == "NetworkPolicy"
    assert [cluster.apply(o) for o in objects] == ["created"] * 5
    wait_for(lambda: rolled_out(api, "iris-prod", namespace), what="rollout")
    assert [cluster.apply(o) for o in objects] == ["unchanged"] * 5  # what vci renders is what the server keeps


# -- NetworkPolicy (networking.k8s.io/v1) -----------------------------------------------------------------
def network_policy(name: str = "web", **spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


def networking(api):
    return client.NetworkingV1Api(api)


def test_a_network_policy_is_defaulted_as_the_real_server_does(api, namespace, kubeconfig):
    created = networking(api).create_namespaced_network_policy(
        namespace, network_policy(ingress=[{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}])
    )
    assert created.metadata.generation == 1
    assert created.spec.pod_selector.to_dict() == {"match_labels": None, "match_expressions": None}  # {}
    assert created.spec.policy_types == ["Ingress"] and created.spec.ingress[0].ports[0].protocol == "TCP"
    egress = networking(api).create_namespaced_network_policy(
        namespace, network_policy("out", podSelector={"matchLabels": {"app": "web"}}, egress=[{}])
    )
    assert egress.spec.policy_types == ["Ingress", "Egress"]
    labels = core(api).read_namespace(namespace).metadata.labels
    assert labels["kubernetes.io/metadata.name"] == namespace  # what a namespaceSelector selects by name
    table = kubectl(kubeconfig, "get", "networkpolicies", "-n", namespace)
    assert table.returncode == 0 and table.stdout.split("\n")[2].split()[:2] == ["web", "<none>"], table
    assert "app=web" in table.stdout


@pytest.mark.parametrize(
    "spec, field, message",
    [
        ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "Required value: must specify a peer"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "spec.ingress[0].from[0]",
            "Forbidden: may not specify both ipBlock and another peer",
        ),
        ({"ingress": [{"from": [{"ipBlock": {}}]}]}, "spec.ingress[0].from[0].ipBlock.cidr", "Required value"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]},
            "spec.ingress[0].from[0].ipBlock.cidr",
            "not a valid CIDR",
        ),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]},
            "spec.ingress[0].from[0].ipBlock.except[0]",
            "must be a strict subset of `cidr`",
        ),
        ({"ingress": [{"ports": [{"port": 70000}]}]}, "spec.ingress[0].ports[0].port", "between 1 and 65535"),
        (
            {"ingress": [{"ports": [{"port": "HTTP"}]}]},
            "spec.ingress[0].ports[0].port",
            "alpha-numeric characters (a-z, 0-9)",
        ),
        (
            {"ingress": [{"ports": [{"protocol": "ICMP"}]}]},
            "spec.ingress[0].ports[0].protocol",
            'Unsupported value: "ICMP"',
        ),
        (
            {"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort",
            "greater than or equal",
        ),
        (
            {"ingress": [{"ports": [{"endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort",
            "may not be specified when `port` is not",
        ),
        ({"policyTypes": ["Ingress", "Sideways"]}, "spec.policyTypes[1]", 'Unsupported value: "Sideways"'),
        (
            {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
            "spec.podSelector.matchExpressions[0].values",
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        ({"podSelector": {"matchLabels": {"app": "-web"}}}, "spec.podSelector.matchLabels", "a valid label"),
    ],
)
def test_an_invalid_network_policy_is_refused_with_the_real_servers_message(api, namespace, spec, field, message):
    with pytest.raises(ApiException) as refused:
        networking(api).create_namespaced_network_policy(namespace, network_policy(**spec))
    body = body_of(refused.value)
    assert refused.value.status == 422 and body["reason"] == "Invalid", body
    assert (
        f'NetworkPolicy.networking.k8s.io "web" is invalid: {field}' in body["message"] and message in body["message"]
    )


@pytest.mark.parametrize(
    "spec, go_field",
    [
        ({"podSelector": "app=web"}, "NetworkPolicySpec.spec.podSelector of type v1.LabelSelector"),
        ({"ingress": {"from": []}}, "NetworkPolicySpec.spec.ingress of type []v1.NetworkPolicyIngressRule"),
        ({"ingress": [{"ports": [{"port": True}]}]}, "NetworkPolicyPort.spec.ingress.ports.port of type intstr"),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": 10}}]}]}, "IPBlock.spec.ingress.from.ipBlock.cidr of type string"),
        ({"policyTypes": "Ingress"}, "NetworkPolicySpec.spec.policyTypes of type []string"),
    ],
)
def test_a_network_policy_of_the_wrong_types_does_not_decode(api, namespace, spec, go_field):
    """Go's typed decoding: a 400 BadRequest naming the field and its type, before any validation."""
    assert_undecodable(
        api, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", network_policy(**spec), go_field
    )


def assert_undecodable(api, path: str, obj: dict, go_field: str) -> None:
    """POSTed raw (the client's models would convert the values first), ``obj`` is Go's unmarshal error."""
    with pytest.raises(ApiException) as refused:
        api.call_api(path, "POST", body=obj, auth_settings=["BearerToken"], _preload_content=False)
    body = body_of(refused.value)
    assert refused.value.status == 400 and body["reason"] == "BadRequest", body
    assert "json: cannot unmarshal" in body["message"] and go_field in body["message"], body


# -- Ingress (networking.k8s.io/v1) --------------------------------------------------------------------------
def ingress(name: str = "web", **spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": spec}


def http_rule(host: str = "web.example.com", **path) -> dict:
    backend = {"service": {"name": "web", "port": {"name": "http"}}}
    return {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend, **path}]}}


def test_an_ingress_is_created_with_its_status_and_a_generation(api, namespace, kubeconfig):
    created = networking(api).create_namespaced_ingress(
        namespace, ingress(rules=[http_rule("*.example.com")], tls=[{"hosts": ["*.example.com"], "secretName": "t"}])
    )
    assert created.metadata.generation == 1 and created.spec.rules[0].http.paths[0].path_type == "Prefix"
    raw = api.sanitize_for_serialization(networking(api).read_namespaced_ingress("web", namespace))
    assert raw["status"] == {"loadBalancer": {}}  # as a real server reads back a new Ingress
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    networking(api).patch_namespaced_ingress_status("web", namespace, status)  # what a controller writes
    after = networking(api).patch_namespaced_ingress(
        "web", namespace, {"status": {}, "spec": {"ingressClassName": "x"}}
    )
    assert after.status.load_balancer.ingress[0].ip == "192.0.2.10"  # status only through /status
    assert after.metadata.generation == 2
    listed = kubectl(kubeconfig, "get", "ingresses", "-n", namespace, "-o", "name")
    assert listed.returncode == 0 and listed.stdout.split() == ["ingress.networking.k8s.io/web"], listed


SERVICE = {"service": {"name": "web", "port": {"number": 80}}}


@pytest.mark.parametrize(
    "spec, field, message",
    [
        ({}, "spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be"),
        ({"rules": [http_rule(pathType=None)]}, "spec.rules[0].http.paths[0].pathType", "pathType must be specified"),
        (
            {"rules": [http_rule(pathType="Regex")]},
            "spec.rules[0].http.paths[0].pathType",
            'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
        ),
        (
            {"rules": [http_rule(path="api", pathType="Exact")]},
            "spec.rules[0].http.paths[0].path",
            'Invalid value: "api": must be an absolute path',
        ),
        ({"rules": [http_rule(path="/a//b")]}, "spec.rules[0].http.paths[0].path", "must not contain '//'"),
        ({"rules": [http_rule(path="/a/..")]}, "spec.rules[0].http.paths[0].path", "cannot end with '/..'"),
        (
            {"rules": [http_rule(path="api", pathType="ImplementationSpecific")]},
            "spec.rules[0].http.paths[0].path",
            "must be an absolute path",
        ),
        ({"rules": [{"host": "a.example.com", "http": {"paths": []}}]}, "spec.rules[0].http.paths", "Required value"),
        (
            {"rules": [http_rule(backend={})]},
            "spec.rules[0].http.paths[0].backend",
            'Invalid value: "": resource or service backend is required',
        ),
        (
            {"rules": [http_rule(backend={"service": {"name": "web", "port": {}}})]},
            "spec.rules[0].http.paths[0].backend",
            "Required value: port name or number is required",
        ),
        (
            {"rules": [http_rule(backend={"service": {"name": "web", "port": {"name": "http", "number": 80}}})]},
            "spec.rules[0].http.paths[0].backend",
            "cannot set both port name & port number",
        ),
        (
            {"rules": [http_rule(backend={"service": {"name": "web", "port": {"number": 70000}}})]},
            "spec.rules[0].http.paths[0].backend.service.port.number",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            {"rules": [http_rule(backend={"service": {"name": "web", "port": {"name": "HTTP"}}})]},
            "spec.rules[0].http.paths[0].backend.service.port.name",
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ),
        (
            {"rules": [http_rule(backend={"service": {"name": "1web", "port": {"number": 80}}})]},
            "spec.rules[0].http.paths[0].backend.service.name",
            'Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters',
        ),
        (
            {"rules": [http_rule(backend={"service": {"port": {"number": 80}}})]},
            "spec.rules[0].http.paths[0].backend.service.name",
            "Required value",
        ),
        ({"rules": [http_rule("10.0.0.1")]}, "spec.rules[0].host", "must be a DNS name, not an IP address"),
        ({"rules": [http_rule("Web.example.com")]}, "spec.rules[0].host", "a lowercase RFC 1123 subdomain must"),
        ({"rules": [http_rule("a.*.example.com")]}, "spec.rules[0].host", "a wildcard DNS-1123 subdomain must start"),
        (
            {"defaultBackend": SERVICE, "tls": [{"hosts": ["*.Example.com"]}]},
            "spec.tls[0].hosts[0]",
            "(e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]",
        ),
        (
            {"defaultBackend": SERVICE, "tls": [{"secretName": "Web_TLS"}]},
            "spec.tls[0].secretName",
            'Invalid value: "Web_TLS": a lowercase RFC 1123 subdomain',
        ),
        ({"defaultBackend": SERVICE, "ingressClassName": "Nginx"}, "spec.ingressClassName", "RFC 1123 subdomain"),
    ],
)
def test_an_invalid_ingress_is_refused_with_the_real_servers_message(api, namespace, spec, field, message):
    with pytest.raises(ApiException) as refused:
        networking(api).create_namespaced_ingress(namespace, ingress(**spec))
    body = body_of(refused.value)
    assert refused.value.status == 422 and body["reason"] == "Invalid", body
    assert f'Ingress.networking.k8s.io "web" is invalid: {field}: ' in body["message"], body["message"]
    assert message in body["message"], body["message"]


@pytest.mark.parametrize(
    "spec, go_field",
    [
        ({"rules": {"host": "a"}}, "IngressSpec.spec.rules of type []v1.IngressRule"),
        ({"rules": [{"http": {"paths": [{"pathType": 1}]}}]}, "HTTPIngressPath.spec.rules.http.paths.pathType"),
        (
            {"defaultBackend": {"service": {"name": "web", "port": {"number": "80"}}}},
            "ServiceBackendPort.spec.defaultBackend.service.port.number of type int32",
        ),
        ({"tls": [{"hosts": "a.example.com"}]}, "IngressTLS.spec.tls.hosts of type []string"),
    ],
)
def test_an_ingress_of_the_wrong_types_does_not_decode(api, namespace, spec, go_field):
    assert_undecodable(api, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses", ingress(**spec), go_field)


def test_the_autoscaler_keeps_its_target_within_bounds_without_metrics(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=1))
    hpa = {
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 3,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    done = wait_for(lambda: rolled_out(api, "web", namespace), what="rollout at the HPA's minimum")
    assert done["spec"]["replicas"] == 3 and done["metadata"]["generation"] == 2
    status = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("web", namespace).status
    assert status.desired_replicas == 3
    assert {c.type: c.reason for c in status.conditions}["ScalingActive"] == "FailedGetResourceMetric"
    events = core(api).list_namespaced_event(namespace, field_selector="reason=SuccessfulRescale").items
    expected = "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
    assert [e.message for e in events] == [expected]


def test_the_scale_subresource_reads_and_writes_replicas(api, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=1))
    scale = apps(api).read_namespaced_deployment_scale("web", namespace)
    assert scale.spec.replicas == 1 and scale.kind == "Scale"
    apps(api).patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    assert apps(api).read_namespaced_deployment("web", namespace).spec.replicas == 2
    wait_for(lambda: rolled_out(api, "web", namespace), what="scaled rollout")


def test_deleting_a_namespace_empties_it_and_refuses_new_objects_meanwhile(api):
    core(api).create_namespace({"metadata": {"name": "doomed"}})
    apps(api).create_namespaced_deployment("doomed", deployment("web", replicas=1))
    wait_for(lambda: rolled_out(api, "web", "doomed"), what="rollout")
    core(api).delete_namespace("doomed")
    refused = None
    try:
        core(api).create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    except ApiException as exc:
        refused = exc
    assert refused is not None and refused.status in (403, 404)  # 403 while terminating, 404 once gone
    wait_for(lambda: "doomed" not in [n.metadata.name for n in core(api).list_namespace().items], what="namespace gone")
    assert not [p for p in core(api).list_pod_for_all_namespaces().items if p.metadata.namespace == "doomed"]


def test_kubectl_rollout_undo_brings_the_old_template_back_as_a_new_revision(api, kubeconfig, namespace):
    apps(api).create_namespaced_deployment(namespace, deployment("web", image="registry.example/model:v1"))
    wait_for(lambda: rolled_out(api, "web", namespace), what="v1")
    changed = kubectl(kubeconfig, "set", "image", "deployment/web", "model=registry.example/model:v2", "-n", namespace)
    assert changed.returncode == 0, changed.stderr
    wait_for(lambda: rolled_out(api, "web", namespace), what="v2")
    undone = kubectl(kubeconfig, "rollout", "undo", "deployment/web", "-n", namespace)
    assert undone.returncode == 0 and "rolled back" in undone.stdout, undone.stderr
    done = wait_for(lambda: rolled_out(api, "web", namespace), what="undo")
    assert done["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/model:v1"
    assert done["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(replicasets(api, namespace)) == 2, "the v1 ReplicaSet is reused, not duplicated"


def test_a_selector_watch_sees_objects_enter_and_leave_the_selection(api, namespace):
    start = core(api).list_namespaced_config_map(namespace).metadata.resource_version
    core(api).create_namespaced_config_map(namespace, {"metadata": {"name": "c", "labels": {"tier": "gold"}}})
    core(api).patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"tier": "silver"}}})
    core(api).patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"tier": "gold"}}})
    seen = []
    for event in watch.Watch().stream(
        core(api).list_namespaced_config_map,
        namespace,
        resource_version=start,
        label_selector="tier=gold",
        timeout_seconds=1,
    ):
        seen.append(event["type"])
    assert seen == ["ADDED", "DELETED", "ADDED"]


def test_simulated_pods_answer_the_proxy_through_a_registered_fallback(server, api, namespace):
    import requests

    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=1))
    core(api).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    wait_for(lambda: rolled_out(api, "web", namespace), what="rollout")
    url = f"{server.url}/api/v1/namespaces/{namespace}/services/web:http/proxy/readyz"
    headers = {"Authorization": f"Bearer {server.token}"}
    assert requests.get(url, headers=headers, verify=str(server.ca_file)).status_code == 503  # nothing runs
    server.proxy.fallback = lambda pod, method, path, query, hdrs, body: (
        200,
        {"Content-Type": "text/plain"},
        f"{pod['metadata']['name']} {method} {path}".encode(),
    )
    try:
        reply = requests.get(url, headers=headers, verify=str(server.ca_file))
    finally:
        server.proxy.fallback = None
    assert reply.status_code == 200 and reply.text.startswith("web-") and reply.text.endswith(" GET /readyz")


def test_recreate_stops_every_old_pod_before_starting_new_ones(api, namespace):
    recreate = deployment("web", replicas=2, strategy={"type": "Recreate"})
    apps(api).create_namespaced_deployment(namespace, recreate)
    wait_for(lambda: rolled_out(api, "web", namespace), what="v1")
    start = core(api).list_namespaced_pod(namespace).metadata.resource_version
    container = {"name": "model", "image": "registry.example/m:v2"}
    apps(api).patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )
    wait_for(lambda: rolled_out(api, "web", namespace), what="v2")
    order = []
    for event in watch.Watch().stream(
        core(api).list_namespaced_pod, namespace, resource_version=start, timeout_seconds=1
    ):
        pod = event["object"]
        if event["type"] in ("ADDED", "DELETED"):
            order.append((event["type"], pod.spec.containers[0].image.endswith("v2")))
    last_old_deleted = max(i for i, (kind, new) in enumerate(order) if kind == "DELETED" and not new)
    first_new_added = min(i for i, (kind, new) in enumerate(order) if kind == "ADDED" and new)
    assert last_old_deleted < first_new_added, order


# -- admission: pods that are never created ----------------------------------------------------------------
def replica_failure(api, ns: str, name: str):
    d = status_of(api, name, ns)
    return condition(d, "ReplicaFailure") or None


def test_a_quota_refuses_pods_and_the_replicaset_says_so_until_it_has_room(api, namespace):
    quota = {"metadata": {"name": "compute"}, "spec": {"hard": {"pods": "1", "limits.cpu": "2"}}}
    core(api).create_namespaced_resource_quota(namespace, quota)
    web = deployment("web", replicas=2)
    web["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "500m"},
        "requests": {"cpu": "500m"},
    }
    apps(api).create_namespaced_deployment(namespace, web)
    failure = wait_for(lambda: replica_failure(api, namespace, "web"), what="ReplicaFailure on the Deployment")
    [rs] = replicasets(api, namespace)
    rs_name = rs["metadata"]["name"]
    expected = (
        f'pods "{rs_name}-" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=1, limited: pods=1'
    )
    assert (failure["status"], failure["reason"], failure["message"]) == ("True", "FailedCreate", expected)
    assert condition(rs, "ReplicaFailure")["message"] == expected
    events = core(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={rs_name}").items
    assert any(
        e.type == "Warning" and e.reason == "FailedCreate" and e.message == f"Error creating: {expected}"
        for e in events
    )
    assert len(core(api).list_namespaced_pod(namespace).items) == 1
    used = wait_for(
        lambda: core(api).read_namespaced_resource_quota("compute", namespace).status.used, what="quota status"
    )
    assert used == {"pods": "1", "limits.cpu": "500m"}
    core(api).patch_namespaced_resource_quota("compute", namespace, {"spec": {"hard": {"pods": "2"}}})
    wait_for(lambda: rolled_out(api, "web", namespace), what="rollout once the quota has room")
    assert replica_failure(api, namespace, "web") is None, "the condition goes once the pods could be created"


def test_a_quota_on_limits_refuses_pods_that_set_none(api, namespace):
    hard = {"limits.cpu": "4", "requests.memory": "1Gi"}
    core(api).create_namespaced_resource_quota(namespace, {"metadata": {"name": "compute"}, "spec": {"hard": hard}})
    with pytest.raises(ApiException) as refused:
        core(api).create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": "bare"},
                "spec": {"containers": [{"name": "model", "image": "registry.example/m:1"}]},
            },
        )
    assert refused.value.status == 403 and body_of(refused.value)["reason"] == "Forbidden"
    assert body_of(refused.value)["message"] == (
        'pods "bare" is forbidden: failed quota: compute: must specify '
        "limits.cpu for: model; requests.memory for: model"
    )


def test_pod_security_enforce_refuses_what_the_level_forbids(api, namespace):
    core(api).patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    apps(api).create_namespaced_deployment(namespace, deployment("web", replicas=1))
    failure = wait_for(lambda: replica_failure(api, namespace, "web"), what="ReplicaFailure")
    [rs] = replicasets(api, namespace)
    assert failure["message"] == (
        f'pods "{rs["metadata"]["name"]}-" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "model" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "model" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "model" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "model" must set securityContext.seccompProfile.type to "RuntimeDefault" '
        'or "Localhost")'
    )
    assert not core(api).list_namespaced_pod(namespace).items
    core(api).patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    wait_for(lambda: rolled_out(api, "web", namespace), what="rollout under baseline")
    privileged = {"name": "p", "image": "registry.example/m:1", "securityContext": {"privileged": True}}
    with pytest.raises(ApiException) as refused:
        core(api).create_namespaced_pod(
            namespace, {"metadata": {"name": "p"}, "spec": {"containers": [privileged], "hostNetwork": True}}
        )
    assert body_of(refused.value)["message"] == (
        'pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
        'privileged (container "p" must not set securityContext.privileged=true)'
    )


# -- graceful termination ----------------------------------------------------------------------------------
def test_a_deleted_pod_terminates_gracefully_while_its_replacement_starts(api, namespace):
    web = deployment("web", replicas=1)
    web["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": 1}}}
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 7
    apps(api).create_namespaced_deployment(namespace, web)
    wait_for(lambda: rolled_out(api, "web", namespace), what="rollout")
    [pod] = core(api).list_namespaced_pod(namespace).items
    deleted = time.monotonic()
    answer = core(api).delete_namespaced_pod(pod.metadata.name, namespace)
    assert answer.metadata.deletion_timestamp is not None and answer.metadata.deletion_grace_period_seconds == 7
    replacement = wait_for(
        lambda: [p for p in core(api).list_namespaced_pod(namespace).items if p.metadata.name != pod.metadata.name],
        what="a replacement at once",
    )
    assert time.monotonic() - deleted < 0.9, "the ReplicaSet does not count a terminating pod"
    names = lambda: {p.metadata.name for p in core(api).list_namespaced_pod(namespace).items}  # noqa: E731
    assert pod.metadata.name in names(), "still there, terminating, during its preStop sleep"
    wait_for(lambda: pod.metadata.name not in names(), timeout=5, what="the terminated pod goes")
    assert time.monotonic() - deleted >= 1.0, "not before its preStop sleep ended"
    assert replacement[0].metadata.name in names()
    events = core(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod.metadata.name}")
    assert any(e.reason == "Killing" and e.message == "Stopping container model" for e in events.items)
    gone = core(api).delete_namespaced_pod(replacement[0].metadata.name, namespace, grace_period_seconds=0)
    assert gone.metadata.name == replacement[0].metadata.name
    assert replacement[0].metadata.name not in names(), "grace 0 deletes at once"


def serve_under_load(url: str, token: str, stop: threading.Event) -> list[int]:
    import requests

    session, codes = requests.Session(), []
    session.headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set():
        try:
            codes.append(session.get(url, timeout=10).status_code)
        except requests.RequestException:
            codes.append(0)
    return codes


@pytest.mark.parametrize("prestop, lost", [(0, True), (2, False)])
def test_a_terminating_pod_gets_traffic_until_routing_catches_up(process_server, tmp_path, prestop, lost):
    """Endpoint removal takes the server's endpoint lag (1 s) to reach the proxy: a pod without a preStop delay
    gets SIGTERM at once and the requests routed to it meanwhile fail; with one longer than the lag, none do."""
    api = config.new_client_from_config(str(process_server.kubeconfig(tmp_path / "kc")), context="test")
    model = process_deployment(2)
    if prestop:
        model["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": prestop}}}
    apps(api).create_namespaced_deployment("default", model)
    core(api).create_namespaced_service(
        "default",
        {
            "metadata": {"name": "model"},
            "spec": {"selector": {"app": "model"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    wait_for(lambda: rolled_out(api, "model", "default"), what="process rollout")
    url = f"{process_server.url}/api/v1/namespaces/default/services/model:http/proxy/predict"
    stop, codes = threading.Event(), []
    load = threading.Thread(target=lambda: codes.extend(serve_under_load(url, process_server.token, stop)))
    load.start()
    time.sleep(0.3)
    doomed = core(api).list_namespaced_pod("default").items[0]
    deleted = time.monotonic()
    core(api).delete_namespaced_pod(doomed.metadata.name, "default")
    time.sleep(2.5)
    stop.set()
    load.join(15)
    failed = [c for c in codes if c != 200]
    assert len(codes) > 20 and bool(failed) == lost, (len(codes), failed[:5])
    handle = next(
        h for h in process_server.started if h.port == int(doomed.metadata.annotations["fake.kube.vci.dev/host-port"])
    )
    assert handle.terminated_at - deleted >= prestop * 0.95, "SIGTERM comes after the preStop sleep"


def test_a_pod_that_ignores_sigterm_is_killed_when_its_grace_period_ends(process_server, tmp_path):
    api = config.new_client_from_config(str(process_server.kubeconfig(tmp_path / "kc")), context="test")
    model = process_deployment(1)
    pod_spec = model["spec"]["template"]["spec"]
    pod_spec["terminationGracePeriodSeconds"] = 1
    pod_spec["containers"][0]["env"] = [{"name": "IGNORE_SIGTERM", "value": "1"}]
    apps(api).create_namespaced_deployment("default", model)
    wait_for(lambda: rolled_out(api, "model", "default"), what="process rollout")
    [pod] = core(api).list_namespaced_pod("default").items
    core(api).delete_namespaced_pod(pod.metadata.name, "default")
    names = lambda: {p.metadata.name for p in core(api).list_namespaced_pod("default").items}  # noqa: E731
    wait_for(lambda: pod.metadata.name not in names(), timeout=10, what="the pod goes")
    [handle] = [
        h for h in process_server.started if h.port == int(pod.metadata.annotations["fake.kube.vci.dev/host-port"])
    ]
    assert handle.terminated_at is not None and handle.killed_at is not None
    assert handle.killed_at - handle.terminated_at >= 0.9 and handle.exit_code == -9
