"""The Kubernetes target: an environment is a Deployment (+ Service, HPA, PDB, Ingress) running an image by digest.

``deploy`` renders the objects, applies them, and with ``wait`` watches the rollout; a failed rollout
is rolled back to the previous pod template (the old ReplicaSet never stopped serving: maxUnavailable 0),
explained (pod states, events, logs) and raised as DeployError. A run id is packaged and pushed to the
environment's repository first. The model is reached through the API server's service proxy.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Iterator
from functools import cached_property, partial

from ..build import Options
from ..build.image import build
from ..build.package import package
from ..build.plan import PORT
from ..client import PROXY_TOKEN_HEADER, DeployedModel
from ..config import parse_seconds
from ..errors import (
    AuthError,
    ConfigError,
    DeployError,
    NotFoundError,
    RegistryError,
    UsageError,
    VciError,
)
from ..fetch import cache_root
from ..oci.registry import RegistryClient
from ..refs import digest_of, is_image_reference, parse_reference
from ..runs import resolve_run
from . import kubebluegreen as bluegreen
from .contract import check_contract
from .kserve import render_kserve
from .kubeapi import Cluster, _comparable, api_error, load_api_client
from .kubecanary import KubeCanary
from .kubelogs import read_logs
from .kubeproxy import proxy_session
from .kubeshadow import SHADOW_KINDS, KubeShadow, running_shadow, shadow_replicas
from .manifests import (
    DeploySpec,
    apply_order,
    container_resources,
    ingress_warning,
    labels_for,
    placement_of,
    render,
    render_deployment,
    render_service_monitor,
    to_yaml,
    validate_canary_name,
    validate_spec,
)
from .rollout import explain, wait_rollout, wait_terminated
from .target import DeployResult, LogLine, Removal, Rendering, Status, kept_view

log = logging.getLogger("vci")
PRUNED_KINDS = (
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Ingress",
    "ServiceMonitor",
)  # rendered for some settings
NEWER_KINDS = ("Ingress", "ServiceMonitor")  # a Role from before vci rendered them may not list them
OWNED_KINDS = ("Deployment", "Service", *PRUNED_KINDS)  # what undeploy removes (the canary's Deployment too)
LABEL_TIMEOUT = 10.0  # seconds `vci render` gives the registry for an image's labels (once: no retries)
SERVER_NOTES = ("deployment.kubernetes.io/", "kubectl.kubernetes.io/")  # annotations controllers and kubectl own


class KubeTarget:
    def __init__(self, settings, environment):
        self.settings = settings
        self.environment = environment
        self.namespace = environment.namespace or "default"

    @cached_property
    def cluster(self) -> Cluster:
        return Cluster(load_api_client(self.environment))

    def project(self) -> str:
        """The objects' name prefix: the project's name as a DNS label (``My_Model`` -> ``my-model``)."""
        if not self.settings.project:
            raise ConfigError(
                f"environment {self.environment.name!r} names its Kubernetes objects <project>-"
                f"{self.environment.name}, and no project is set",
                hint="set project: in vci.yaml (or VCI_PROJECT)",
            )
        return self.settings.project.lower().replace("_", "-")

    def insecure(self, flag: bool | None) -> bool | None:
        """``--insecure`` when given, else the environment's ``insecure`` (else: localhost registries only)."""
        return self.environment.insecure if flag is None else flag

    # -- what to deploy ---------------------------------------------------------------------------------
    def resolve_image(self, what, *, allow_tag: bool = False, insecure=None) -> dict:
        """``{image, run_id, model_digest}`` for an image reference or a run (packaged and pushed here)."""
        insecure = self.insecure(insecure)
        if isinstance(what, str) and is_image_reference(what):
            return {"image": what, **_labels_of(what, insecure, allow_tag)}
        repository = self.environment.repository
        if not repository:
            raise ConfigError(
                f"environment {self.environment.name!r} has no repository to push the image to",
                hint=f"set environments.{self.environment.name}.repository in vci.yaml",
            )
        run = resolve_run(self.settings, what)
        options = Options(
            push=[repository],
            base=self.environment.base_image,
            insecure=insecure,
            platform=self.environment.platform or "linux/amd64",
        )
        result = package(self.settings, run, options)
        return {"image": result["image"], "run_id": run.id, "model_digest": run.version}

    def render(self, what, *, allow_tag: bool = False, insecure=None, kserve: bool = False) -> Rendering:
        """The objects ``deploy`` would apply (for GitOps): a run is built (not pushed) to learn its digest;
        an image by digest renders offline, its run id and model digest read from the registry if it answers.
        ``kserve``: KServe's ServingRuntime and InferenceService for the image instead (vci.deploy.kserve)."""
        insecure, warnings = self.insecure(insecure), []
        if isinstance(what, str) and is_image_reference(what):
            image = {"image": what}
            if "@sha256:" in what:
                try:
                    image.update(_read_labels(parse_reference(what), insecure, retries=0, timeout=LABEL_TIMEOUT))
                except (AuthError, NotFoundError, RegistryError) as exc:
                    warnings.append(
                        f"could not read the labels of {what} (its run id and model digest): {exc.message}; "
                        "rendered without the run-id and model-digest annotations"
                    )
        else:
            image = self._built_image(what, insecure)
        spec = self.spec(image, None, allow_tag=allow_tag)
        objects = render_kserve(spec) if kserve else render(spec)
        if not kserve and (monitor := render_service_monitor(spec)) is not None:
            objects.append(monitor)
        defaults = container_resources(spec.resources)[1]
        if not kserve and (exposed := ingress_warning(spec)):
            warnings.append(exposed)
        if defaults:
            warnings.append(
                f"environments.{spec.environment}.resources leaves them unset: rendered the default "
                f"{', '.join(defaults)} (set resources: to size the model server)"
            )
        return Rendering(spec.environment, spec.namespace, spec.image, objects, defaults, warnings)

    def _built_image(self, what, insecure) -> dict:
        repository = self.environment.repository
        if not repository:
            raise ConfigError(
                f"environment {self.environment.name!r} has no repository: a run renders as the image that "
                "`vci deploy` would push there",
                hint=f"set environments.{self.environment.name}.repository, or render REPO@sha256:... "
                "(what `vci package --push` prints)",
            )
        run = resolve_run(self.settings, what)
        options = Options(
            base=self.environment.base_image, insecure=insecure, platform=self.environment.platform or "linux/amd64"
        )
        image, _ = build(run, options, cache_root() / "oci")
        return {"image": f"{repository}@{image.digest}", "run_id": run.id, "model_digest": run.version}

    def spec(
        self,
        image: dict,
        release_id: str | None,
        *,
        track: str = "stable",
        allow_tag: bool = False,
        replicas: int | None = None,
    ) -> DeploySpec:
        env = self.environment
        return DeploySpec(
            name=self.project(),
            environment=env.name,
            namespace=self.namespace,
            image=image["image"],
            replicas=env.replicas if replicas is None else replicas,
            resources=env.resources,
            autoscaling=env.autoscaling or None if track == "stable" else None,
            env=env.server_env,
            labels=env.labels,
            run_id=image.get("run_id"),
            model_digest=image.get("model_digest"),
            release_id=release_id,
            track=track,
            allow_tag=allow_tag,
            image_pull_secret=env.image_pull_secret,
            pod_annotations=env.pod_annotations,
            pod_labels=env.pod_labels,
            network_policy=True if env.network_policy is None else env.network_policy,
            auth_secret=(env.auth or {}).get("secret"),
            ingress=env.ingress,
            service_monitor=env.service_monitor or False,
            **_lifecycle(env),
            **placement_of(env),
        )

    # -- verbs ------------------------------------------------------------------------------------------
    def deploy(
        self,
        what,
        *,
        release_id: str,
        wait: bool = True,
        timeout: float | None = None,
        dry_run: bool = False,
        allow_tag: bool = False,
        insecure=None,
    ) -> DeployResult:
        """Validate everything (vci, then the server by dry run), apply what changed, wait, prune.

        ``timeout`` bounds the wait only when given: a rollout fails once it stops progressing. Any failure
        after the first write puts every written object back as it was (deleting what did not exist), so a
        failed deploy leaves the cluster as it found it."""
        image = self.resolve_image(what, allow_tag=allow_tag, insecure=insecure)
        spec = self.spec(image, release_id, allow_tag=allow_tag)
        if not dry_run:
            bluegreen.settle(self, timeout)  # a blue-green release's window ends with the next release
        if exposed := ingress_warning(spec):
            log.warning("%s", exposed)
        spec, objects, lives, planned = self._planned(spec)
        live = lives[_key(objects[0])]
        result = partial(
            DeployResult,
            environment=spec.environment,
            digest=digest_of(spec.image),
            image=spec.image,
            run_id=spec.run_id,
            endpoint=self.endpoint(spec),
            previous=_live_image(live),
        )
        stale = self.stale_objects(spec, objects)
        if not any(planned.values()) and not stale:
            return result(status="unchanged", release_id=_annotation(live, "release-id"), dry_run=dry_run)
        if dry_run:
            return result(
                status="would-deploy",
                release_id=None,
                dry_run=True,
                diff=diff_objects(objects, lives, planned),
                prune=[_key(o) for o in stale],
            )
        first = [o for o in stale if o["kind"] == "HorizontalPodAutoscaler"]  # it would fight the new replicas
        writes = [o for o in apply_order(objects) if planned[_key(o)]]
        changes = self._apply_all(spec, first, writes, lives, wait, timeout)
        for obj in stale:
            if obj not in first:  # a disruption budget goes only once the rollout is done
                changes[_key(obj)] = (
                    "deleted" if self.cluster.delete(obj["kind"], _name(obj), spec.namespace) else "gone"
                )
        return result(status="deployed" if wait else "applied", release_id=release_id, changes=changes)

    def _service_monitor(self, spec: DeploySpec) -> list[dict]:
        """The ServiceMonitor to apply with the environment's objects (none unless asked); a clear error when
        the cluster does not serve the Prometheus Operator's ServiceMonitor (its CRD is not installed)."""
        monitor = render_service_monitor(spec)
        if monitor is None:
            return []
        if not self.cluster.serves("ServiceMonitor"):
            raise DeployError(
                f"environments.{spec.environment}.service_monitor is set, and the cluster serves no ServiceMonitor "
                "(monitoring.coreos.com/v1): the Prometheus Operator's CRDs are not installed there; nothing was "
                "changed",
                hint="install the Prometheus Operator (or its CRDs), or remove service_monitor from the environment",
            )
        return [monitor]

    def _apply_all(
        self, spec: DeploySpec, deletes: list[dict], objects: list[dict], lives: dict, wait: bool, timeout: float | None
    ) -> dict:
        """Delete ``deletes``, apply ``objects`` in order, wait for the rollout; on any failure undo it all."""
        changes: dict[str, str] = {}
        lives = {**lives, **{_key(o): o for o in deletes}}
        try:
            for obj in deletes:
                self.cluster.delete(obj["kind"], _name(obj), spec.namespace)
                changes[_key(obj)] = "deleted"
            for obj in objects:
                changes[_key(obj)] = self.cluster.apply(obj, lives[_key(obj)])
            if wait:
                self._wait_rollout(spec.object_name, timeout, lives.get(f"Deployment/{spec.object_name}"))
                if spec.run_id is None:  # an image built elsewhere: ready, but does it serve what vci asks?
                    session = proxy_session(self.cluster.api_client.configuration)
                    check_contract(session.request, self.proxy_url(), spec.image)
        except VciError as exc:  # the same error (and exit code), saying what was put back (on its first line)
            after = self._undo([o for o in deletes + objects if _key(o) in changes], lives, timeout)
            head, newline, details = exc.message.partition("\n")
            exc.message = f"{head}; {after}{newline}{details}"
            exc.args = (exc.message,)
            exc.hint = exc.hint or f"kubectl -n {spec.namespace} describe deployment {spec.object_name}"
            raise
        return changes

    def _wait_rollout(self, name: str, timeout: float | None, before: dict | None) -> None:
        """Wait on the rollout's progress (``before``: the Deployment before the write; its conditions are stale),
        then until no pod of the previous version is left to answer."""
        outcome = wait_rollout(self.cluster, name, self.namespace, timeout=timeout, before=before)
        live = self.cluster.read("Deployment", name, self.namespace) or {}
        if not outcome.ok:
            raise DeployError(f"rollout of {name} failed: {explain(self.cluster, live, outcome)}")
        stuck = wait_terminated(self.cluster, live) if live else []  # done once no old pod answers any more
        if stuck:
            log.warning("pods of the previous version are still terminating: %s", ", ".join(stuck))

    def _undo(self, written: list[dict], lives: dict, timeout: float | None) -> str:
        """Put each written object back as it was (newest first); what was done, in words."""
        done = []
        deployment = next((o for o in written if o["kind"] == "Deployment"), None)
        failed = self.cluster.read("Deployment", _name(deployment), self.namespace) if deployment else None
        for obj in reversed(written):
            before = lives[_key(obj)]
            if before is None:
                self.cluster.delete(obj["kind"], _name(obj), self.namespace)
                done.append(f"{_key(obj)} removed")
            else:
                self.restore(before)
                done.append(f"{_key(obj)} restored")
        previous = lives[_key(deployment)] if deployment else None
        if deployment is None or previous is None:
            return ("nothing ran before: " if deployment else "") + (", ".join(done) or "nothing was written")
        back = wait_rollout(self.cluster, _name(deployment), self.namespace, timeout=timeout, before=failed)
        return f"rolled back to {_live_image(previous)}" + ("" if back.ok else f" (rollback: {back.reason})")

    def _planned(self, spec: DeploySpec) -> tuple[DeploySpec, list[dict], dict, dict]:
        """The objects to apply, what is live of each, and what an apply would change (see pods_release).

        Pods report the release that started them (VCI_RELEASE_ID, their metrics' release label): running
        pods keep theirs when this release would not restart them (the same image and settings: a
        re-release of a digest restarts no pod), and pods this release starts get its id."""
        live = self.cluster.read("Deployment", spec.object_name, spec.namespace)
        kept = pods_release(live)
        if kept is not None:
            spec = dataclasses.replace(spec, pods_release_id=kept)
        objects = render(spec) + self._service_monitor(spec)
        lives = {_key(objects[0]): live}  # the Deployment, read above
        lives |= {_key(o): self.cluster.read(o["kind"], _name(o), spec.namespace) for o in objects[1:]}
        planned = {_key(o): self.cluster.planned(o, lives[_key(o)]) for o in objects}
        after = planned[_key(objects[0])]
        if kept is not None and after is not None and live is not None and restarts(live, after):
            spec = dataclasses.replace(spec, pods_release_id=None)  # the pods are new: this release's id
            objects = render(spec) + self._service_monitor(spec)
            planned[_key(objects[0])] = self.cluster.planned(objects[0], lives[_key(objects[0])])
        return spec, objects, lives, planned

    def restore(self, previous: dict) -> None:
        """Put an object's previous spec, labels and annotations back (for a Deployment: kubectl rollout undo)."""
        meta, spec = previous["metadata"], copy.deepcopy(previous["spec"])
        if previous["kind"] == "Deployment" and self.environment.autoscaling:
            spec.pop("replicas", None)  # the HPA's count now, not the one at the previous release
        notes = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(SERVER_NOTES)}
        self.cluster.apply(
            {
                "apiVersion": previous["apiVersion"],
                "kind": previous["kind"],
                "spec": spec,
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "labels": meta.get("labels") or {},
                    "annotations": notes,
                },
            }
        )

    def stale_objects(self, spec: DeploySpec, rendered: list[dict]) -> list[dict]:
        """HPAs, PDBs, NetworkPolicies and Ingresses vci made for this environment (by their labels) that it no
        longer renders (autoscaling dropped, one replica, ``network_policy: false``, ``ingress`` removed)."""
        names = {_key(o) for o in rendered}
        owned = {
            "app.kubernetes.io/managed-by": "vci",
            "app.kubernetes.io/name": spec.name,
            "vci.dev/environment": spec.environment,
        }
        found = [{**o, "kind": kind} for kind in PRUNED_KINDS for o in self._owned(kind, spec.namespace, owned)]
        return [o for o in found if _key(o) not in names]

    def _owned(self, kind: str, namespace: str, labels: dict) -> list[dict]:
        """The ``kind`` objects with ``labels``; none for Ingress and ServiceMonitor under a Role from before vci
        rendered them (it may not list them, so it never created one: nothing to prune), instead of a refused
        deploy, and no ServiceMonitor where the cluster has no such resource (no CRD: none can exist)."""
        try:
            return self.cluster.list(kind, namespace, labels)
        except AuthError:
            if kind not in NEWER_KINDS:
                raise
            log.debug("the Role may not list %s (applied before vci rendered them): none to prune", kind)
            return []
        except NotFoundError:
            if kind != "ServiceMonitor":
                raise
            return []  # the resource itself is not served: the Prometheus Operator's CRDs are not installed

    def _named(self) -> DeploySpec:
        """A spec that only names things (objects, service, namespace): for status, undeploy and the proxy."""
        return self.spec({"image": ""}, None, allow_tag=True)

    def status(self) -> Status:
        spec = self._named()
        service = self.cluster.read("Service", spec.service_name, spec.namespace)
        switched = bluegreen.live_track(service) == bluegreen.GREEN  # a blue-green release's window
        name = bluegreen.green_name(self) if switched else spec.object_name
        live = self.cluster.read("Deployment", name, spec.namespace)
        if live is None:
            return Status(environment=spec.environment, state="not-deployed", namespace=spec.namespace)
        st = live.get("status") or {}
        want, ready = live["spec"].get("replicas", 1), st.get("availableReplicas", 0)
        canary = self.cluster.read("Deployment", f"{spec.object_name}-canary", spec.namespace)
        return Status(
            environment=spec.environment,
            state="ready" if ready >= want and want else "unready",
            namespace=spec.namespace,
            deployment=name,
            image=_live_image(live),
            digest=digest_of(_live_image(live) or ""),
            run_id=_annotation(live, "run-id"),
            release_id=_annotation(live, "release-id"),
            replicas=want,
            available=ready,
            endpoint=self.endpoint(spec),
            canary=_live_image(canary),
            shadow=running_shadow(self),
            kept=kept_view(kept, replicas=kept["replicas"]) if switched and (kept := self.kept_release()) else None,
        )

    def undeploy(self, *, dry_run: bool = False) -> Removal:
        """Delete every object of the environment (the canary's Deployment too); ``Removal.nothing`` when
        none was there. With ``dry_run`` the server checks each deletion (RBAC, admission), deleting none."""
        spec = self._named()
        live = self.cluster.read("Deployment", spec.object_name, spec.namespace)
        shadow = f"{spec.object_name}-shadow"
        names = {
            "Deployment": [spec.object_name, f"{spec.object_name}-canary", bluegreen.green_name(self), shadow],
            "Service": [spec.service_name, shadow],
            "NetworkPolicy": [spec.object_name, shadow],
            "ConfigMap": [spec.shadow_config_name],
        }
        removed = [
            f"{kind}/{name}"
            for kind in (*OWNED_KINDS, "ConfigMap")
            for name in names.get(kind, [spec.object_name])
            if self.cluster.delete(kind, name, spec.namespace, dry_run=dry_run)
        ]
        if not removed:
            return Removal.nothing(spec.environment)
        return Removal(
            environment=spec.environment,
            digest=digest_of(_live_image(live) or ""),
            release_id=_annotation(live, "release-id"),
            status="would-remove" if dry_run else "removed",
            dry_run=dry_run or None,
            objects=removed,
        )

    def endpoint(self, spec: DeploySpec) -> str:
        return f"http://{spec.service_name}.{spec.namespace}.svc.cluster.local"

    def proxy_url(self) -> str:
        spec = self._named()
        host = self.cluster.api_client.configuration.host.rstrip("/")
        return f"{host}/api/v1/namespaces/{spec.namespace}/services/{spec.service_name}:http/proxy"

    def client(self, **options):
        """A DeployedModel that goes through the API server's service proxy with the kubeconfig's credentials;
        the model server's own token (VCI_TOKEN) travels in X-Vci-Authorization, which the proxy passes on."""
        if not self.status().deployed:
            raise NotFoundError(
                f"nothing is deployed to {self.environment.name!r}",
                hint=f"deploy first: vci deploy IMAGE@DIGEST --env {self.environment.name}",
            )
        session = proxy_session(self.cluster.api_client.configuration)
        return DeployedModel(self.proxy_url(), session=session, token_header=PROXY_TOKEN_HEADER, **options)

    def logs(self, *, since: float | None = None, tail: int | None = None, follow: bool = False) -> Iterator[LogLine]:
        """The log lines of the Deployment's pods (prefixed by pod), in time order; ``follow`` streams them."""
        spec = self._named()
        live = self.cluster.read("Deployment", spec.object_name, spec.namespace)
        if live is None:
            raise NotFoundError(f"nothing is deployed to {spec.environment!r} (namespace {spec.namespace})")
        return read_logs(self.cluster, live, since, tail, follow)

    # -- canary (driven by vci.release.canary): a "-canary" Deployment behind the same Service --------------
    def canary_deployment(self, image: dict, release_id: str, replicas: int) -> dict:
        """The canary Deployment (pure): labelled track=canary, so the Service's selector takes it in."""
        spec = self.spec(image, release_id, track="canary", replicas=replicas)
        validate_spec(spec)
        return render_deployment(spec)

    def check_canary(self) -> None:
        """Refuse a canary whose objects could not be named (before anything is copied or deployed)."""
        validate_canary_name(self._named())

    def start_canary(self, what, *, release_id: str, timeout: float | None = None) -> KubeCanary:
        """Start ``what`` (an image by digest) as a one-replica canary beside the stable Deployment."""
        bluegreen.settle(self, timeout)  # a canary needs the Service selecting every track
        canary = KubeCanary(self, self.resolve_image(what), release_id, timeout)
        canary.scale(1)
        return canary

    def scrape(self, track: str) -> dict[str, str]:
        """Each pod's /metrics through the API server's pod proxy; a pod that does not answer (not serving
        yet, or gone) is left out of this scrape, and its counters stay as last seen."""
        from kubernetes.client.rest import ApiException

        selector = ",".join(f"{k}={v}" for k, v in labels_for(self.spec({"image": "x"}, None, track=track)).items())
        try:
            pods = self.cluster.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        except ApiException as exc:
            raise api_error(exc, f"list pods in {self.namespace}") from exc
        texts = {}
        for pod in pods:
            try:
                texts[pod.metadata.name] = self.cluster.core.connect_get_namespaced_pod_proxy_with_path(
                    f"{pod.metadata.name}:{PORT}", self.namespace, "metrics", _preload_content=False
                ).data.decode("utf-8", "replace")
            except ApiException as exc:
                if exc.status in (401, 403):  # no right to read metrics: no judgment is possible
                    raise api_error(exc, f"get pods/proxy {pod.metadata.name}") from exc
                log.info("no metrics from %s pod %s: %s", track, pod.metadata.name, exc.reason)
        return texts

    # -- shadow (driven by vci.release.shadow): a "-shadow" stack of its own, mirrored to (vci.deploy.kubeshadow) --
    def start_shadow(self, what, *, release_id: str, fraction: float, timeout: float | None = None) -> KubeShadow:
        """Start ``what`` (an image by digest) as a shadow beside the stable Deployment, sized for ``fraction``
        of its traffic; the mirror stays off until the handle's ``mirror`` turns it on."""
        validate_canary_name(self._named(), "shadow")
        stable = self.cluster.read("Deployment", self._named().object_name, self.namespace) or {}
        volumes = ((stable.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
        if not any((v.get("configMap") or {}).get("name") == self._named().shadow_config_name for v in volumes):
            raise DeployError(
                f"{self.environment.name!r} runs pods without the shadow's ConfigMap mount (deployed by a vci "
                "from before cluster shadows): they could not mirror; nothing was started",
                hint=f"deploy {self.environment.name!r} once with this vci (e.g. promote --strategy direct), "
                "then shadow",
            )
        shadow = KubeShadow(self, self.resolve_image(what), release_id, timeout)
        shadow.start(shadow_replicas((stable.get("spec") or {}).get("replicas", 1), fraction))
        return shadow

    def remove_shadow(self) -> None:
        """Turn the mirror off (its ConfigMap) and delete the shadow's stack; the stable objects are untouched."""
        spec = self._named()
        self.cluster.delete("ConfigMap", spec.shadow_config_name, self.namespace)
        for kind in SHADOW_KINDS:
            self.cluster.delete(kind, f"{spec.object_name}-shadow", self.namespace)

    def canary_status(self) -> dict | None:
        return self.cluster.read(
            "Deployment", self.spec({"image": "x"}, None, track="canary").object_name, self.namespace
        )

    def remove_canary(self) -> None:
        """Delete the canary Deployment if there is one (the stable one is untouched)."""
        self.cluster.delete("Deployment", self.spec({"image": "x"}, None, track="canary").object_name, self.namespace)

    # -- blue-green (driven by vci.release.bluegreen): a "-green" Deployment, the Service switched to it ------
    def start_green(self, what, *, release_id: str, timeout: float | None = None) -> bluegreen.KubeGreen:
        """Start ``what`` as the candidate's whole stack (production's replicas) beside production, the
        Service pinned to production's pods first so that no live request reaches it."""
        image = self.resolve_image(what)
        bluegreen.settle(self, timeout)
        bluegreen.route(self, bluegreen.STABLE)
        green = bluegreen.KubeGreen(self, image, release_id, timeout)
        green.start()
        return green

    def remove_green(self) -> None:
        """Delete the candidate's Deployment and unpin the Service (production untouched)."""
        self.cluster.delete("Deployment", bluegreen.green_name(self), self.namespace)
        service = self.cluster.read("Service", self._named().service_name, self.namespace)
        if bluegreen.live_track(service) == bluegreen.STABLE:
            bluegreen.route(self, None)

    def switch_to_green(self, keep: float, scale_down: bool = False) -> dict:
        return bluegreen.switch_to_green(self, keep, scale_down)

    def switch_back(self, keep: float) -> dict:
        """Blue again (the switched-away-from green is deleted: its pods drain as terminating pods do)."""
        return bluegreen.switch_back(self)

    def kept_release(self) -> dict | None:
        return bluegreen.kept_release(self)


def diff_objects(desired: list[dict], live: dict, planned: dict) -> str:
    """A unified diff of what is live against what the server says an apply would leave (fields vci compares)."""
    import difflib

    out: list[str] = []
    for obj in desired:
        key = _key(obj)
        if planned.get(key) is None:
            continue
        before = to_yaml([_comparable(live[key])]) if live.get(key) else ""
        after = to_yaml([_comparable(planned[key])])
        out.extend(
            difflib.unified_diff(before.splitlines(), after.splitlines(), f"live {key}", f"new {key}", lineterm="")
        )
    return "\n".join(out)


def _key(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _lifecycle(env) -> dict:
    """progress_deadline and prestop_delay from the environment, in whole seconds (the API's unit)."""
    out = {}
    for key in ("progress_deadline", "prestop_delay"):
        if getattr(env, key) is not None:
            out[key] = math.ceil(parse_seconds(getattr(env, key), f"environments.{env.name}.{key}"))
    return out


def _labels_of(image: str, insecure, allow_tag: bool) -> dict:
    """run id and model digest from the image's vci labels (an image not built by vci has none); DeployError
    when the registry cannot be read."""
    ref = parse_reference(image)
    if ref.digest is None and not allow_tag:
        raise UsageError(
            f"{image} names a tag, not a digest",
            hint="deploy REPO@sha256:... (what `vci package` prints), or pass --allow-tag",
        )
    try:
        return _read_labels(ref, insecure)
    except (AuthError, NotFoundError, RegistryError) as exc:
        raise DeployError(
            f"cannot read {image} from its registry: {exc}",
            hint="push it first (vci package RUN --push REPO), or check the reference",
        ) from exc


def _read_labels(ref, insecure, **client_options) -> dict:
    client = RegistryClient(ref.registry, insecure=insecure, **client_options)
    labels = (client.get_image(ref).config.get("config") or {}).get("Labels") or {}
    return {"run_id": labels.get("vci.run-id"), "model_digest": labels.get("vci.model-digest")}


def pods_release(deployment: dict | None) -> str | None:
    """The VCI_RELEASE_ID a Deployment's pods were started with ("" for pods started without one), or None
    without a Deployment."""
    if not deployment:
        return None
    env = deployment["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return next((e.get("value") or "" for e in env if e.get("name") == "VCI_RELEASE_ID"), "")


def restarts(live: dict, after: dict) -> bool:
    """Whether applying ``after`` over ``live`` changes the pod template (a rollout: new pods)."""
    return live["spec"].get("template") != after["spec"].get("template")


def _live_image(deployment: dict | None) -> str | None:
    if not deployment:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def _annotation(obj: dict | None, key: str) -> str | None:
    return ((obj or {}).get("metadata", {}).get("annotations") or {}).get("vci.dev/" + key)
