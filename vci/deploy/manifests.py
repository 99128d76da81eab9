"""Pure rendering of the Kubernetes objects that run a model image: Deployment, Service, HPA, PDB, NetworkPolicy
and, where the environment asks, an Ingress and a ServiceMonitor; and a shadow's stack (vci.deploy.kubeshadow).

What a platform team expects of a workload is rendered whether or not the environment asks (kube-linter's
default checks are the list): CPU and memory requests and a memory limit (DEFAULT_RESOURCES where
``resources`` says nothing), pods spread over nodes (a preferred anti-affinity), and a NetworkPolicy
admitting the model port only from the namespace's pods, or from what ``network_policy`` names.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field

from ..build.plan import PORT, USER
from ..envrules import AUTH_MOUNT
from ..errors import UsageError
from ..kubevalues import (
    DNS_1035,
    DNS_LABEL,
    GPU,
    GPU_RESOURCE,
    affinity_problem,
    gpu_resource_problem,
    ingress_problem,
    is_dns_subdomain,
    metadata_problem,
    network_policy_problem,
    node_selector_problem,
    object_name_problem,
    resources_problem,
    tolerations_problem,
)
from ..refs import digest_of

DIGEST_REF = re.compile(r"@sha256:[0-9a-f]{64}$")
ANNOTATION = "vci.dev/"
WORK_DIR = "/tmp/vci-work"
SERVER_DRAIN = 25  # seconds the model server gives in-flight requests after SIGTERM (VCI_DRAIN_TIMEOUT's default)
KILL_MARGIN = 5  # seconds between the end of that drain and the kubelet's SIGKILL
DEFAULT_RESOURCES = {"cpu": "250m", "memory": "512Mi"}  # requests, and the memory limit, when none is given
SPREAD_KEY = "kubernetes.io/hostname"  # replicas prefer distinct nodes
SHADOW_MOUNT = "/etc/vci/shadow"  # where stable pods mount the shadow's ConfigMap (optional: absent, no mirror)
SHADOW_KEY = "shadow.json"  # its one key: the mirror's config (vci.serve.shadow)


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
    pods_release_id: str | None = None  # the pods' VCI_RELEASE_ID (their metrics' label) when not release_id
    track: str = "stable"
    progress_deadline: int = 600  # progressDeadlineSeconds: a rollout without progress this long has failed
    prestop_delay: int = 5  # seconds a terminating pod keeps serving while the endpoint removal propagates
    allow_tag: bool = False
    image_pull_secret: str | None = None  # a Secret (kubernetes.io/dockerconfigjson) in the namespace
    pod_annotations: dict = field(default_factory=dict)  # added to the pod template (a mesh, Vault, ...)
    pod_labels: dict = field(default_factory=dict)
    network_policy: bool | dict = True  # True: ingress from the namespace's pods; a dict names the sources
    auth_secret: str | None = None  # the Secret of bearer tokens, mounted whole at AUTH_MOUNT (vci.serve.auth)
    ingress: dict = field(default_factory=dict)  # {host, class, tls_secret, path}; {}: no Ingress
    service_monitor: bool | dict = False  # True or {interval, labels}: a Prometheus Operator ServiceMonitor
    gpu_resource: str = GPU_RESOURCE  # the extended resource resources' gpu is asked for by
    node_selector: dict = field(default_factory=dict)  # the pod's nodeSelector
    tolerations: list = field(default_factory=list)  # the pod's tolerations (e.g. of a GPU node pool's taint)
    affinity: dict = field(default_factory=dict)  # nodeAffinity, podAffinity, podAntiAffinity, beside vci's spread
    priority_class: str | None = None  # priorityClassName
    service_account: str | None = None  # serviceAccountName (its token still unmounted: vci's server needs none)

    @property
    def object_name(self) -> str:
        base = f"{self.name}-{self.environment}"
        return base if self.track == "stable" else f"{base}-{self.track}"

    @property
    def service_name(self) -> str:
        """The environment's Service (stable and canary pods); a shadow's own is ``<name>-<env>-shadow``."""
        base = f"{self.name}-{self.environment}"
        return f"{base}-shadow" if self.track == "shadow" else base

    @property
    def shadow_config_name(self) -> str:
        """The ConfigMap that turns the stable pods' mirror on (vci.serve.shadow reads its key as a file)."""
        return f"{self.name}-{self.environment}-shadow"


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
    if secret is not None and not is_dns_subdomain(secret):
        raise UsageError(
            f"invalid image pull secret name {secret!r}",
            hint="name a Secret in the namespace: lower-case letters, digits, '-' and '.'",
        )
    if not DIGEST_REF.search(spec.image) and not spec.allow_tag:
        raise UsageError(
            f"{spec.image} names a tag, not a digest",
            hint="deploy REPO@sha256:... (what `vci package` prints), or pass --allow-tag",
        )
    for what, problem in (
        ("resources", resources_problem(spec.resources)),
        ("network_policy", network_policy_problem(spec.network_policy)),
        ("ingress", ingress_problem(spec.ingress)),
        *placement_problems(spec),
    ):
        if problem:
            raise UsageError(f"invalid {what}: {problem}", hint=f"fix environments.{spec.environment}.{what}")
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


def placement_of(env) -> dict:
    """The DeploySpec fields of an Environment's hardware and placement settings (vci.config)."""
    return {
        "gpu_resource": env.gpu_resource or GPU_RESOURCE,
        "node_selector": env.node_selector,
        "tolerations": env.tolerations or [],
        "affinity": env.affinity,
        "priority_class": env.priority_class,
        "service_account": env.service_account,
    }


def placement_problems(spec: DeploySpec) -> list[tuple[str, str | None]]:
    """What is wrong with each placement setting (None where nothing is), as validate_spec reports them."""
    names = (("priority_class", spec.priority_class), ("service_account", spec.service_account))
    return [
        ("gpu_resource", gpu_resource_problem(spec.gpu_resource)),
        ("node_selector", node_selector_problem(spec.node_selector)),
        ("tolerations", tolerations_problem(spec.tolerations)),
        ("affinity", affinity_problem(spec.affinity)),
        *((what, object_name_problem(name)) for what, name in names if name is not None),
    ]


def validate_autoscaling(spec: DeploySpec) -> None:
    """An HPA that can work: bounds in order (utilisation always has a request to divide by: the
    environment's, or DEFAULT_RESOURCES)."""
    low, high = hpa_bounds(spec)
    if not 1 <= low <= high:
        raise UsageError(
            f"autoscaling: min_replicas {low} and max_replicas {high} are not 1 <= min <= max",
            hint=f"set environments.{spec.environment}.autoscaling.max_replicas >= min_replicas",
        )


def validate_pod_metadata(spec: DeploySpec) -> None:
    """The environment's labels, pod annotations and pod labels: valid keys and values, none of vci's own."""
    for what, values in (
        ("labels", spec.labels),
        ("pod_annotations", spec.pod_annotations),
        ("pod_labels", spec.pod_labels),
    ):
        for key, value in values.items():
            problem = metadata_problem(key, value, label=what != "pod_annotations")
            if problem:
                raise UsageError(f"{what}: {problem}", hint=f"fix environments.{spec.environment}.{what}")


def labels_for(spec: DeploySpec) -> dict[str, str]:
    """The selector labels: one app, one environment, one track (stable or canary). A shadow's pods are
    ``vci.dev/shadow-of`` the environment instead: the environment's Service (an equality selector) must
    not send them live traffic."""
    group = "vci.dev/shadow-of" if spec.track == "shadow" else "vci.dev/environment"
    return {"app.kubernetes.io/name": spec.name, group: spec.environment, "vci.dev/track": spec.track}


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


def _metadata(spec: DeploySpec) -> dict:
    """The metadata of an object that goes with the environment's Deployment (HPA, PDB, NetworkPolicy)."""
    return {"name": spec.object_name, "namespace": spec.namespace, "labels": _common_labels(spec)}


def _annotations(spec: DeploySpec, *, release: bool) -> dict[str, str]:
    notes = {ANNOTATION + "image": spec.image}
    if spec.run_id:
        notes[ANNOTATION + "run-id"] = spec.run_id
    if spec.model_digest:
        notes[ANNOTATION + "model-digest"] = spec.model_digest
    if release and spec.release_id:
        notes[ANNOTATION + "release-id"] = spec.release_id
    return notes


def container_resources(resources: dict, gpu_resource: str = GPU_RESOURCE) -> tuple[dict, list[str]]:
    """The container's requests and limits, and which of them are DEFAULT_RESOURCES (``requests.cpu``...).

    ``{cpu, memory}`` sets requests and limits alike; ``{requests, limits}`` each as given. What is left out
    is filled so that every container has CPU and memory requests and a memory limit: a missing request
    takes its limit (as the API server defaults it) or the default; a missing memory limit is the memory
    request. No CPU limit is added: a latency-bound server throttled by its CFS quota gains its neighbours
    nothing its request does not already reserve. ``gpu: N`` is the limit of ``gpu_resource`` (an extended
    resource's request is its limit: the API server sets it)."""
    if "requests" in resources or "limits" in resources:
        given = {k: {n: str(v) for n, v in (resources.get(k) or {}).items()} for k in ("requests", "limits")}
    else:
        values = {k: str(v) for k, v in resources.items() if k != GPU}
        given = {"requests": values, "limits": {**values, **({GPU: str(resources[GPU])} if GPU in resources else {})}}
    requests, limits, defaulted = given["requests"], given["limits"], []
    if GPU in limits:
        limits[gpu_resource] = limits.pop(GPU)
    for name, default in DEFAULT_RESOURCES.items():
        if name not in requests:
            requests[name] = limits.get(name, default)
            defaulted += [] if name in limits else [f"requests.{name}={default}"]
    if "memory" not in limits:
        limits["memory"] = requests["memory"]
        defaulted.append(f"limits.memory={limits['memory']}")
    return {"requests": requests, "limits": limits}, defaulted


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def render_container(spec: DeploySpec) -> dict:
    env = {"VCI_PORT": str(PORT), "VCI_WORK_DIR": WORK_DIR, **{k: str(v) for k, v in spec.env.items()}}
    digest = digest_of(spec.image) or ""
    if digest:
        env["VCI_IMAGE_DIGEST"] = digest
    release = spec.release_id if spec.pods_release_id is None else spec.pods_release_id
    if release:  # the metrics' release label ("": pods started before vci set it keep none; kube.pods_release)
        env["VCI_RELEASE_ID"] = release
    if spec.track != "stable":  # the metrics' track label (stable pods keep the template they had)
        env["VCI_TRACK"] = spec.track
    else:  # a shadow release turns the mirror on and off through a mounted ConfigMap: no restart
        env["VCI_SHADOW_CONFIG"] = f"{SHADOW_MOUNT}/{SHADOW_KEY}"
    container = {
        "name": "model",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
        "startupProbe": _probe("/readyz", 5, 60),  # slow model loads: up to 5 minutes before liveness counts
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
        + ([{"name": "auth", "mountPath": AUTH_MOUNT, "readOnly": True}] if spec.auth_secret else [])
        + ([{"name": "shadow", "mountPath": SHADOW_MOUNT, "readOnly": True}] if spec.track == "stable" else []),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    container["resources"] = container_resources(spec.resources, spec.gpu_resource)[0]
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


def pod_volumes(spec: DeploySpec) -> list[dict]:
    """An emptyDir /tmp (the root is read-only), the auth Secret when there is one (owner-read only), and for
    stable pods the shadow's ConfigMap, optional: the kubelet updates a mounted ConfigMap in place (and fills
    an optional one once it exists), so a shadow starts and ends without restarting production's pods."""
    volumes: list[dict] = [{"name": "tmp", "emptyDir": {}}]
    if spec.auth_secret:
        volumes.append({"name": "auth", "secret": {"secretName": spec.auth_secret, "defaultMode": 0o440}})
    if spec.track == "stable":
        volumes.append({"name": "shadow", "configMap": {"name": spec.shadow_config_name, "optional": True}})
    return volumes


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
        "affinity": pod_affinity(spec),
        "volumes": pod_volumes(spec),
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
    pod_spec.update(placement(spec))
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
                "metadata": {"labels": pod_labels(spec), "annotations": template_notes},
                "spec": pod_spec,
            },
        },
    }


def pod_labels(spec: DeploySpec) -> dict[str, str]:
    """The pod template's labels: the environment's, vci's own and the selector's (a shadow's pods without
    ``vci.dev/environment``, which the environment's Service selects)."""
    labels = {**spec.pod_labels, **_common_labels(spec), **labels_for(spec)}
    if spec.track == "shadow":
        labels.pop("vci.dev/environment")
    return labels


def placement(spec: DeploySpec) -> dict:
    """The pod spec's nodeSelector, tolerations, priorityClassName and serviceAccountName, where set."""
    fields = {
        "nodeSelector": dict(spec.node_selector),
        "tolerations": [dict(t) for t in spec.tolerations],
        "priorityClassName": spec.priority_class,
        "serviceAccountName": spec.service_account,
    }
    return {key: value for key, value in fields.items() if value}


def pod_affinity(spec: DeploySpec) -> dict:
    """The environment's affinity with vci's spread term added to its preferred pod anti-affinity."""
    affinity = copy.deepcopy(spec.affinity)
    anti = affinity.setdefault("podAntiAffinity", {})
    anti["preferredDuringSchedulingIgnoredDuringExecution"] = [
        *anti.get("preferredDuringSchedulingIgnoredDuringExecution", []),
        spread(spec),
    ]
    return affinity


def spread(spec: DeploySpec) -> dict:
    """A preferred anti-affinity term: the environment's pods (stable and canary) on distinct nodes where
    the scheduler can, so that one node going down takes one replica, not all (kube-linter's no-anti-affinity);
    preferred, not required, so a small cluster still schedules every replica."""
    return {
        "weight": 100,
        "podAffinityTerm": {"labelSelector": {"matchLabels": environment_pods(spec)}, "topologyKey": SPREAD_KEY},
    }


def environment_pods(spec: DeploySpec) -> dict[str, str]:
    """The labels of every pod of the environment, stable and canary: what the Service selects (for a
    shadow's spec, its pods: what its own Service selects)."""
    return {k: v for k, v in labels_for(spec).items() if k != "vci.dev/track"}


def render_service(spec: DeploySpec) -> dict:
    selector = environment_pods(spec)  # stable and canary pods
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


def render_service_monitor(spec: DeploySpec) -> dict | None:
    """A Prometheus Operator ServiceMonitor scraping /metrics of the environment's pods (stable and canary,
    through the Service's port ``http``; the server labels its series with release and track), or None
    when the environment has none. ``labels`` go on it, for a Prometheus's ``serviceMonitorSelector``."""
    if not spec.service_monitor or spec.track != "stable":
        return None
    options = spec.service_monitor if isinstance(spec.service_monitor, dict) else {}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": spec.service_name,
            "namespace": spec.namespace,
            "labels": {**_common_labels(spec), **options.get("labels", {})},
        },
        "spec": {
            "selector": {"matchLabels": environment_pods(spec) | {"app.kubernetes.io/instance": spec.service_name}},
            "namespaceSelector": {"matchNames": [spec.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": options.get("interval", "30s")}],
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
        "metadata": _metadata(spec),
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
        "metadata": _metadata(spec),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels_for(spec)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def validate_canary_name(spec: DeploySpec, track: str = "canary") -> None:
    """Refuse, before a canary (or shadow: ``track``) release copies or deploys anything, its Deployment name
    (``<project>-<environment>-canary``) that is not a DNS label of at most 63 characters.

    The API server takes Deployment names up to 253 characters (a DNS subdomain) and fits what derives
    from them (ReplicaSet ``<deployment>-<hash>``, pods ``<replicaset>-<5 random>`` with the base cut to
    58 characters); vci keeps every object name a DNS label, as its stable names must be (the Service
    name and the ``app.kubernetes.io/instance`` label value are limited to 63) and as the Kubernetes
    documentation recommends for Deployments (Pod hostnames)."""
    name = DeploySpec(**{**spec.__dict__, "track": track}).object_name
    if len(name) > 63 or not DNS_LABEL.match(name):
        raise UsageError(
            f"the {track} Deployment would be named {name!r} ({len(name)} characters): Kubernetes object names "
            "vci creates are DNS labels of at most 63 characters",
            hint=f"shorten the project or environment name (the {track} adds '-{track}'), or promote with "
            "--strategy direct",
        )


def network_peers(policy: bool | dict) -> list[dict]:
    """Who may reach the model port: the pods of the namespace, unless ``policy`` names the sources (each
    a peer of its own: pods with ``from_pod_labels`` in the namespace, every pod of ``from_namespaces``,
    addresses in ``from_cidrs``, e.g. the control plane's for the API server's proxy)."""
    named = policy if isinstance(policy, dict) else {}
    peers: list[dict] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
        for name in named.get("from_namespaces") or []
    ]
    if named.get("from_pod_labels"):
        peers.append({"podSelector": {"matchLabels": {k: str(v) for k, v in named["from_pod_labels"].items()}}})
    peers += [{"ipBlock": {"cidr": str(cidr)}} for cidr in named.get("from_cidrs") or []]
    return peers or [{"podSelector": {}}]


def render_network_policy(spec: DeploySpec) -> dict | None:
    """Ingress to the environment's pods (stable and canary) only on the model port and only from
    ``network_peers``; other traffic to them is dropped where the cluster's network plugin enforces
    policies. None when the environment opts out (``network_policy: false``) or for a canary's objects
    (the stable policy selects its pods); a shadow's pods have one of their own, which also admits the
    environment's stable pods (they mirror to it) whatever ``network_policy`` names."""
    if spec.network_policy is False or spec.track == "canary":
        return None
    peers = network_peers(spec.network_policy)
    if spec.track == "shadow":
        stable = {"app.kubernetes.io/name": spec.name, "vci.dev/environment": spec.environment}
        peers = [*peers, {"podSelector": {"matchLabels": stable}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec),
        "spec": {
            "podSelector": {"matchLabels": environment_pods(spec)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": PORT}]}],
        },
    }


def render_ingress(spec: DeploySpec) -> dict | None:
    """HTTP(S) from outside the cluster to the environment's Service (port ``http``) for ``host`` and the
    paths under ``path`` (pathType Prefix); TLS with ``tls_secret`` when given, ``class`` choosing the
    controller. None unless the environment asks for one, and for a canary's objects (the Service behind
    the stable Ingress already takes in the canary's pods)."""
    if not spec.ingress or spec.track != "stable":
        return None
    host = spec.ingress["host"]
    backend = {"service": {"name": spec.service_name, "port": {"name": "http"}}}
    path = {"path": spec.ingress.get("path", "/"), "pathType": "Prefix", "backend": backend}
    body: dict = {"rules": [{"host": host, "http": {"paths": [path]}}]}
    if spec.ingress.get("class"):
        body = {"ingressClassName": spec.ingress["class"], **body}
    if spec.ingress.get("tls_secret"):
        body["tls"] = [{"hosts": [host], "secretName": spec.ingress["tls_secret"]}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _metadata(spec), "spec": body}


def ingress_warning(spec: DeploySpec) -> str | None:
    """What to say when an Ingress is rendered behind the default NetworkPolicy, which admits only the
    namespace's pods: an ingress controller runs in a namespace of its own, and its traffic would be dropped."""
    if not spec.ingress or spec.network_policy is not True:
        return None
    return (
        f"environments.{spec.environment}.ingress is set and network_policy admits only the pods of namespace "
        f"{spec.namespace}: where the network plugin enforces policies, the ingress controller (in its own "
        "namespace) cannot reach the model; name it, e.g. network_policy: {from_namespaces: [ingress-nginx]}"
    )


APPLY_ORDER = (
    "NetworkPolicy",
    "Service",
    "PodDisruptionBudget",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "ServiceMonitor",
)


def apply_order(objects: list[dict]) -> list[dict]:
    """What a Deployment needs first (the policy its pods start under, its Service, its disruption budget),
    what acts on it (the HPA) and what exposes it (the Ingress) or watches it (the ServiceMonitor) last."""
    return sorted(objects, key=lambda o: APPLY_ORDER.index(o["kind"]))


def render(spec: DeploySpec) -> list[dict]:
    """Validate ``spec`` and render its objects: the Deployment first, then what goes with it."""
    validate_spec(spec)
    objects = [
        render_deployment(spec),
        render_service(spec),
        render_hpa(spec),
        render_pdb(spec),
        render_network_policy(spec),
        render_ingress(spec),
    ]
    return [o for o in objects if o is not None]


def render_shadow(spec: DeploySpec) -> list[dict]:
    """A shadow's stack (``spec.track`` shadow): its Deployment, its own Service and NetworkPolicy."""
    validate_spec(spec)
    objects = [render_deployment(spec), render_service(spec), render_network_policy(spec)]
    return [o for o in objects if o is not None]


def render_shadow_config(spec: DeploySpec, config: dict) -> dict:
    """The ConfigMap whose key the stable pods read as ``VCI_SHADOW_CONFIG`` (vci.serve.shadow)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.shadow_config_name, "namespace": spec.namespace, "labels": _common_labels(spec)},
        "data": {SHADOW_KEY: json.dumps(config, sort_keys=True)},
    }


def to_yaml(objects: list[dict]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)
