"""A Kubernetes API server for tests: real HTTP(S), tokens, denials, resourceVersions, watches, controllers.

No kube-apiserver can run here, so this package plays one faithfully enough that the official ``kubernetes``
client and ``kubectl`` work against it and meet the same refusals as in production::

    from fakes.kube import start_kube_server, Forbid     # tests/ is on sys.path for packages under tests/

    server = start_kube_server(tls=True, forbid=[Forbid(verb="delete", resource="deployments")])
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", context="test")
    ...                                   # kubernetes.config.new_client_from_config(str(kubeconfig), "test")
    server.stop()

Modules (each documents its rules): server.py (lifecycle, TLS via openssl, kubeconfig), handler.py (HTTP, auth 401,
Forbid 403, discovery, watch streaming), rbac.py (the RBAC authorizer over Roles and bindings), api.py (verbs, patch
types, server-side apply, scale, log), store.py (resourceVersion, generation, conflicts, finalizers, watch
history/410), validation.py, quantity.py, names.py, networkpolicy.py, ingress.py and gotypes.py (422/400 like the
real server), defaults.py, selectors.py, patch.py, controller.py, deployment.py and rollout_status.py
(deployment/replicaset controllers, garbage collection), pods.py (simulated pods: image markers
``broken``/``unready``/``nonexistent`` or env ``FAKE_KUBE_BEHAVIOUR``), processes.py (real processes through a
runner, probes, restarts, host port annotation ``fake.kube.vci.dev/host-port``), volumes.py (configMap and secret
volumes of process pods, updated in place as the kubelet does), network.py and podnet.py (process pods reach
Services by name and cluster IP), crds.py (CustomResourceDefinitions: a CRD stored serves its resource, validated
against its schema), proxy.py (service/pod proxy),
autoscaler.py (HPA min/max without metrics), disruption.py (PDB status and the pod eviction subresource), tables.py
(kubectl's Table output), events.py.

Pods terminate gracefully (store.py, pods.py: preStop sleep, SIGTERM, SIGKILL after the grace period), and
leave the service proxy's endpoints ``endpoint_lag`` seconds after their deletion (proxy.py); admission.py
enforces Pod Security levels and ResourceQuotas on pod creates.

Not modelled: openapi (kubectl needs ``--validate=false``), aggregated discovery, protobuf, list
``limit``/``continue`` paging (lists come whole), minReadySeconds, LimitRanges and admission webhooks,
metrics.
"""

from __future__ import annotations

from .rbac import Rbac
from .routes import Forbid
from .server import DEFAULT_TOKEN, DEFAULT_USER, KubeServer

__all__ = ["start_kube_server", "KubeServer", "Forbid", "Rbac", "DEFAULT_TOKEN", "DEFAULT_USER"]


def start_kube_server(
    *,
    tls: bool = False,
    tokens: dict | None = None,
    forbid=(),
    backend: str = "simulated",
    runner=None,
    namespaces=("default",),
    ready_delay: float = 0.3,
    time_scale: float = 0.1,
    tick: float = 0.05,
    history: int = 2000,
    watch_limit: float = 60.0,
    workdir=None,
    tls_server_name: str | None = None,
    rbac=None,
    endpoint_lag: float = 1.0,
) -> KubeServer:
    """Start a fake API server on 127.0.0.1 (a free port); call ``.stop()`` (or use ``with``) to end it.

    ``tokens`` maps bearer token -> user name (default ``{DEFAULT_TOKEN: DEFAULT_USER}``); ``forbid`` is a
    list of ``Forbid`` rules (403); ``backend`` is ``simulated`` or ``process`` (with ``runner``);
    ``time_scale`` compresses probe periods of process pods (0.1: a 10 s period is 1 s); ``ready_delay`` is
    how long a simulated pod takes to become Ready; ``namespaces`` exist from the start; ``history`` bounds
    the watch history (older resourceVersions: 410); ``tls_server_name`` (with ``tls``) makes the certificate
    valid for that name only, and the kubeconfig carries it as ``tls-server-name``; ``rbac`` (an ``Rbac`` of
    Roles and bindings) denies every request its rules do not grant, as the real RBAC authorizer;
    ``endpoint_lag`` is how long a terminating pod still receives traffic through the service proxy.
    """
    return KubeServer(
        tls=tls,
        tokens=tokens,
        forbid=forbid,
        backend=backend,
        runner=runner,
        namespaces=namespaces,
        ready_delay=ready_delay,
        time_scale=time_scale,
        tick=tick,
        history=history,
        watch_limit=watch_limit,
        workdir=workdir,
        tls_server_name=tls_server_name,
        rbac=rbac,
        endpoint_lag=endpoint_lag,
    ).start()
