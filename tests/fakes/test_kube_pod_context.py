"""The test API server's kubelet and network for process pods: configMap and secret volumes laid out and updated
as the kubelet does (in place, optional sources, FailedMount), Services reachable from a pod through kube-proxy's
forwarding, and custom resources served only once their CRD exists."""

import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.kube import start_kube_server
from tests.fakes.kube.crds import service_monitor_crd


class HelloPod:
    """A pod that answers every GET with its name (an HTTP server thread); records the context it got."""

    pod_context = True
    started: list = []

    def __init__(self, pod_spec: dict, port: int, context):
        name = {e["name"]: e.get("value") for e in pod_spec["containers"][0].get("env", [])}["NAME"]

        class Hello(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.end_headers()
                self.wfile.write(name.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Hello)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.context = context
        HelloPod.started.append(self)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def alive(self) -> bool:
        return True

    def logs(self) -> str:
        return ""


@pytest.fixture(scope="module")
def kube():
    server = start_kube_server(backend="process", runner=HelloPod)
    yield server
    server.stop()


def api(kube, tmp_path):
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(kube.kubeconfig(tmp_path / "kc"))))


def pod(name: str, volumes: list) -> dict:
    container = {
        "name": "c",
        "image": "x",
        "env": [{"name": "NAME", "value": name}],
        "volumeMounts": [{"name": v["name"], "mountPath": f"/etc/{v['name']}", "readOnly": True} for v in volumes],
    }
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "volumes": volumes},
    }


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_config_map_volumes_are_filled_and_updated_in_place_without_a_restart(kube, tmp_path):
    core = api(kube, tmp_path)
    optional = {"name": "cfg", "configMap": {"name": "settings", "optional": True}}
    core.create_namespaced_pod("default", pod("reader", [optional]))
    handle = eventually(lambda: HelloPod.started and HelloPod.started[-1])
    mount = handle.context.mounts["/etc/cfg"]
    assert os.listdir(mount) == [] or all(n.startswith("..") for n in os.listdir(mount))  # absent, optional: empty
    core.create_namespaced_config_map("default", {"metadata": {"name": "settings"}, "data": {"a.json": "1"}})
    path = os.path.join(mount, "a.json")
    assert eventually(lambda: os.path.exists(path)) and open(path).read() == "1"
    assert os.readlink(path) == "..data/a.json" and os.path.islink(os.path.join(mount, "..data"))
    inode = os.stat(path).st_ino
    core.patch_namespaced_config_map("settings", "default", {"data": {"a.json": "2"}})
    assert eventually(lambda: open(path).read() == "2") and os.stat(path).st_ino != inode  # swapped, not rewritten
    core.delete_namespaced_config_map("settings", "default")
    assert eventually(lambda: not os.path.exists(path))  # the key's file goes with its source
    assert len(HelloPod.started) == 1  # one start: never restarted for any of it
    core.delete_namespaced_pod("reader", "default", grace_period_seconds=0)


def test_a_missing_required_source_keeps_the_pod_from_starting(kube, tmp_path):
    core = api(kube, tmp_path)
    before = len(HelloPod.started)
    core.create_namespaced_pod("default", pod("waiter", [{"name": "tok", "secret": {"secretName": "tokens"}}]))
    events = eventually(
        lambda: [e for e in core.list_namespaced_event("default").items if e.reason == "FailedMount"], timeout=5
    )
    assert events and "tok" in events[0].message and len(HelloPod.started) == before
    core.create_namespaced_secret("default", {"metadata": {"name": "tokens"}, "data": {"token": "c2VjcmV0"}})
    handle = eventually(lambda: len(HelloPod.started) > before and HelloPod.started[-1])
    assert open(os.path.join(handle.context.mounts["/etc/tok"], "token")).read() == "secret"  # decoded
    core.delete_namespaced_pod("waiter", "default", grace_period_seconds=0)


def test_a_pod_reaches_a_service_by_name_and_cluster_ip(kube, tmp_path):
    core = api(kube, tmp_path)
    core.create_namespaced_pod("default", pod("backend", []))
    ports = [{"name": "http", "port": 80, "targetPort": 8080}]
    service = core.create_namespaced_service(
        "default", {"metadata": {"name": "backend"}, "spec": {"selector": {"app": "backend"}, "ports": ports}}
    )
    handle = eventually(lambda: HelloPod.started and HelloPod.started[-1].context.network and HelloPod.started[-1])

    def routes() -> dict:
        return json.loads(open(handle.context.network).read())

    assert eventually(lambda: "backend.default.svc:80" in routes())
    there = routes()[f"{service.spec.cluster_ip}:80"]
    assert there == routes()["backend.default.svc.cluster.local:80"]
    answer = eventually(lambda: _get(f"http://{there}/"))  # once the pod is Ready
    assert answer == "backend"
    core.delete_namespaced_service("backend", "default")
    assert eventually(lambda: "backend.default.svc:80" not in routes())
    core.delete_namespaced_pod("backend", "default", grace_period_seconds=0)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_a_custom_resource_is_served_only_once_its_crd_exists(kube, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api_client = config.new_client_from_config(str(kube.kubeconfig(tmp_path / "kc")))
    objects, extensions = client.CustomObjectsApi(api_client), client.ApiextensionsV1Api(api_client)
    where = ("monitoring.coreos.com", "v1", "default", "servicemonitors")
    with pytest.raises(ApiException) as missing:
        objects.list_namespaced_custom_object(*where)
    assert missing.value.status == 404 and "could not find the requested resource" in missing.value.body
    extensions.create_custom_resource_definition(service_monitor_crd())
    try:
        monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m"},
                   "spec": {"selector": {}, "endpoints": [{"port": "http"}], "unknownField": 1}}  # fmt: skip
        created = objects.create_namespaced_custom_object(*where, monitor)
        assert "unknownField" not in created["spec"]  # pruned, as a structural schema prunes
        groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
        assert "monitoring.coreos.com" in groups
    finally:
        extensions.delete_custom_resource_definition("servicemonitors.monitoring.coreos.com")
    with pytest.raises(ApiException) as gone:
        objects.get_namespaced_custom_object(*where, "m")
    assert gone.value.status == 404
