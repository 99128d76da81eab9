"""Run names: `latest` and tags, wherever a run id is taken (get_run, deploy, the CLI)."""

import json
import os
import subprocess
import sys
import time

import pytest

import vci
from vci.config import load_settings
from vci.deploy import deploy, status, undeploy
from vci.errors import NotFoundError, UsageError
from vci.runs import get_run, run_tags, tag_run


class Echo:
    def __init__(self, artifacts):
        self.label = open(artifacts["label"]).read()

    def predict(self, data):
        return [self.label for _ in data]


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return load_settings({"store": str(tmp_path / "store"), "project": "demo"}, cwd=tmp_path, environ={})


def logged(settings, tmp_path, label: str, project: str = "demo"):
    """A committed run, started in a second of its own: ``latest`` orders runs by their ids, which carry
    their start time to the second (two started in one second are ordered by their random part)."""
    time.sleep(1 - time.time() % 1 + 0.01)
    (tmp_path / f"{label}.txt").write_text(label)
    run = vci.init(project, settings=settings)
    run.log_artifact("label", tmp_path / f"{label}.txt")
    run.log_model(Echo, artifacts=["label"])
    run.commit()
    return run


def test_latest_is_the_projects_newest_run_and_a_tag_moves(settings, tmp_path):
    first = logged(settings, tmp_path, "one")
    other = logged(settings, tmp_path, "elsewhere", project="other")
    assert get_run("latest", settings=settings).id == first.id  # the configured project's, not other's
    assert get_run("other:latest", settings=settings).id == other.id
    tag = tag_run(settings, first.id, "champion")
    assert (tag.project, tag.run_id, tag.previous) == ("demo", first.id, None)
    second = logged(settings, tmp_path, "two")
    assert get_run("latest", settings=settings).id == second.id
    assert get_run("champion", settings=settings).id == first.id
    moved = tag_run(settings, "latest", "champion")  # a name resolves wherever a run id is taken
    assert moved.run_id == second.id and moved.previous == first.id
    assert [(t.name, t.run_id) for t in run_tags(settings)] == [("champion", second.id)]


def test_names_that_cannot_be_or_are_not_say_so(settings, tmp_path):
    run = logged(settings, tmp_path, "one")
    with pytest.raises(NotFoundError, match="no run is named demo:stable"):
        get_run("stable", settings=settings)
    with pytest.raises(NotFoundError, match="project 'empty' has no committed run"):
        get_run("empty:latest", settings=settings)
    for bad in ("latest", "9lives", "a b", "x" * 70):
        with pytest.raises(UsageError):
            tag_run(settings, run.id, bad)
    with pytest.raises(UsageError, match="not a run id, nor a run name"):
        get_run("no such thing!", settings=settings)


def test_deploy_by_name_runs_the_named_run(settings, tmp_path):
    first = logged(settings, tmp_path, "one")
    logged(settings, tmp_path, "two")
    tag_run(settings, first.id, "champion")
    try:
        result = deploy(settings, "champion", "staging")
        assert result.run_id == first.id and status(settings, "staging").digest == first.version
        assert get_run("champion", settings=settings).get_deployed_model("staging").predict([0]) == ["one"]
    finally:
        undeploy(settings, "staging")


def test_the_cli_tags_and_lists(settings, tmp_path):
    run = logged(settings, tmp_path, "one")
    env = {**os.environ, "VCI_STORE": settings.store, "VCI_PROJECT": "demo"}

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "vci", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    planned = json.loads(cli("runs", "tag", run.id, "champion", "--dry-run", "-o", "json"))
    assert planned["dry_run"] is True and planned["run_id"] == run.id
    assert json.loads(cli("runs", "tags", "-o", "json"))["tags"] == []  # a dry run wrote nothing
    assert json.loads(cli("runs", "tag", run.id, "champion", "-o", "json"))["run_id"] == run.id
    assert json.loads(cli("runs", "tags", "-o", "json"))["tags"][0]["name"] == "champion"
    assert json.loads(cli("runs", "show", "champion", "-o", "json"))["manifest"]["id"] == run.id
