"""KServe's resources for an environment (pure): a ServingRuntime running the vci image and an
InferenceService in raw deployment mode that uses it, the model speaking the Open Inference Protocol.

The image holds its model (no ``storageUri``: no storage initializer), so the runtime is made for this
one image and the InferenceService names it. KServe makes the Deployment and Service (raw mode: no
Knative) and its own probes; the container keeps vci's port, environment, resources and security
context. What vci's own render adds beyond (NetworkPolicy, PDB) stays with `--format kubernetes`.
"""

from __future__ import annotations

from .manifests import (
    DeploySpec,
    _annotations,
    _common_labels,
    grace_period,
    hpa_bounds,
    pod_volumes,
    render_container,
    validate_spec,
)

RUNTIME_API = "serving.kserve.io/v1alpha1"
ISVC_API = "serving.kserve.io/v1beta1"
MODEL_FORMAT = {"name": "vci", "version": "1"}
CONTAINER = "kserve-container"  # the name KServe gives the model server's container


def _protocols(spec: DeploySpec) -> list[str]:
    return ["v2", "grpc-v2"] if spec.env.get("VCI_GRPC_PORT") else ["v2"]


def render_runtime(spec: DeploySpec) -> dict:
    container = render_container(spec)
    kept = ("image", "imagePullPolicy", "env", "resources", "securityContext", "volumeMounts", "lifecycle")
    runtime_container = {"name": CONTAINER, **{k: container[k] for k in kept if k in container}}
    runtime_container["ports"] = [{"containerPort": p["containerPort"], "protocol": "TCP"} for p in container["ports"]]
    if spec.env.get("VCI_GRPC_PORT"):
        runtime_container["ports"].append(
            {"name": "h2c", "containerPort": int(spec.env["VCI_GRPC_PORT"]), "protocol": "TCP"}
        )
    runtime: dict = {
        "apiVersion": RUNTIME_API,
        "kind": "ServingRuntime",
        "metadata": {
            "name": spec.object_name,
            "namespace": spec.namespace,
            "labels": _common_labels(spec),
            "annotations": _annotations(spec, release=True),
        },
        "spec": {
            "supportedModelFormats": [{**MODEL_FORMAT, "autoSelect": False}],
            "protocolVersions": _protocols(spec),
            "multiModel": False,
            "containers": [runtime_container],
            "volumes": pod_volumes(spec),
        },
    }
    if spec.image_pull_secret:
        runtime["spec"]["imagePullSecrets"] = [{"name": spec.image_pull_secret}]
    return runtime


def render_inference_service(spec: DeploySpec) -> dict:
    minimum, maximum = hpa_bounds(spec) if spec.autoscaling else (spec.replicas, spec.replicas)
    return {
        "apiVersion": ISVC_API,
        "kind": "InferenceService",
        "metadata": {
            "name": spec.object_name,
            "namespace": spec.namespace,
            "labels": _common_labels(spec),
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment", **_annotations(spec, release=True)},
        },
        "spec": {
            "predictor": {
                "minReplicas": minimum,
                "maxReplicas": maximum,
                "terminationGracePeriodSeconds": grace_period(spec),
                "model": {
                    "modelFormat": dict(MODEL_FORMAT),
                    "runtime": spec.object_name,
                    "protocolVersion": "v2",
                },
            }
        },
    }


def render_kserve(spec: DeploySpec) -> list[dict]:
    """Validate ``spec``; the ServingRuntime (first: the InferenceService names it) and the InferenceService."""
    validate_spec(spec)
    return [render_runtime(spec), render_inference_service(spec)]
