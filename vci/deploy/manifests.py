"""Pure rendering of the Kubernetes objects that run a model image: Deployment, Service, HPA and PDB."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..build.plan import PORT, USER
from ..errors import UsageError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: namespaces, most objects
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # RFC 1035 label: Service names start with a letter
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
RESERVED_PREFIXES = ("vci.dev/", "app.kubernetes.io/", "prometheus.io/")  # vci's own keys
QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|[KMGTPE]i|[numkMGTPE])?$")
DIGEST_REF = re.compile(r"@sha256:[0-9a-f]{64}$")
ANNOTATION = "vci.dev/"
WORK_DIR = "/tmp/vci-work"
SERVER_DRAIN = 25  # seconds the model server gives in-flight requests after SIGTERM (VCI_DRAIN_TIMEOUT's default)
KILL_MARGIN = 5  # seconds between the end of that drain and the kubelet's SIGKILL


@dataclass
class DeploySpec:
    """Everything rendering needs; ``name`` is the project, objects are named ``<name>-<environment>``."""

    name: str
    environment: str
    namespace: str
    image: str
    replicas: int = 1
    resources: dict = field(default_factory=dict)
    autoscaling: dict | None = None
    env: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    run_id: str | None = None
    model_digest: str | None = None
    release_id: str | None = None
    track: str = "stable"
    progress_deadline: int = 600  # progressDeadlineSeconds: a rollout without progress this long has failed
    prestop_delay: int = 5  # seconds a terminating pod keeps serving while the endpoint removal propagates
    allow_tag: bool = False
    image_pull_secret: str | None = None  # a Secret (kubernetes.io/dockerconfigjson) in the namespace
    pod_annotations: dict = field(default_factory=dict)  # added to the pod template (a mesh, Vault, ...)
    pod_labels: dict = field(default_factory=dict)

    @property
    def object_name(self) -> str:
        base = f"{self.name}-{self.environment}"
        return base if self.track == "stable" else f"{base}-{self.track}"

    @property
    def service_name(self) -> str:
        return f"{self.name}-{self.environment}"


def validate_spec(spec: DeploySpec) -> None:
    """Refuse what the API server would refuse, before anything is sent."""
    for what, value in (("namespace", spec.namespace), ("name", spec.object_name)):
        if not value or len(value) > 63 or not DNS_LABEL.match(value):
            raise UsageError(
                f"invalid Kubernetes {what} {value!r}",
                hint="use lower-case letters, digits and '-', at most 63 characters",
            )
    if not DNS_1035.match(spec.service_name):
        raise UsageError(
            f"invalid Kubernetes Service name {spec.service_name!r}: it must start with a letter",
            hint="Services are named <project>-<environment>: start the project's name with a letter",
        )
    validate_pod_metadata(spec)
    secret = spec.image_pull_secret
    if secret is not None and (len(secret) > 253 or not all(DNS_LABEL.match(p) for p in secret.split("."))):
        raise UsageError(
            f"invalid image pull secret name {secret!r}",
            hint="name a Secret in the namespace: lower-case letters, digits, '-' and '.'",
        )
    if not DIGEST_REF.search(spec.image) and not spec.allow_tag:
        raise UsageError(
            f"{spec.image} names a tag, not a digest",
            hint="deploy REPO@sha256:... (what `vci package` prints), or pass --allow-tag",
        )
    for key, value in _flat_resources(spec.resources).items():
        if not QUANTITY.match(str(value)):
            raise UsageError(f"invalid resource quantity {key}={value!r}", hint="e.g. cpu: 500m, memory: 1Gi")
    if spec.replicas < 0:
        raise UsageError(f"replicas must be >= 0, got {spec.replicas}")
    if spec.progress_deadline < 1 or spec.prestop_delay < 0:
        raise UsageError(
            f"progress_deadline must be at least 1s and prestop_delay at least 0s, got "
            f"{spec.progress_deadline}s and {spec.prestop_delay}s",
            hint=f"set environments.{spec.environment}.progress_deadline (e.g. 10m) and prestop_delay (e.g. 5s)",
        )
    if spec.autoscaling:
        validate_autoscaling(spec)


def validate_autoscaling(spec: DeploySpec) -> None:
    """An HPA that can work: bounds in order, and a request for every resource it scales on.

    Utilisation is usage divided by the container's request: without one the HPA reports
    FailedGetResourceMetric and never scales (and the pods are BestEffort)."""
    low, high = hpa_bounds(spec)
    if not 1 <= low <= high:
        raise UsageError(
            f"autoscaling: min_replicas {low} and max_replicas {high} are not 1 <= min <= max",
            hint=f"set environments.{spec.environment}.autoscaling.max_replicas >= min_replicas",
        )
    requests = _resources(spec.resources).get("requests") or {}
    for metric in hpa_metrics(spec.autoscaling or {}):
        name = metric["resource"]["name"]
        if name not in requests:
            raise UsageError(
                f"autoscaling on {name} utilisation needs a {name} request, and "
                f"environment {spec.environment!r} sets none: the HPA could never compute utilisation",
                hint=f"set environments.{spec.environment}.resources, e.g. {{cpu: 500m, memory: 1Gi}}",
            )


def validate_pod_metadata(spec: DeploySpec) -> None:
    """The environment's pod annotations and labels: valid keys and values, none of vci's own keys."""
    for what, values in (("pod_annotations", spec.pod_annotations), ("pod_labels", spec.pod_labels)):
        for key, value in values.items():
            key_ok = isinstance(key, str) and len(key.rpartition("/")[2]) <= 63 and QUALIFIED_NAME.match(key)
            value_ok = isinstance(value, str) and (
                what == "pod_annotations" or (len(value) <= 63 and LABEL_VALUE.match(value))
            )
            if not (key_ok and value_ok):
                raise UsageError(
                    f"invalid {what} entry {key!r}: {value!r}",
                    hint="keys are [prefix/]name; values are strings (labels: at most 63 "
                    "letters, digits, '-', '_', '.'); quote values like \"true\" in vci.yaml",
                )
            if key.startswith(RESERVED_PREFIXES):
                raise UsageError(
                    f"{what} may not set {key!r}: vci sets the keys under {', '.join(RESERVED_PREFIXES)}",
                    hint=f"remove {key} from {what}",
                )


def _flat_resources(resources: dict) -> dict:
    if "requests" in resources or "limits" in resources:
        return {f"{k}.{n}": v for k in ("requests", "limits") for n, v in (resources.get(k) or {}).items()}
    return dict(resources)


def labels_for(spec: DeploySpec) -> dict[str, str]:
    """The selector labels: one app, one environment, one track (stable or canary)."""
    return {"app.kubernetes.io/name": spec.name, "vci.dev/environment": spec.environment, "vci.dev/track": spec.track}


def _common_labels(spec: DeploySpec) -> dict[str, str]:
    labels = {
        **spec.labels,
        "app.kubernetes.io/name": spec.name,
        "app.kubernetes.io/instance": spec.service_name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "vci",
        "vci.dev/environment": spec.environment,
    }
    if spec.run_id:
        labels["app.kubernetes.io/version"] = spec.run_id
    return labels


def _annotations(spec: DeploySpec, *, release: bool) -> dict[str, str]:
    notes = {ANNOTATION + "image": spec.image}
    if spec.run_id:
        notes[ANNOTATION + "run-id"] = spec.run_id
    if spec.model_digest:
        notes[ANNOTATION + "model-digest"] = spec.model_digest
    if release and spec.release_id:
        notes[ANNOTATION + "release-id"] = spec.release_id
    return notes


def _resources(resources: dict) -> dict:
    if not resources:
        return {}
    if "requests" in resources or "limits" in resources:
        return {k: dict(v) for k, v in resources.items() if k in ("requests", "limits")}
    values = {k: str(v) for k, v in resources.items()}
    return {"requests": values, "limits": dict(values)}


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def render_container(spec: DeploySpec) -> dict:
    env = {"VCI_PORT": str(PORT), "VCI_WORK_DIR": WORK_DIR, **{k: str(v) for k, v in spec.env.items()}}
    digest = spec.image.rsplit("@", 1)[1] if "@" in spec.image else ""
    if digest:
        env["VCI_IMAGE_DIGEST"] = digest
    container = {
        "name": "model",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
        "startupProbe": _probe("/readyz", 5, 60),  # slow model loads: up to 5 minutes before liveness counts
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if spec.resources:
        container["resources"] = _resources(spec.resources)
    if spec.prestop_delay:  # the kubelet waits this long before SIGTERM (a sleep action: Kubernetes >= 1.30)
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": spec.prestop_delay}}}
    return container


def grace_period(spec: DeploySpec) -> int:
    """terminationGracePeriodSeconds: the preStop delay, the server's drain after SIGTERM, and a margin."""
    drain = spec.env.get("VCI_DRAIN_TIMEOUT", SERVER_DRAIN)
    try:
        drain = float(drain)
    except (TypeError, ValueError):
        raise UsageError(f"env VCI_DRAIN_TIMEOUT={drain!r} is not a number of seconds") from None
    return spec.prestop_delay + math.ceil(drain) + KILL_MARGIN


def render_deployment(spec: DeploySpec) -> dict:
    selector = labels_for(spec)
    template_notes = {
        **spec.pod_annotations,
        **_annotations(spec, release=False),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
    }
    pod_spec = {
        "containers": [render_container(spec)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "terminationGracePeriodSeconds": grace_period(spec),
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": int(USER),
            "runAsGroup": int(USER),
            "fsGroup": int(USER),
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": spec.image_pull_secret}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": spec.object_name,
            "namespace": spec.namespace,
            "labels": {**_common_labels(spec), "vci.dev/track": spec.track},
            "annotations": _annotations(spec, release=True),
        },
        "spec": {
            **({} if spec.autoscaling else {"replicas": spec.replicas}),  # with an HPA, the HPA owns replicas
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": spec.progress_deadline,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": {**spec.pod_labels, **_common_labels(spec), **selector},
                    "annotations": template_notes,
                },
                "spec": pod_spec,
            },
        },
    }


def render_service(spec: DeploySpec) -> dict:
    selector = {k: v for k, v in labels_for(spec).items() if k != "vci.dev/track"}  # stable and canary pods
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.service_name, "namespace": spec.namespace, "labels": _common_labels(spec)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def hpa_bounds(spec: DeploySpec) -> tuple[int, int]:
    """(minReplicas, maxReplicas): given, else the environment's replicas and four times that."""
    auto = spec.autoscaling or {}
    return (int(auto.get("min_replicas", spec.replicas or 1)), int(auto.get("max_replicas", max(spec.replicas, 1) * 4)))


def hpa_metrics(auto: dict) -> list[dict]:
    """Utilisation targets for cpu and memory as given, else cpu at 80 %."""
    targets = {name: int(auto[name]) for name in ("cpu", "memory") if auto.get(name)} or {"cpu": 80}
    return [
        {"type": "Resource", "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": value}}}
        for name, value in targets.items()
    ]


def render_hpa(spec: DeploySpec) -> dict | None:
    if not spec.autoscaling:
        return None
    low, high = hpa_bounds(spec)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": spec.object_name, "namespace": spec.namespace, "labels": _common_labels(spec)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.object_name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": hpa_metrics(spec.autoscaling),
        },
    }


def canary_replicas(stable: int, weight: int) -> int:
    """Canary pods giving about ``weight`` % of a Service's endpoints beside ``stable`` pods (at least 1)."""
    if weight >= 100:
        return max(stable, 1)
    return max(1, round(max(stable, 1) * weight / (100 - weight)))


def render_pdb(spec: DeploySpec) -> dict | None:
    """At most one stable pod disrupted at a time; pods that are not Ready may always be evicted
    (``unhealthyPodEvictionPolicy: AlwaysAllow``): with the default, IfHealthyBudget, a release whose
    pods never become Ready holds the budget at zero and blocks every node drain."""
    floor = int((spec.autoscaling or {}).get("min_replicas", spec.replicas))
    if floor <= 1 or spec.track != "stable":
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": spec.object_name, "namespace": spec.namespace, "labels": _common_labels(spec)},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels_for(spec)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def validate_canary_name(spec: DeploySpec) -> None:
    """Refuse, before a canary release copies or deploys anything, a canary Deployment name
    (``<project>-<environment>-canary``) that is not a DNS label of at most 63 characters.

    The API server takes Deployment names up to 253 characters (a DNS subdomain) and fits what derives
    from them (ReplicaSet ``<deployment>-<hash>``, pods ``<replicaset>-<5 random>`` with the base cut to
    58 characters); vci keeps every object name a DNS label, as its stable names must be (the Service
    name and the ``app.kubernetes.io/instance`` label value are limited to 63) and as the Kubernetes
    documentation recommends for Deployments (Pod hostnames)."""
    name = DeploySpec(**{**spec.__dict__, "track": "canary"}).object_name
    if len(name) > 63 or not DNS_LABEL.match(name):
        raise UsageError(
            f"the canary Deployment would be named {name!r} ({len(name)} characters): Kubernetes object names "
            "vci creates are DNS labels of at most 63 characters",
            hint="shorten the project or environment name (the canary adds '-canary'), or promote with "
            "--strategy direct",
        )


APPLY_ORDER = ("Service", "PodDisruptionBudget", "Deployment", "HorizontalPodAutoscaler")


def apply_order(objects: list[dict]) -> list[dict]:
    """What a Deployment needs first (its Service, its disruption budget), what acts on it (the HPA) last."""
    return sorted(objects, key=lambda o: APPLY_ORDER.index(o["kind"]))


def render(spec: DeploySpec) -> list[dict]:
    """Validate ``spec`` and render its objects in apply order."""
    validate_spec(spec)
    objects = [render_deployment(spec), render_service(spec), render_hpa(spec), render_pdb(spec)]
    return [o for o in objects if o is not None]


def to_yaml(objects: list[dict]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)
