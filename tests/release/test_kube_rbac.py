"""Access as on a cluster with RBAC: vci runs as a ServiceAccount bound to exactly the Role that
`vci render --rbac` prints (validated against the real schemas), on the API test server denying all else
as the RBAC authorizer does; deploy, status, predict, a canary promotion, rollback and undeploy all work,
and with one rule taken away the operation that needs it fails with a hint naming the verb and resource.
The pods are real model servers (test_kube_release.py's ModelPod)."""

import copy
import subprocess
import sys

import pytest
import yaml

from images import scratch_base_layout
from registry import RegistryServer
from tests.fakes.kube import DEFAULT_TOKEN, DEFAULT_USER, Rbac, start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, deployed_model, status, target_for, undeploy
from vci.errors import AuthError, DeployError
from vci.release.promote import promote
from vci.release.rollback import history, rollback

from .conftest import make_run
from .test_kube_release import CANARY, MODEL_DIRS, ModelPod, stage

CI_USER = "system:serviceaccount:ci:vci-deployer"
CI_TOKEN = "ci-deployer-token"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("kube-rbac")
    kube = start_kube_server(
        namespaces=("ml-staging", "ml-prod"),
        backend="process",
        runner=ModelPod,
        tokens={DEFAULT_TOKEN: DEFAULT_USER, CI_TOKEN: CI_USER},
        rbac=Rbac(superusers={DEFAULT_USER}),
    )
    try:
        with RegistryServer(root / "registry") as reg:
            yield kube, reg, scratch_base_layout(root / "base")
    finally:
        kube.stop()


def rendered_rbac(cwd, env: str) -> list[dict]:
    """What `vci render --rbac` prints for ``env``, checked with kubernetes-validate --strict."""
    out = subprocess.run(
        [sys.executable, "-m", "vci", "render", "--rbac", "--env", env, "--service-account", "ci/vci-deployer"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    objects = [o for o in yaml.safe_load_all(out) if o]
    path = cwd / f"rbac-{env}.yaml"
    path.write_text(out)
    subprocess.run(["kubernetes-validate", "--strict", str(path)], check=True, capture_output=True, timeout=120)
    return objects


@pytest.fixture()
def settings(cluster, tmp_path, monkeypatch):
    kube, reg, base = cluster
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    common = {
        "target": "kubernetes",
        "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig", token=CI_TOKEN)),
        "base_image": base,
    }
    config = {
        "project": "iris",
        "store": str(tmp_path / "store"),
        "environments": {
            "staging": {
                **common,
                "namespace": "ml-staging",
                "repository": f"{reg.host}/ml/iris-staging",
                "ingress": {"host": "iris.staging.example.com"},  # created, read, deleted with the Role's rule
            },
            "production": {
                **common,
                "namespace": "ml-prod",
                "repository": f"{reg.host}/ml/iris",
                "replicas": 2,
                "canary": CANARY,
            },
        },
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    granted = rendered_rbac(tmp_path, "staging") + rendered_rbac(tmp_path, "production")
    kube.rbac.load(granted)
    yield load_settings(cwd=tmp_path, environ={}), granted
    kube.rbac.load([])
    admin = {**common, "kubeconfig": str(kube.kubeconfig(tmp_path / "admin-kubeconfig"))}
    for env, namespace in (("staging", "ml-staging"), ("production", "ml-prod")):
        target = target_for(
            load_settings({"project": "iris", "environments": {env: {**admin, "namespace": namespace}}}, environ={}),
            env,
        )
        target.remove_canary()
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "Ingress"):
            target.cluster.delete(kind, f"iris-{env}", namespace)


def without(objects: list[dict], resource: str, verb: str) -> list[dict]:
    """The granted objects with ``verb`` taken from the Roles' rule on ``resource``."""
    reduced = copy.deepcopy(objects)
    for role in (o for o in reduced if o["kind"] == "Role"):
        for rule in role["rules"]:
            if rule["resources"] == [resource]:
                rule["verbs"].remove(verb)
    return reduced


def test_every_operation_works_with_exactly_the_rendered_role(settings, tmp_path, cluster):
    settings, _ = settings
    kube = cluster[0]
    since = len(kube.requests)
    _, staged = stage(settings, tmp_path, 2)
    assert status(settings, "staging").state == "ready"
    assert target_for(settings, "staging").cluster.read("Ingress", "iris-staging", "ml-staging")
    assert deployed_model(settings, "staging").predict([1, 2]) == [2, 4]
    bad = make_run(settings, tmp_path, 9, broken=True)
    broken = target_for(settings, "staging").resolve_image(bad.id)["image"]
    MODEL_DIRS[broken.rsplit("@", 1)[1]] = str(bad.model_dir())
    with pytest.raises(DeployError) as failed:  # diagnosed (pods, events, logs) and rolled back
        deploy(settings, broken, "staging", timeout=8)
    why = str(failed.value)  # the pod's log (pods/log get) was readable: it says why the model cannot start
    assert "the model's self-test (model_test) failed: RuntimeError" in why and "rolled back to" in why
    assert deployed_model(settings, "staging").predict([1]) == [2]
    first = promote(settings, "staging", "production", digest=staged.rsplit("@", 1)[1], timeout=60)
    _, staged2 = stage(settings, tmp_path, 3)
    second = promote(settings, "staging", "production", digest=staged2.rsplit("@", 1)[1], strategy="canary", timeout=60)
    assert second["outcome"] == "succeeded" and second["canary"][0]["requests"]["canary"] >= 6, second["reason"]
    assert deployed_model(settings, "production").predict([1]) == [3]
    back = rollback(settings, "production", to=first["release_id"], timeout=60)
    assert back["outcome"] == "succeeded" and status(settings, "production").digest == first["digest"]
    switched = promote(settings, "staging", "production", digest=staged2.rsplit("@", 1)[1], strategy="blue-green")
    assert switched["outcome"] == "succeeded" and switched["blue_green"]["smoke"]["passed"], switched["reason"]
    assert [r["outcome"] for r in history(settings, "production")["releases"]] == ["succeeded"] * 4
    assert "Deployment/iris-production-green" in undeploy(settings, "production").to_json()["objects"]
    undeploy(settings, "staging")
    assert {user for _, _, user in kube.requests[since:]} == {CI_USER}  # vci ran as the ServiceAccount only


def test_the_forbidden_hint_names_the_missing_verb_and_resource(settings, tmp_path, cluster):
    settings, granted = settings
    kube = cluster[0]
    _, staged = stage(settings, tmp_path, 2)
    kube.rbac.load(without(granted, "services/proxy", "create"))
    with pytest.raises(AuthError) as refused:
        deployed_model(settings, "staging").predict([1])
    hint = f'grant {CI_USER} "create" on "services/proxy" (core API group) in namespace ml-staging'
    assert hint in str(refused.value)
    kube.rbac.load(without(granted, "deployments", "delete"))
    with pytest.raises(AuthError) as refused:
        undeploy(settings, "staging")
    assert '"delete" on "deployments" (API group "apps") in namespace ml-staging' in str(refused.value)
    assert 'cannot delete resource "deployments" in API group "apps"' in str(refused.value)  # the server's words


def test_a_canary_without_access_to_pod_metrics_fails_naming_it(settings, tmp_path, cluster):
    settings, granted = settings
    kube = cluster[0]
    _, staged = stage(settings, tmp_path, 2)
    promote(settings, "staging", "production", digest=staged.rsplit("@", 1)[1], timeout=60)
    _, staged2 = stage(settings, tmp_path, 3)
    kube.rbac.load(without(granted, "pods/proxy", "get"))
    with pytest.raises(AuthError, match='"get" on "pods/proxy" \\(core API group\\) in namespace ml-prod'):
        promote(settings, "staging", "production", digest=staged2.rsplit("@", 1)[1], strategy="canary", timeout=60)
    kube.rbac.load(granted)
    assert target_for(settings, "production").canary_status() is None  # removed, as after any failure
    assert history(settings, "production")["releases"][0]["outcome"] == "failed"


def test_rbac_subjects():
    from vci.deploy.rbac import render_rbac, subject
    from vci.errors import UsageError

    assert subject("vci", None, "ml-prod") == {"kind": "ServiceAccount", "name": "vci", "namespace": "ml-prod"}
    assert subject(None, "ci@example.com", "ml-prod")["kind"] == "User"
    with pytest.raises(UsageError, match="--service-account"):
        subject(None, None, "ml-prod")
    with pytest.raises(UsageError, match="invalid service account"):
        subject("CI/Deployer", None, "ml-prod")
    role, binding = render_rbac("ml-prod", subject("ci/vci", None, "ml-prod"))
    assert binding["roleRef"]["name"] == role["metadata"]["name"] and role["metadata"]["namespace"] == "ml-prod"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vci", "namespace": "ci"}]


def test_a_role_from_before_ingresses_still_deploys_an_environment_without_one(settings, tmp_path, cluster):
    """A Role applied before vci rendered Ingresses has no rule for them: an environment without the
    setting deploys (nothing can be pruned that the Role could never create), one with it is refused."""
    settings, granted = settings
    kube = cluster[0]
    old = copy.deepcopy(granted)
    for role in (o for o in old if o["kind"] == "Role"):
        role["rules"] = [r for r in role["rules"] if r["resources"] != ["ingresses"]]
    kube.rbac.load(old)
    run = make_run(settings, tmp_path, 4)
    image = target_for(settings, "production").resolve_image(run.id)["image"]
    MODEL_DIRS[image.rsplit("@", 1)[1]] = str(run.model_dir())
    deploy(settings, image, "production", timeout=60)  # production has no ingress setting
    assert status(settings, "production").digest == image.rsplit("@", 1)[1]
    with pytest.raises(AuthError, match="ingresses"):
        stage(settings, tmp_path, 5)  # staging has one: its Role must be applied again
    kube.rbac.load(granted)
