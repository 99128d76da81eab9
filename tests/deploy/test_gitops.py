"""GitOps environments with real git against a local bare repository, a real registry, `kubectl kustomize`,
and the GitHub API test server for pull requests: deploy, rollback and promotion commit what the cluster
should run (by digest), the commit names the release and the CI build, and the ledger records the commit."""

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from gitops_controller import GitopsController  # noqa: E402
from tests.deploy.serving import MODEL_DIRS, ServePod  # noqa: E402
from tests.fakes.github_api import GitHubAPI  # noqa: E402
from tests.fakes.kube import start_kube_server  # noqa: E402
from tests.release.conftest import make_run  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.deploy import deploy, status, target_for, undeploy  # noqa: E402
from vci.deploy.gitops import GitopsTarget  # noqa: E402
from vci.errors import AuthError, ConfigError, DeployError, UsageError  # noqa: E402
from vci.ledger import Ledger  # noqa: E402
from vci.release.holds import list_holds  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.release.rollback import history, rollback  # noqa: E402

TOKEN = "ghs_gitopsTOKEN0123456789abcdefABCDEF"


def git(*args, cwd=None) -> str:
    done = subprocess.run(["git", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bare_repo(tmp_path, files: dict[str, str]) -> Path:
    """A bare repository whose main branch holds ``files`` (as a platform team's deploy repository)."""
    bare, seed = tmp_path / "deploy.git", tmp_path / "seed"
    git("init", "--quiet", "--bare", "-b", "main", bare)
    git("clone", "--quiet", bare, seed)
    for name, text in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_text(text)
    git("add", ".", cwd=seed)
    git("-c", "user.name=platform", "-c", "user.email=p@example.com", "commit", "--quiet", "-m", "seed", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return bare


@pytest.fixture()
def gitops(registry, scratch_base, tmp_path, monkeypatch):
    """Settings whose production is a gitops environment on a bare repository (``make(**gitops)``)."""
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for name, value in {"GITHUB_RUN_ID": "77", "GITHUB_REPOSITORY": "acme/iris", "GITHUB_SHA": "c0ffee"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")

    def make(repo, cluster=None, **options):
        """``cluster``: a kubeconfig: production's cluster is watched, and staging is a Kubernetes environment."""
        common = {"base_image": scratch_base, **({"kubeconfig": cluster} if cluster else {})}
        production = {"target": "gitops", "repository": f"{registry.host}/ml/iris", "namespace": "ml-prod", **common}
        production.update(replicas=2, gitops={"repo": str(repo), "path": "apps/iris", **options})
        environments = {"production": production}
        if cluster:
            staging = {
                "target": "kubernetes",
                "repository": f"{registry.host}/ml/iris-staging",
                "namespace": "ml-staging",
            }
            environments["staging"] = {**staging, **common}
        config = {"project": "iris", "store": str(tmp_path / "store"), "environments": environments}
        return load_settings(config, cwd=tmp_path, environ={})

    return make


def test_deploy_and_rollback_commit_rendered_manifests_by_digest(gitops, tmp_path):
    bare = bare_repo(tmp_path, {"README.md": "deploy repository\n"})
    settings = gitops(bare)
    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 3)
    first = deploy(settings, v1.id, "production")
    assert first.status == "committed" and first.commit["sha"] == git("rev-parse", "main", cwd=bare)
    objects = list(yaml.safe_load_all(git("show", "main:apps/iris/iris-production.yaml", cwd=bare)))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == first.image
    assert "@sha256:" in first.image and deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["annotations"]["vci.dev/release-id"] == first.release_id
    assert {o["kind"] for o in objects} >= {"Deployment", "Service"}
    message = git("log", "-1", "--format=%an%n%B", "main", cwd=bare)
    assert message.startswith("github:octocat\nvci: production runs") and f"Release: {first.release_id}" in message
    assert f"Image: {first.image}" in message and "CI: https://github.com/acme/iris/actions/runs/77" in message
    record = Ledger.for_settings(settings).get("production", first.release_id)
    assert record.extra["commit"]["sha"] == first.commit["sha"] and record.extra["commit"]["branch"] == "main"
    live = status(settings, "production")
    assert live.state == "committed" and live.digest == first.digest and live.release_id == first.release_id

    assert deploy(settings, v1.id, "production").status == "unchanged"
    assert git("rev-parse", "main", cwd=bare) == first.commit["sha"]  # nothing new committed
    plan = deploy(settings, v2.id, "production", dry_run=True)
    assert plan.status == "would-deploy" and "-    vci.dev/release-id" in plan.diff
    second = deploy(settings, v2.id, "production")
    back = rollback(settings, "production")
    assert back["digest"] == first.digest and back["commit"]["sha"] == git("rev-parse", "main", cwd=bare)
    assert "committed: " in back["reason"] and [h["digest"] for h in list_holds(settings, "production")["holds"]] == [
        second.digest
    ]
    assert first.image in git("show", "main:apps/iris/iris-production.yaml", cwd=bare)
    assert git("rev-list", "--count", "main", cwd=bare) == "4"  # seed, v1, v2, back to v1
    assert [r["action"] for r in history(settings, "production")["releases"]] == [
        "rollback",
        "deploy",
        "deploy",
        "deploy",
    ]
    assert undeploy(settings, "production").objects == ["apps/iris/iris-production.yaml"]
    assert status(settings, "production").state == "not-deployed"


def test_kustomize_layout_sets_the_image_override(gitops, tmp_path, registry):
    image_name = f"{registry.host}/ml/iris"
    base = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris"},
        "spec": {
            "selector": {"matchLabels": {"app": "iris"}},
            "template": {
                "metadata": {"labels": {"app": "iris"}},
                "spec": {"containers": [{"name": "model", "image": f"{image_name}:placeholder"}]},
            },
        },
    }
    kustomization = {"resources": ["deployment.yaml"], "commonLabels": {"team": "ml"}}
    bare = bare_repo(
        tmp_path,
        {
            "apps/iris/deployment.yaml": yaml.safe_dump(base),
            "apps/iris/kustomization.yaml": yaml.safe_dump(kustomization),
        },
    )
    settings = gitops(bare, layout="kustomize")
    done = deploy(settings, make_run(settings, tmp_path, 2).id, "production")
    checkout = tmp_path / "check"
    git("clone", "--quiet", bare, checkout)
    written = yaml.safe_load((checkout / "apps/iris/kustomization.yaml").read_text())
    assert written["images"] == [{"name": image_name, "digest": done.digest}]
    assert written["resources"] == ["deployment.yaml"] and written["commonLabels"] == {"team": "ml"}
    kustomize = ["kubectl", "kustomize", str(checkout / "apps/iris")]
    built = yaml.safe_load(subprocess.run(kustomize, capture_output=True, text=True, check=True, timeout=60).stdout)
    assert built["spec"]["template"]["spec"]["containers"][0]["image"] == done.image  # kustomize's own reading
    assert built["metadata"]["annotations"]["vci.dev/release-id"] == done.release_id
    assert status(settings, "production").digest == done.digest

    empty = bare_repo(tmp_path / "other", {"README.md": "x\n"})
    with pytest.raises(UsageError, match="has no kustomization.yaml in apps/iris"):
        deploy(gitops(empty, layout="kustomize"), make_run(settings, tmp_path, 2).id, "production")


def test_a_push_that_meets_a_newer_branch_is_redone_on_a_fresh_clone(gitops, tmp_path, monkeypatch):
    bare = bare_repo(tmp_path, {"README.md": "x\n"})
    settings = gitops(bare)
    real, raced = GitopsTarget._write, []

    def someone_pushes_first(self, tree, spec):  # between vci's clone and its push, another commit lands
        if not raced:
            other = tmp_path / "other"
            git("clone", "--quiet", bare, other)
            (other / "NOTES.md").write_text("theirs\n")
            git("add", ".", cwd=other)
            git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "--quiet", "-m", "theirs", cwd=other)
            git("push", "--quiet", "origin", "HEAD:main", cwd=other)
            raced.append(True)
        real(self, tree, spec)

    monkeypatch.setattr(GitopsTarget, "_write", someone_pushes_first)
    done = deploy(settings, make_run(settings, tmp_path, 2).id, "production")
    assert raced and git("rev-parse", "main", cwd=bare) == done.commit["sha"]
    assert git("log", "--format=%s", "main", cwd=bare).splitlines()[1:] == ["theirs", "seed"]  # theirs kept


def test_pull_request_mode_pushes_a_branch_and_opens_a_pull_request(gitops, tmp_path, monkeypatch):
    bare = bare_repo(tmp_path, {"README.md": "x\n"})
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    settings = gitops(bare, pull_request=True, github="acme/deploy")
    run = make_run(settings, tmp_path, 2)
    with GitHubAPI("acme/deploy", tokens={TOKEN: {"pull_requests:write"}}, git_dir=str(bare)) as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        done = deploy(settings, run.id, "production")
        assert done.status == "proposed"
        head = f"vci/production/{done.release_id}"
        assert done.commit["pushed_to"] == head and git("rev-parse", head, cwd=bare) == done.commit["sha"]
        assert git("log", "--format=%s", "main", cwd=bare) == "seed"  # main waits for the review
        [pull] = api.pulls
        assert (
            pull["head"]["ref"] == head
            and pull["base"]["ref"] == "main"
            and f"Release: {done.release_id}" in pull["body"]
        )
        assert done.commit["pull_request"] == {"number": 1, "url": "https://github.com/acme/deploy/pull/1"}
        record = Ledger.for_settings(settings).get("production", done.release_id)
        assert record.extra["commit"]["pull_request"]["number"] == 1
        assert status(settings, "production").state == "not-deployed"  # nothing on main yet

    with GitHubAPI("acme/deploy", tokens={TOKEN: {"contents:read"}}, git_dir=str(bare)) as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        with pytest.raises(AuthError, match="403 Resource not accessible by integration") as refused:
            deploy(settings, make_run(settings, tmp_path, 5).id, "production")
        assert TOKEN not in str(refused.value)


def test_the_github_fake_validates_pull_requests_as_github_does(tmp_path):
    import json
    import urllib.error
    import urllib.request

    bare = bare_repo(tmp_path, {"README.md": "x\n"})
    git("push", "--quiet", bare, "main:refs/heads/same", cwd=tmp_path / "seed")

    def post(api, body):
        req = urllib.request.Request(
            f"{api.url}/repos/acme/deploy/pulls",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "t"},
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with GitHubAPI("acme/deploy", tokens={TOKEN: {"pull_requests:write"}}, git_dir=str(bare)) as api:
        assert post(api, {"title": "t", "head": "same"})[1]["errors"][0] == {
            "resource": "PullRequest",
            "code": "missing_field",
            "field": "base",
        }
        assert post(api, {"title": "t", "head": "nope", "base": "main"})[1]["errors"][0]["field"] == "head"
        code, body = post(api, {"title": "t", "head": "same", "base": "main"})
        assert code == 422 and body["errors"][0]["message"] == "No commits between main and same"


def test_gitops_settings_are_checked(tmp_path):
    def load(production):
        return load_settings({"environments": {"production": production}}, cwd=tmp_path, environ={})

    with pytest.raises(ConfigError, match="target gitops and the gitops setting go together"):
        load({"target": "gitops"})
    with pytest.raises(ConfigError, match="gitops.layout must be one of plain, kustomize"):
        load({"target": "gitops", "gitops": {"repo": "x", "layout": "helm"}})
    with pytest.raises(ConfigError, match="gitops.path must be a path inside the repository"):
        load({"target": "gitops", "gitops": {"repo": "x", "path": "../up"}})
    with pytest.raises(ConfigError, match="cannot run vci's canary"):
        load({"target": "gitops", "gitops": {"repo": "x"}, "strategy": "canary"})
    with pytest.raises(ConfigError, match="is a gitops setting, and 'production' is a kubernetes environment"):
        load({"target": "kubernetes", "gitops": {"repo": "x"}})
    settings = load({"target": "gitops", "gitops": {"repo": "x", "path": "apps/iris/"}})
    settings.project = "Iris_Model"
    assert GitopsTarget(settings, settings.environment("production")).file() == "apps/iris/iris-model-production.yaml"


def test_a_missing_repository_and_git_errors_are_one_line(gitops, tmp_path):
    settings = gitops(tmp_path / "nowhere.git")
    with pytest.raises(UsageError, match="the GitOps repository .*nowhere.git does not exist"):
        status(settings, "production")
    not_a_repo = tmp_path / "plain-dir"
    not_a_repo.mkdir()
    with pytest.raises(DeployError, match="git ls-remote failed"):
        status(gitops(not_a_repo), "production")
    with pytest.raises(UsageError, match="gitops environment without a cluster"):
        target_for(gitops(not_a_repo), "production").client()


@pytest.fixture(scope="module")
def serving_kube():
    """A TLS API test server whose pods are real model servers (kubectl sends a token over TLS only)."""
    server = start_kube_server(tls=True, namespaces=("ml-staging", "ml-prod"), backend="process", runner=ServePod)
    try:
        yield server
    finally:
        server.stop()


def test_promotion_into_a_gitops_production_commits_and_waits_for_the_cluster(gitops, serving_kube, tmp_path):
    bare = bare_repo(tmp_path, {"README.md": "deploy repository\n"})
    kubeconfig = str(serving_kube.kubeconfig(tmp_path / "kubeconfig"))
    settings = gitops(bare, cluster=kubeconfig)
    run = make_run(settings, tmp_path, 2)
    image = target_for(settings, "staging").resolve_image(run.id)
    MODEL_DIRS[image["image"].rsplit("@", 1)[1]] = str(run.model_dir())
    deploy(settings, image["image"], "staging", timeout=60)
    digest = image["image"].rsplit("@", 1)[1]
    with GitopsController(bare, "main", "apps/iris/iris-production.yaml", kubeconfig) as controller:
        done = promote(settings, "staging", "production", digest=digest, timeout=60)
        assert done["outcome"] == "succeeded" and "deployed: " in done["reason"], (done["reason"], controller.errors)
        assert controller.applied == [git("rev-parse", "main", cwd=bare)] and not controller.errors
    assert done["image"] == f"{settings.environments['production'].repository}@{digest}"  # copied by digest
    live = status(settings, "production")  # read from the cluster: the environment names one
    assert live.state == "ready" and live.digest == digest and live.release_id == done["release_id"]
    assert target_for(settings, "production").client().predict([1, 2]) == [2, 4]
    record = Ledger.for_settings(settings).get("production", done["release_id"])
    assert record.extra["commit"]["sha"] == controller.applied[0]
    with pytest.raises(UsageError, match="gitops environment: vci's canary writes to the cluster"):
        promote(settings, "staging", "production", digest=digest, strategy="canary")


def test_credentials_in_an_https_url_stay_off_git_command_lines(gitops, tmp_path, monkeypatch):
    import vci.deploy.gitrepo as gitrepo

    seen = []
    real = subprocess.run

    def recording(args, **kwargs):
        seen.append((args, (kwargs.get("env") or {}).get("GIT_CONFIG_VALUE_0")))
        return real(args, **kwargs)

    monkeypatch.setattr(gitrepo.subprocess, "run", recording)
    settings = gitops("https://x-access-token:ghs_SECRETgitopsTOKEN42@127.0.0.1:9/acme/deploy.git")
    with pytest.raises(DeployError, match="git ls-remote failed") as failed:
        status(settings, "production")
    [(args, header)] = seen
    assert args[-2] == "https://127.0.0.1:9/acme/deploy.git" and not any("SECRET" in a for a in args)
    assert header == "Authorization: Basic " + base64.b64encode(b"x-access-token:ghs_SECRETgitopsTOKEN42").decode()
    assert "SECRET" not in str(failed.value)
