"""Hardware and placement settings: ``resources: {gpu: N}`` (the vendor's extended resource as a limit),
``node_selector``, ``tolerations``, ``affinity``, ``priority_class``, ``service_account``, from vci.yaml
through `vci render` to objects that pass kubernetes-validate --strict; what the API server would refuse is
refused when the settings load, naming the key."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from tests.test_cli import vci
from vci.config import load_settings
from vci.deploy.manifests import DeploySpec, render_deployment, validate_spec
from vci.errors import ConfigError, UsageError

IMAGE = "registry.example.com/ml/iris@sha256:" + "ab" * 32
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
ZONE = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a"]}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [ZONE]}]}
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}
        ]
    },
}


def write_config(tmp_path, **gpu) -> None:
    config = {"project": "iris", "environments": {"gpu": {"target": "kubernetes", "namespace": "ml", **gpu}}}
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))


def rendered_pod(tmp_path, **gpu) -> dict:
    write_config(tmp_path, **gpu)
    objects = json.loads(vci("render", IMAGE, "--env", "gpu", "--output", "json", cwd=tmp_path).stdout)["objects"]
    for obj in objects:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    return next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]


def test_a_gpu_environment_renders_its_limit_and_placement(tmp_path):
    pod = rendered_pod(
        tmp_path,
        resources={"gpu": 1, "memory": "4Gi"},
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[GPU_TAINT],
        affinity=AFFINITY,
        priority_class="ml-serving",
        service_account="iris-reader",
    )
    resources = pod["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "4Gi", "nvidia.com/gpu": "1"}
    assert "nvidia.com/gpu" not in resources["requests"] and "gpu" not in resources["requests"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [GPU_TAINT]
    assert pod["priorityClassName"] == "ml-serving" and pod["serviceAccountName"] == "iris-reader"
    assert pod["automountServiceAccountToken"] is False  # the account's token is still not mounted
    assert pod["affinity"]["nodeAffinity"] == AFFINITY["nodeAffinity"]
    preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0] == AFFINITY["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert preferred[1]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"  # vci's spread, kept


def test_the_gpu_vendor_key_is_configurable_and_limits_take_gpu_too(tmp_path):
    pod = rendered_pod(tmp_path, resources={"limits": {"gpu": "2", "memory": "1Gi"}}, gpu_resource="amd.com/gpu")
    assert pod["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "2", "memory": "1Gi"}


def test_nothing_asked_renders_nothing_new(tmp_path):
    pod = rendered_pod(tmp_path)
    assert not {"nodeSelector", "tolerations", "priorityClassName", "serviceAccountName"} & set(pod)
    assert list(pod["affinity"]) == ["podAntiAffinity"]
    assert not any("gpu" in name for name in pod["containers"][0]["resources"]["limits"])


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ({"resources": {"gpu": 0}}, "gpu must be a whole number of GPUs"),
        ({"resources": {"gpu": 1.5}}, "gpu must be a whole number of GPUs"),
        ({"resources": {"requests": {"gpu": 1}}}, "gpu goes under limits"),
        ({"gpu_resource": "gpu"}, "'gpu' is not an extended resource name"),
        ({"node_selector": {"pool": True}}, "invalid entry 'pool': True"),
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}, "[0]: operator Exists takes no value"),
        ({"tolerations": [{"key": "a", "value": "b", "tolerationSeconds": 60}]}, "tolerationSeconds needs effect"),
        ({"tolerations": [{"effect": "NoSchedule"}]}, "an empty key needs operator Exists"),
        ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "effect must be one of NoSchedule"),
        ({"affinity": {"nodeAffinity": [], "zoneAffinity": {}}}, "unknown setting 'zoneAffinity'"),
        ({"priority_class": "High_Priority"}, "'High_Priority' is not an object name"),
        ({"service_account": "a/b"}, "'a/b' is not an object name"),
    ],
)
def test_what_the_api_server_would_refuse_is_refused_when_settings_load(tmp_path, setting, fragment):
    write_config(tmp_path, **setting)
    with pytest.raises(ConfigError, match="environments.gpu") as refused:
        load_settings(cwd=tmp_path, environ={})
    assert fragment in refused.value.message


def test_rendering_checks_a_spec_made_in_code_too():
    spec = DeploySpec(name="iris", environment="gpu", namespace="ml", image=IMAGE, tolerations=[{"operator": "Equal"}])
    with pytest.raises(UsageError, match="invalid tolerations: \\[0\\]: an empty key"):
        validate_spec(spec)
    assert render_deployment(DeploySpec(name="iris", environment="gpu", namespace="ml", image=IMAGE))
