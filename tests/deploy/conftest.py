"""Fixtures for cluster deployments: the Kubernetes API test server (also one whose pods are real model servers),
a real registry, a scratch base."""

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from registry import RegistryServer  # noqa: E402
from tests.deploy.serving import ServePod  # noqa: E402
from tests.fakes.kube import start_kube_server  # noqa: E402
from vci.config import load_settings  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with RegistryServer(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def scratch_base(tmp_path_factory):
    from images import scratch_base_layout

    return scratch_base_layout(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def kube():
    server = start_kube_server(tls=True, namespaces=("ml-staging",))
    try:
        yield server
    finally:
        server.stop()


def write_config(tmp_path: Path, kubeconfig: Path, repository: str, base: str, **staging) -> Path:
    config = {
        "project": "scaler",
        "store": str(tmp_path / "store"),
        "environments": {
            "staging": {
                "target": "kubernetes",
                "namespace": "ml-staging",
                "kubeconfig": str(kubeconfig),
                "repository": repository,
                "base_image": base,
                "replicas": 2,
                "resources": {"cpu": "100m", "memory": "128Mi"},
                **staging,
            }
        },
    }
    path = tmp_path / "vci.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def serving_kube():
    server = start_kube_server(namespaces=("ml-staging",), backend="process", runner=ServePod)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def serving_settings(tmp_path, monkeypatch, serving_kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    write_config(
        tmp_path,
        serving_kube.kubeconfig(tmp_path / "kubeconfig"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        replicas=2,
        prestop_delay="2s",
        progress_deadline="60s",
    )
    yield load_settings(cwd=tmp_path, environ={})


def local_settings(tmp_path: Path, monkeypatch, staging: str, project: str):
    """Settings for local deployments under ``tmp_path`` whose staging environment is ``staging`` (YAML
    flow mapping); a generator for a fixture: undeploys staging afterwards."""
    from vci.deploy import undeploy
    from vci.errors import NotFoundError

    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vci.yaml").write_text(f"environments:\n  staging: {staging}\n")
    settings = load_settings({"store": str(tmp_path / "store"), "project": project}, cwd=tmp_path, environ={})
    yield settings
    try:
        undeploy(settings, "staging")
    except NotFoundError:
        pass
