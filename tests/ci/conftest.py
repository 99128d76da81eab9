"""Fixtures for CI tests: a project directory with a tiny model, ``vci`` run as a subprocess, and a cluster
(a real registry with a login, the Kubernetes API test server with runc pods, a Python base image)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

MODEL = '''
class Doubler:
    """Multiplies every number by the factor in its artifact."""

    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]
'''

VCI_YAML = """project: demo
environments:
  staging: {target: local}
  production: {target: local, requires_approval: true}
"""


def clean_env(**extra) -> dict:
    """The test process's environment without CI variables (the tests set the ones they mean)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "RUNNER_", "JENKINS_", "VCI_")) and k not in ("BUILD_URL", "CI")
    }
    env.update(extra)
    return env


def _signing_pair() -> tuple[str, str]:
    """The CI's signing key (a credential) and its public key (a file in the repository), made once."""
    import tempfile

    from vci.sign.keys import generate_key_pair

    private, public = generate_key_pair(Path(tempfile.mkdtemp(prefix="vci-ci-key-")), "ci")
    return private.read_text(), public.read_text()


SIGNING_KEY, SIGNING_PUB = _signing_pair()


def make_project(path: Path, factor: int = 2) -> Path:
    """A workspace as CI checks it out: model.py, its artifact, smoke examples, vci.yaml and the public key
    the build is verified with (vci.pub)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "vci.pub").write_text(SIGNING_PUB)
    (path / "model.py").write_text(MODEL)
    (path / "factor.txt").write_text(str(factor))
    (path / "examples.json").write_text(
        json.dumps({"inputs": [[1, 2], [3]], "expected_outputs": [[factor, 2 * factor], [3 * factor]]})
    )
    (path / "vci.yaml").write_text(VCI_YAML)
    return path


def run_vci(*args, cwd, env, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check and out.returncode != 0:
        raise AssertionError(f"vci {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


def stop_environments(cwd, env):
    for name in ("production", "staging"):
        run_vci("undeploy", "--env", name, cwd=cwd, env=env, check=False)


@pytest.fixture()
def project(tmp_path):
    """A project directory and the environment to run vci in it (its own cache, no CI variables)."""
    workdir = make_project(tmp_path / "work")
    env = clean_env(VCI_CACHE_DIR=str(tmp_path / "cache"), VCI_USER="tester")
    yield workdir, env
    stop_environments(workdir, env)


REGISTRY_USER, REGISTRY_PASSWORD = "ci", "registry-secret-5678"


class Cluster:
    """Where CI delivers to: ``registry`` (needs REGISTRY_USER's login), ``kube`` (namespaces ml-staging and
    ml-prod, its pods pull with the node's credentials and run with runc), ``base`` (a runnable base)."""

    NAMESPACES = {"staging": "ml-staging", "production": "ml-prod"}

    def __init__(self, registry, kube, base: str, kubeconfig: Path):
        self.registry, self.kube, self.base, self.kubeconfig = registry, kube, base, kubeconfig

    def write_vci_yaml(self, workdir: Path, project: str) -> dict:
        """vci.yaml for ``project``: staging and production (approval required) as Kubernetes deployments
        with their own namespaces and repositories; returns the config written."""
        common = {"target": "kubernetes", "base_image": self.base, "replicas": 1}
        repository = f"{self.registry.host}/ml/{project}"
        config = {
            "project": project,
            "environments": {
                "staging": {**common, "namespace": self.NAMESPACES["staging"], "repository": f"{repository}-staging"},
                "production": {
                    **common,
                    "namespace": self.NAMESPACES["production"],
                    "repository": repository,
                    "requires_approval": True,
                    "verify": {"keys": ["vci.pub"], "require": ["signature", "sbom", "provenance"]},
                },
            },
        }
        (workdir / "vci.yaml").write_text(yaml.safe_dump(config))
        return config

    def deployment(self, project: str, environment: str) -> dict | None:
        """The live Deployment of ``project`` in ``environment`` (None if there is none)."""
        from tests.fakes.kube.resources import BY_KIND

        namespace = self.NAMESPACES[environment]
        return self.kube.store.find(BY_KIND["Deployment"], namespace, f"{project}-{environment}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One cluster for the CI end-to-end runs (session-wide: each image is pulled and unpacked once)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from images import base_image_layout
    from pods import registry_authfile, runc_cluster
    from registry import RegistryServer

    root = tmp_path_factory.mktemp("ci-cluster")
    base = f"oci:{base_image_layout()}:base"
    with RegistryServer(root / "registry", users={REGISTRY_USER: REGISTRY_PASSWORD}) as registry:
        node_auth = registry_authfile(root / "node-auth.json", registry.host, REGISTRY_USER, REGISTRY_PASSWORD)
        with runc_cluster(tuple(Cluster.NAMESPACES.values()), authfile=node_auth) as kube:
            yield Cluster(registry, kube, base, kube.kubeconfig(root / "kubeconfig"))
