"""One contract for machines: usage errors in JSON when asked, `vci render --output json`, and dry runs of
`vci log` and `vci undeploy` that print what they would do and touch nothing."""

import json
from pathlib import Path

import pytest
import yaml

from tests.test_cli import vci
from tests.test_cli import weights as iris_weights  # noqa: F401  (the fixture, by its name)

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32
OFFLINE_IMAGE = f"registry.invalid/ml/iris@{DIGEST}"  # .invalid never resolves (RFC 2606)


def log_args(weights) -> list[str]:
    model = f"{ROOT}/examples/iris/model.py:Model"
    return ["log", "--project", "iris", "--model", model, "--artifact", f"weights={weights}"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["deploy", "--output", "json"], "Missing argument 'RUN_ID|IMAGE@DIGEST'"),
        (["runs", "list", "--bogus", "-o", "json"], "No such option '--bogus'"),
        (["package", "RUN", "--builder", "kaniko", "--output=json"], "'kaniko' is not one of"),
        (["status", "-ojson", "--env"], "Option '--env' requires an argument"),
    ],
)
def test_usage_errors_come_out_as_json_when_json_was_asked_for(tmp_path, args, fragment):
    """Before: click's usage text on stderr, whatever --output said."""
    out = vci(*args, cwd=tmp_path, check=False)
    error = json.loads(out.stderr)
    assert set(error) == {"error", "code"} and error["code"] == "usage" and fragment in error["error"], error
    assert out.returncode == 2 and out.stdout == ""
    text = vci(*[a for a in args if "json" not in a and a not in ("--output", "-o")], cwd=tmp_path, check=False)
    assert text.returncode == 2 and "Error:" in text.stderr and not text.stderr.startswith("{")  # as before


def kube_project(tmp_path, **staging) -> Path:
    config = {"project": "iris", "environments": {"staging": {"target": "kubernetes", "namespace": "ml", **staging}}}
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_render_prints_json_and_works_offline_saying_what_it_could_not_read(tmp_path):
    """Before: no --output; an image by digest in an environment with a repository failed (exit 13) when its
    registry could not be reached, and the default resources were not said."""
    project = kube_project(tmp_path, repository="registry.invalid/ml/iris")
    out = vci("render", OFFLINE_IMAGE, "--env", "staging", "--output", "json", cwd=project)
    rendered = json.loads(out.stdout)
    kinds = [o["kind"] for o in rendered["objects"]]
    assert kinds == ["Deployment", "Service", "NetworkPolicy"] and rendered["image"] == OFFLINE_IMAGE
    assert rendered["defaults"] == ["requests.cpu=250m", "requests.memory=512Mi", "limits.memory=512Mi"]
    assert f"could not read the labels of {OFFLINE_IMAGE}" in out.stderr and "registry.invalid" in out.stderr
    assert "rendered the default requests.cpu=250m" in out.stderr
    text = vci("render", OFFLINE_IMAGE, "--env", "staging", cwd=project)
    assert [d["kind"] for d in yaml.safe_load_all(text.stdout)] == kinds
    rbac = json.loads(vci("render", "--rbac", "--env", "staging", "--user", "ci", "-o", "json", cwd=project).stdout)
    assert [o["kind"] for o in rbac["objects"]] == ["Role", "RoleBinding"] and rbac["namespace"] == "ml"


def test_render_of_a_run_without_a_repository_is_refused(tmp_path):
    """Before: exit 0 and ``image: REPOSITORY/iris@sha256:...`` in the output."""
    out = vci("render", "20260101-000000-abcd", "--env", "staging", cwd=kube_project(tmp_path), check=False)
    assert out.returncode == 3 and out.stdout == ""
    assert "environment 'staging' has no repository" in out.stderr and "REPO@sha256" in out.stderr


def test_kubernetes_objects_need_a_project(tmp_path):
    """Before: objects named ``model-staging``, whatever the project."""
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump({"environments": {"staging": {"target": "kubernetes"}}}))
    out = vci("render", OFFLINE_IMAGE, "--env", "staging", cwd=tmp_path, check=False)
    assert out.returncode == 3 and "no project is set" in out.stderr and out.stdout == ""


def test_log_dry_run_checks_everything_and_writes_nothing(tmp_path, iris_weights):  # noqa: F811
    """Before: `vci log --dry-run` was refused as an unknown option."""
    weights = iris_weights
    store = tmp_path / "store"
    planned = json.loads(vci(*log_args(weights), "--store", str(store), "--dry-run", "-o", "json", cwd=tmp_path).stdout)
    assert planned["dry_run"] is True and planned["artifacts"]["weights"]["upload"] is True
    assert planned["upload_bytes"] >= planned["artifacts"]["weights"]["size"] > 0
    assert not store.exists()  # not a directory, not a blob, not a run
    bad = vci("log", "--model", "nofile.py:Model", "--store", str(store), "--dry-run", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "does not exist" in bad.stderr  # the same checks as a real log
    vci(*log_args(weights), "--store", str(store), cwd=tmp_path)
    again = json.loads(vci(*log_args(weights), "--store", str(store), "--dry-run", "-o", "json", cwd=tmp_path).stdout)
    assert again["artifacts"]["weights"]["upload"] is False  # in the store now: a real log would not send it
    assert again["model"]["class"].endswith("Model") and again["upload_bytes"] == (
        again["model"]["size"] if again["model"]["upload"] else 0
    )
    assert len(list((store / "runs").iterdir())) == 1
    text = vci(*log_args(weights), "--store", str(store), "--dry-run", cwd=tmp_path).stdout
    assert text.startswith("would log a run of iris") and "weights:" in text and "(in the store)" in text


def test_undeploy_dry_run_names_what_it_would_stop_and_stops_nothing(tmp_path, iris_weights):  # noqa: F811
    """Before: `vci undeploy --dry-run` was refused as an unknown option."""
    weights = iris_weights
    run_id = json.loads(vci(*log_args(weights), "-o", "json", cwd=tmp_path).stdout)["run_id"]
    vci("deploy", run_id, "--env", "staging", cwd=tmp_path)
    try:
        planned = json.loads(vci("undeploy", "--env", "staging", "--dry-run", "-o", "json", cwd=tmp_path).stdout)
        assert planned["status"] == "would-remove" and planned["dry_run"] is True and planned["pid"] > 0
        status = json.loads(vci("status", "--env", "staging", "-o", "json", cwd=tmp_path).stdout)
        assert status["state"] == "ready"
        assert (
            f"would remove staging (was {status['digest'][:19]}): server process {planned['pid']}"
            in vci("undeploy", "--env", "staging", "--dry-run", cwd=tmp_path).stdout
        )
    finally:
        removed = json.loads(vci("undeploy", "--env", "staging", "-o", "json", cwd=tmp_path).stdout)
    assert removed["status"] == "removed" and "dry_run" not in removed
    assert json.loads(vci("status", "--env", "staging", "-o", "json", cwd=tmp_path).stdout)["state"] == "not-deployed"
