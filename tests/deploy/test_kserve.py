"""`vci render --format kserve`: a ServingRuntime and an InferenceService that KServe's own CRD schemas accept
(tests/deploy/kserve_schemas, with unknown fields refused as `kubectl --validate=strict` does)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.test_cli import vci

SCHEMAS = Path(__file__).with_name("kserve_schemas")
IMAGE = "registry.invalid/ml/iris@sha256:" + "ab" * 32  # .invalid never resolves: renders offline


def schema_of(obj: dict) -> dict:
    name = {"ServingRuntime": "servingruntime-v1alpha1", "InferenceService": "inferenceservice-v1beta1"}[obj["kind"]]
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def unknown_fields(value, schema: dict, path: str = "$") -> list[str]:
    """Fields the schema does not declare (the API server would prune them; strict validation refuses them)."""
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_fields(v, schema.get("items", {}), f"{path}[{i}]")]
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    found = []
    for key, item in value.items():
        if properties is not None and key in properties:
            found += unknown_fields(item, properties[key], f"{path}.{key}")
        elif isinstance(extra, dict):
            found += unknown_fields(item, extra, f"{path}.{key}")
        elif properties is not None:
            found.append(f"{path}.{key}")
    return found


def problems(obj: dict) -> list[str]:
    schema = schema_of(obj)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(obj)
    ]
    return errors + [f"unknown field {p}" for p in unknown_fields(obj, schema)]


def render(tmp_path, **staging) -> list[dict]:
    config = {"project": "iris", "environments": {"staging": {"target": "kubernetes", "namespace": "ml", **staging}}}
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    out = vci("render", IMAGE, "--env", "staging", "--format", "kserve", "--output", "json", cwd=tmp_path)
    return json.loads(out.stdout)["objects"]


@pytest.mark.parametrize(
    "staging",
    [
        {},
        {
            "replicas": 2,
            "resources": {"cpu": "1", "memory": "2Gi"},
            "env": {"VCI_GRPC_PORT": "9000"},
            "auth": {"secret": "iris-tokens"},
        },
    ],
)
def test_rendered_kserve_objects_match_kserves_schemas(tmp_path, staging):
    runtime, service = render(tmp_path, **staging)
    assert (runtime["kind"], service["kind"]) == ("ServingRuntime", "InferenceService")
    assert problems(runtime) == [] and problems(service) == []
    container = runtime["spec"]["containers"][0]
    assert container["name"] == "kserve-container" and container["image"] == IMAGE
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] and model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] in [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert "storageUri" not in model  # the model is in the image
    if staging:
        assert service["spec"]["predictor"]["minReplicas"] == 2
        assert runtime["spec"]["protocolVersions"] == ["v2", "grpc-v2"]
        assert {"name": "h2c", "containerPort": 9000, "protocol": "TCP"} in container["ports"]
        assert {"name": "auth", "secret": {"secretName": "iris-tokens", "defaultMode": 0o440}} in runtime["spec"][
            "volumes"
        ]


def test_the_schema_check_refuses_what_kserve_refuses(tmp_path):
    runtime, service = render(tmp_path)
    service["spec"]["predictor"]["model"]["protocolVersion"] = 2  # a number where a string goes
    service["spec"]["predictor"]["modle"] = {}  # a typo
    runtime["spec"]["containers"][0].pop("name")  # containers need a name
    assert any("protocolVersion" in p for p in problems(service))
    assert "unknown field $.spec.predictor.modle" in problems(service)
    assert any("'name' is a required property" in p for p in problems(runtime))


def test_vci_render_prints_the_ingress_with_its_warning_and_the_kserve_format_none(tmp_path):
    ingress = {"host": "iris.example.com", "tls_secret": "iris-tls"}
    config = {
        "project": "iris",
        "environments": {"staging": {"target": "kubernetes", "namespace": "ml", "ingress": ingress}},
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    out = vci("render", IMAGE, "--env", "staging", cwd=tmp_path)
    objects = [o for o in yaml.safe_load_all(out.stdout) if o]
    assert [o["kind"] for o in objects][-1] == "Ingress" and objects[-1]["spec"]["tls"][0]["secretName"] == "iris-tls"
    assert "network_policy: {from_namespaces: [ingress-nginx]}" in out.stderr  # the controller is kept out
    kserve = [o["kind"] for o in render(tmp_path, ingress=ingress)]
    assert kserve == ["ServingRuntime", "InferenceService"]
