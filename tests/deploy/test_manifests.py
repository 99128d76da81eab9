"""Rendering is pure and strict: every object passes kubernetes-validate --strict; bad specs are refused."""

import pytest

from vci.deploy.manifests import DeploySpec, canary_replicas, ingress_warning, render, to_yaml
from vci.errors import UsageError

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com:5000/ml/iris@{DIGEST}"
INGRESS = {"host": "iris.example.com", "class": "nginx", "tls_secret": "iris-tls", "path": "/models/iris"}


def spec(**overrides):
    values = dict(
        name="iris",
        environment="staging",
        namespace="ml-staging",
        image=IMAGE,
        replicas=2,
        resources={"cpu": "500m", "memory": "1Gi"},
        run_id="20261124-071203-3f9a",
        model_digest="sha256:" + "cd" * 32,
        release_id="r20261124-071203-aaaa",
        autoscaling={"min_replicas": 2, "max_replicas": 6, "cpu": 70},
    )
    values.update(overrides)
    return DeploySpec(**values)


def kinds(objects):
    return [o["kind"] for o in objects]


def test_every_object_passes_strict_schema_validation():
    import kubernetes_validate

    objects = render(spec())
    assert kinds(objects) == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]
    exposed = spec(resources={}, network_policy={"from_cidrs": ["10.0.0.0/8"]}, ingress=INGRESS)
    for obj in objects + render(exposed):
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    assert kinds(render(exposed))[-1] == "Ingress"


def test_deployment_shape():
    deployment = render(spec())[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 300
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"]["runAsUser"] == 65532
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VCI_IMAGE_DIGEST"] == DIGEST and env["VCI_PORT"] == "8080"
    notes = deployment["metadata"]["annotations"]
    assert notes["vci.dev/release-id"] == "r20261124-071203-aaaa" and notes["vci.dev/run-id"]
    template_notes = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "vci.dev/release-id" not in template_notes  # a re-release of the same digest restarts nothing
    assert template_notes["prometheus.io/scrape"] == "true"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "vci"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_service_selects_stable_and_canary_tracks():
    stable = render(spec())
    canary = render(spec(track="canary", replicas=1, autoscaling=None))
    service = stable[1]
    assert kinds(canary) == ["Deployment", "Service"] and canary[0]["metadata"]["name"] == "iris-staging-canary"
    policy = stable[-1]  # the stable release's NetworkPolicy admits the canary's pods too
    for deployment in (stable[0], canary[0]):
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels_of_pods(deployment).items()
    for deployment in (stable[0], canary[0]):
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_single_replica_has_no_pdb_or_hpa():
    assert kinds(render(spec(replicas=1, autoscaling=None))) == ["Deployment", "Service", "NetworkPolicy"]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"namespace": "ML_Staging"}, "invalid Kubernetes namespace"),
        ({"resources": {"cpu": "lots"}}, "invalid resources: cpu: invalid quantity 'lots'"),
        ({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}, "request 2Gi is above its limit"),
        ({"network_policy": {"from_cidrs": ["10.0.0.300/8"]}}, "from_cidrs: '10.0.0.300/8' is not a CIDR"),
        ({"labels": {"app.kubernetes.io/name": "x"}}, "labels: may not set 'app.kubernetes.io/name'"),
        ({"image": "registry.example.com/ml/iris:latest"}, "names a tag, not a digest"),
        ({"name": "x" * 70}, "invalid Kubernetes name"),
        ({"image_pull_secret": "Registry_Login"}, "invalid image pull secret name 'Registry_Login'"),
        ({"ingress": {"host": "*.example.com", "path": "/v1//predict"}}, "invalid ingress: path '/v1//predict'"),
        ({"ingress": {"path": "/"}}, "invalid ingress: host is required"),
    ],
)
def test_bad_specs_are_refused(overrides, fragment):
    with pytest.raises(UsageError, match=fragment):
        render(spec(**overrides))


def test_an_image_pull_secret_reaches_the_pod_spec_and_passes_validation():
    import kubernetes_validate

    assert "imagePullSecrets" not in render(spec())[0]["spec"]["template"]["spec"]
    deployment = render(spec(image_pull_secret="registry.login"))[0]
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry.login"}]
    kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_tag_allowed_when_asked_and_yaml_round_trips():
    import yaml

    objects = render(spec(image="registry.example.com/ml/iris:latest", allow_tag=True))
    assert list(yaml.safe_load_all(to_yaml(objects))) == objects


def test_the_hpa_owns_replicas_when_autoscaling():
    assert "replicas" not in render(spec())[0]["spec"]
    assert render(spec(autoscaling=None))[0]["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    "resources, requests, limits",
    [
        ({}, {"cpu": "250m", "memory": "512Mi"}, {"memory": "512Mi"}),  # the documented defaults
        ({"cpu": "1"}, {"cpu": "1", "memory": "512Mi"}, {"cpu": "1", "memory": "512Mi"}),
        ({"requests": {"memory": "2Gi"}}, {"cpu": "250m", "memory": "2Gi"}, {"memory": "2Gi"}),  # limit = request
        ({"limits": {"memory": "1Gi"}}, {"cpu": "250m", "memory": "1Gi"}, {"memory": "1Gi"}),  # request = limit
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "500m", "memory": "1Gi"}, {"cpu": "500m", "memory": "1Gi"}),
    ],
)
def test_every_container_gets_cpu_and_memory_requests_and_a_memory_limit(resources, requests, limits):
    """kube-linter's default unset-cpu-requirements and unset-memory-requirements checks; before, an
    environment without resources rendered none (BestEffort pods, and an HPA that could never scale)."""
    container = render(spec(resources=resources, autoscaling={"cpu": 70}))[0]["spec"]["template"]["spec"]
    assert container["containers"][0]["resources"] == {"requests": requests, "limits": limits}


def test_replicas_prefer_distinct_nodes():
    """kube-linter's default no-anti-affinity check: a preferred anti-affinity over the environment's pods."""
    for deployment in (render(spec())[0], render(spec(track="canary", replicas=1, autoscaling=None))[0]):
        term = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ][0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "iris",
            "vci.dev/environment": "staging",
        }
        assert term["labelSelector"]["matchLabels"].items() <= labels_of_pods(deployment).items()


def test_the_network_policy_admits_the_namespace_or_what_the_environment_names():
    default = render(spec())[-1]["spec"]
    assert default["policyTypes"] == ["Ingress"]
    assert default["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}]
    named = render(
        spec(
            network_policy={
                "from_namespaces": ["ingress-nginx", "monitoring"],
                "from_pod_labels": {"role": "client"},
                "from_cidrs": ["10.0.0.0/28"],
            }
        )
    )[-1]["spec"]["ingress"][0]["from"]
    assert named == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"podSelector": {"matchLabels": {"role": "client"}}},
        {"ipBlock": {"cidr": "10.0.0.0/28"}},
    ]
    assert "NetworkPolicy" not in kinds(render(spec(network_policy=False)))


def labels_of_pods(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_hpa_bounds_must_be_in_order():
    with pytest.raises(UsageError, match="min_replicas 5 and max_replicas 3"):
        render(spec(autoscaling={"min_replicas": 5, "max_replicas": 3, "cpu": 70}))
    with pytest.raises(UsageError, match="min_replicas 9 and max_replicas 8"):
        render(spec(replicas=2, autoscaling={"min_replicas": 9, "cpu": 70}))  # max derived: 4 x replicas
    hpa = render(spec(resources={"requests": {"cpu": "250m"}}, autoscaling={"cpu": 60}))[2]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 8
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 60},
    }


def test_a_service_name_must_start_with_a_letter():
    with pytest.raises(UsageError, match="invalid Kubernetes Service name '3d-seg-staging': it must start"):
        render(spec(name="3d-seg"))  # a valid DNS-1123 label, but Services are RFC 1035 labels
    assert render(spec(name="seg-3d"))[1]["metadata"]["name"] == "seg-3d-staging"


def test_pod_annotations_and_labels_are_rendered_and_checked():
    deployment = render(
        spec(
            pod_annotations={"vault.hashicorp.com/agent-inject": "true"},
            pod_labels={"sidecar.istio.io/inject": "false"},
        )
    )[0]
    template = deployment["spec"]["template"]["metadata"]
    assert template["annotations"]["vault.hashicorp.com/agent-inject"] == "true"
    assert template["labels"]["sidecar.istio.io/inject"] == "false"
    assert "vault.hashicorp.com/agent-inject" not in deployment["metadata"]["annotations"]  # the pods' only
    with pytest.raises(UsageError, match="may not set 'vci.dev/track'"):
        render(spec(pod_labels={"vci.dev/track": "canary"}))
    with pytest.raises(UsageError, match="pod_labels: invalid entry 'team': True"):
        render(spec(pod_labels={"team": True}))
    with pytest.raises(UsageError, match="pod_annotations: invalid entry 'bad key!'"):
        render(spec(pod_annotations={"bad key!": "x"}))


def test_canary_replicas_give_about_the_weight_of_the_endpoints():
    assert [canary_replicas(3, w) for w in (10, 25, 50, 100)] == [1, 1, 3, 3]
    assert canary_replicas(9, 10) == 1 and canary_replicas(9, 50) == 9


def test_an_auth_secret_is_mounted_whole_read_only_and_passes_validation():
    import kubernetes_validate

    from vci.envrules import AUTH_MOUNT, auth_env

    env = auth_env({"secret": "iris-tokens", "key": "tokens"})
    deployment = render(spec(auth_secret="iris-tokens", env=env))[0]
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "auth", "secret": {"secretName": "iris-tokens", "defaultMode": 0o440}} in pod["volumes"]
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "auth")
    assert mount == {"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True}  # no subPath: rotations arrive
    assert {"name": "VCI_AUTH_TOKEN_FILE", "value": f"{AUTH_MOUNT}/tokens"} in container["env"]
    kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
    assert "auth" not in [v["name"] for v in render(spec())[0]["spec"]["template"]["spec"]["volumes"]]


def test_an_ingress_routes_its_host_and_path_to_the_service_for_the_stable_track_only():
    ingress = render(spec(ingress=INGRESS))[-1]
    assert ingress["apiVersion"] == "networking.k8s.io/v1" and ingress["metadata"]["name"] == "iris-staging"
    assert ingress["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "vci"  # what pruning selects by
    service = render(spec())[1]
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "iris.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/models/iris",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service["metadata"]["name"], "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["iris.example.com"], "secretName": "iris-tls"}],
    }
    assert service["spec"]["ports"][0]["name"] == "http" and service["spec"]["ports"][0]["port"] == 80
    plain = render(spec(ingress={"host": "*.models.example.com"}))[-1]["spec"]
    assert "tls" not in plain and "ingressClassName" not in plain
    assert plain["rules"][0]["host"] == "*.models.example.com" and plain["rules"][0]["http"]["paths"][0]["path"] == "/"
    assert "Ingress" not in kinds(render(spec()))
    assert "Ingress" not in kinds(render(spec(ingress=INGRESS, track="canary")))


def test_an_ingress_behind_the_default_network_policy_is_warned_about():
    warning = ingress_warning(spec(ingress=INGRESS))
    assert warning and "network_policy: {from_namespaces: [ingress-nginx]}" in warning
    assert "environments.staging.ingress" in warning and "ml-staging" in warning
    assert ingress_warning(spec(ingress=INGRESS, network_policy={"from_namespaces": ["ingress-nginx"]})) is None
    assert ingress_warning(spec(ingress=INGRESS, network_policy=False)) is None
    assert ingress_warning(spec()) is None
