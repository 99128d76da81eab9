"""The GitOps target: deploy, promote and rollback commit what a cluster should run to a git repository
(which Argo CD or Flux applies) instead of writing to the cluster.

``layout: plain`` writes the rendered objects (``vci.deploy.manifests``, as ``vci render`` prints them)
to ``<path>/<project>-<env>.yaml``, one file vci owns; ``layout: kustomize`` sets the image override
(``images: [{name: <repository>, digest: sha256:...}]``) and vci's annotations (``commonAnnotations``)
in the ``kustomization.yaml`` at ``path``, which the team owns. The commit message names the release,
the image by digest and the CI build. With ``pull_request: true`` the commit goes to a branch of its own
(``vci/<env>/<release-id>``) and a pull request is opened through the GitHub API. What was committed is
the deploy result's ``commit`` (repo, branch, sha, pull request), and so the ledger's.

What runs is read from the cluster when the environment names one (``context`` or ``kubeconfig``): then
a deploy with ``wait`` watches it until the Deployment runs the digest and its rollout is done. Without
one, the status is what the branch holds (state ``committed``): a digest cannot be promoted from there,
since nothing shows it healthy. vci's canary needs to write to the cluster, so it is refused here.
"""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

from ..ci.github_api import open_pull_request
from ..config import parse_seconds
from ..envrules import GITOPS_KEYS
from ..errors import DeployError, UsageError
from ..ledger import ci_context, who
from ..refs import digest_of
from .gitrepo import commit_and_push, read_file
from .kube import KubeTarget, _annotation
from .manifests import ANNOTATION, DeploySpec, render, to_yaml
from .target import DeployResult, Removal, Status

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
GITHUB_URL = re.compile(r"github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


class GitopsTarget(KubeTarget):
    """An environment whose desired state is a directory of a git repository."""

    def __init__(self, settings, environment):
        super().__init__(settings, environment)
        values = {**{k: v for k, v in GITOPS_KEYS.items() if v is not None}, **environment.gitops}
        self.repo, self.branch, self.layout = values["repo"], values["branch"], values["layout"]
        self.path, self.pull_request, self.github = (
            values["path"].strip("/") or ".",
            values["pull_request"],
            values.get("github"),
        )

    @property
    def watches_cluster(self) -> bool:
        return bool(self.environment.context or self.environment.kubeconfig)

    def file(self) -> str:
        """The file vci writes, relative to the repository's root."""
        name = f"{self.project()}-{self.environment.name}.yaml" if self.layout == "plain" else "kustomization.yaml"
        return name if self.path == "." else f"{self.path}/{name}"

    # -- verbs ------------------------------------------------------------------------------------------
    def deploy(
        self, what, *, release_id: str, wait: bool = True, timeout=None, dry_run=False, allow_tag=False, insecure=None
    ):
        """Commit ``what`` (an image by digest, or a run packaged and pushed first) as the environment's state.

        ``status`` is committed (pushed to the branch), proposed (a pull request), deployed (pushed, and the
        cluster runs it: ``wait`` with a cluster named), unchanged (the branch has this digest already) or
        would-deploy (a dry run, with the diff of the file)."""
        image = self.resolve_image(what, allow_tag=allow_tag, insecure=insecure)
        spec = self.spec(image, release_id, allow_tag=allow_tag)
        render(spec)  # validates before anything is written
        before = self.committed()
        result = partial(
            DeployResult,
            environment=spec.environment,
            digest=digest_of(spec.image),
            image=spec.image,
            run_id=spec.run_id,
            previous=before.digest,
        )
        if before.digest == digest_of(spec.image):
            return result(status="unchanged", release_id=before.release_id, endpoint=None, dry_run=dry_run or None)
        if dry_run:
            return result(status="would-deploy", release_id=None, endpoint=None, dry_run=True, diff=self._diff(spec))
        head = f"vci/{spec.environment}/{release_id}" if self.pull_request else None
        commit = commit_and_push(
            self.repo, self.branch, lambda tree: self._write(tree, spec), self.message(spec), who(), head
        )
        done = commit.to_json()
        status, endpoint = "committed", None
        if head:
            done["pull_request"] = open_pull_request(
                self.github_repository(), head, self.branch, self.message(spec).splitlines()[0], self.message(spec)
            )
            status = "proposed"
        elif wait and self.watches_cluster:
            self._wait_running(spec, timeout)
            status, endpoint = "deployed", self.endpoint(spec)
        return result(status=status, release_id=release_id, endpoint=endpoint, commit=done)

    def status(self) -> Status:
        """The cluster's status when the environment names one, else what the branch holds."""
        return super().status() if self.watches_cluster else self.committed()

    def committed(self) -> Status:
        """What the branch holds now (state ``committed``, or ``not-deployed`` without vci's file)."""
        spec = self._named()
        text = read_file(self.repo, self.branch, self.file())
        notes = self._notes(text) if text is not None else None
        if not notes or not notes.get("image"):
            return Status(environment=spec.environment, state="not-deployed", namespace=spec.namespace)
        return Status(
            environment=spec.environment,
            state="committed",
            digest=digest_of(notes["image"]),
            image=notes["image"],
            run_id=notes.get(ANNOTATION + "run-id"),
            release_id=notes.get(ANNOTATION + "release-id"),
            namespace=spec.namespace,
            deployment=spec.object_name,
        )

    def undeploy(self, *, dry_run: bool = False) -> Removal:
        """Remove vci's file from the branch (plain layout; a kustomization is the team's to remove)."""
        if self.layout != "plain":
            raise UsageError(
                f"{self.environment.name!r} keeps its state in {self.file()} of {self.branch}, which vci does not own",
                hint="remove the application from the repository yourself",
            )
        live = self.committed()
        if not live.deployed:
            return Removal.nothing(self.environment.name)
        removal = partial(Removal, environment=live.environment, digest=live.digest, release_id=live.release_id)
        if dry_run:
            return removal(status="would-remove", dry_run=True, objects=[self.file()])
        message = f"vci: remove {self.environment.name} ({self.project()})\n\n{self._context()}"
        commit_and_push(self.repo, self.branch, lambda tree: (tree / self.file()).unlink(), message, who())
        return removal(objects=[self.file()])

    def client(self, **options):
        self._need_cluster("reach its model")
        return super().client(**options)

    def logs(self, *, since=None, tail=None, follow=False):
        self._need_cluster("read its logs")
        return super().logs(since=since, tail=tail, follow=follow)

    def check_canary(self) -> None:
        raise UsageError(
            f"{self.environment.name!r} is a gitops environment: vci's canary writes to the cluster, which it does not",
            hint="promote with --strategy direct (a controller such as Argo Rollouts can run a canary there)",
        )

    def start_canary(self, what, *, release_id: str, timeout=None):
        self.check_canary()

    def canary_status(self) -> dict | None:
        return None

    def remove_canary(self) -> None:
        return None

    def kept_release(self) -> dict | None:
        """None: vci runs no blue-green here (it does not write to the cluster), so a rollback commits."""
        return None

    # -- the repository ---------------------------------------------------------------------------------
    def message(self, spec: DeploySpec) -> str:
        """The commit message: what, where and which release, then the release's context (CI build)."""
        head = f"vci: {spec.environment} runs {spec.image.rsplit('/', 1)[-1][:40]} (release {spec.release_id})"
        lines = [f"Release: {spec.release_id}", f"Environment: {spec.environment}", f"Image: {spec.image}"]
        lines += [f"Run: {spec.run_id}"] if spec.run_id else []
        return f"{head}\n\n" + "\n".join(lines) + "\n" + self._context()

    def _context(self) -> str:
        ci = ci_context() or {}
        lines = [f"By: {who()}"] + [f"CI: {ci[k]}" for k in ("url",) if ci.get(k)]
        return "\n".join(lines + ([f"CI-Commit: {ci['sha']}"] if ci.get("sha") else [])) + "\n"

    def github_repository(self) -> str:
        found = self.github or (m.group(1) if (m := GITHUB_URL.search(self.repo)) else None)
        if not found:
            raise UsageError(
                f"environments.{self.environment.name}.gitops.pull_request needs the GitHub repository to open it on",
                hint="set gitops.github: OWNER/NAME",
            )
        return found

    def _write(self, tree: Path, spec: DeploySpec) -> None:
        target = tree / self.file()
        if self.layout == "plain":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(to_yaml(render(spec)))
            return
        target.write_text(kustomized(self._kustomization_text(tree), spec))

    def _kustomization_text(self, tree: Path) -> str:
        for name in KUSTOMIZATIONS:
            found = tree / self.path / name
            if found.is_file():
                return found.read_text()
        raise UsageError(
            f"layout kustomize: {self.branch} of the repository has no kustomization.yaml in {self.path}",
            hint="commit a kustomization there (its resources name the image as the environment's repository)",
        )

    def _notes(self, text: str) -> dict | None:
        """vci's annotations (and ``image``) in the committed file."""
        import yaml

        if self.layout == "kustomize":
            doc = yaml.safe_load(text) or {}
            notes = dict(doc.get("commonAnnotations") or {})
            image = next((i for i in doc.get("images") or [] if i.get("digest")), None)
            return {**notes, "image": f"{image['name']}@{image['digest']}"} if image else None
        for obj in yaml.safe_load_all(text):
            if isinstance(obj, dict) and obj.get("kind") == "Deployment":
                return {**obj["metadata"].get("annotations", {}), "image": _annotation(obj, "image")}
        return None

    def _diff(self, spec: DeploySpec) -> str:
        import difflib

        old = read_file(self.repo, self.branch, self.file()) or ""
        new = to_yaml(render(spec)) if self.layout == "plain" else kustomized(old, spec)
        return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), self.file(), self.file()))

    def _need_cluster(self, what: str) -> None:
        if not self.watches_cluster:
            raise UsageError(
                f"{self.environment.name!r} is a gitops environment without a cluster to {what}",
                hint=f"set environments.{self.environment.name}.context (or kubeconfig) to the cluster that applies it",
            )

    def _wait_running(self, spec: DeploySpec, timeout: float | None) -> None:
        """Until the cluster's Deployment runs ``spec.image`` (the controller applied the commit), then its rollout."""
        bound = timeout or parse_seconds(self.environment.progress_deadline or "10m")
        deadline = time.monotonic() + bound
        while super().status().image != spec.image:
            if time.monotonic() > deadline:
                raise DeployError(
                    f"committed, but the cluster of {spec.environment!r} did not run {spec.image} within {bound:g} s",
                    hint="check the GitOps controller (Argo CD, Flux) that applies the repository",
                )
            time.sleep(1.0)
        self._wait_rollout(spec.object_name, max(deadline - time.monotonic(), 1.0), None)


def kustomized(text: str, spec: DeploySpec) -> str:
    """A kustomization with ``spec``'s image override by digest and vci's annotations (pure)."""
    import yaml

    doc = yaml.safe_load(text) or {}
    name = spec.image.rsplit("@", 1)[0]
    images = [i for i in doc.get("images") or [] if i.get("name") != name]
    doc["images"] = [*images, {"name": name, "digest": digest_of(spec.image)}]
    notes = {ANNOTATION + "release-id": spec.release_id or "", ANNOTATION + "image": spec.image}
    notes.update({ANNOTATION + "run-id": spec.run_id} if spec.run_id else {})
    doc["commonAnnotations"] = {**(doc.get("commonAnnotations") or {}), **notes}
    return yaml.safe_dump(doc, sort_keys=False)
