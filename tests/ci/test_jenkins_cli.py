"""`vci jenkins setup|trigger` against a Jenkins test server: upserts, one build per trigger id, errors."""

import json
from urllib.parse import parse_qs

import pytest

from fakes.jenkins_server import JenkinsServer
from vci.ci.jenkins import JenkinsClient
from vci.ci.jenkins_job import (
    TRIGGER_PARAM,
    Credentials,
    load_credentials,
    parameters_xml,
    pipeline_config_xml,
)
from vci.errors import ConfigError

from .conftest import ROOT, clean_env, run_vci

JENKINSFILE = ROOT / "jenkins" / "Jenkinsfile"


@pytest.fixture()
def jenkins():
    with JenkinsServer(users={"alice": "api-token-1", "reader": "api-token-2"}, readers={"reader"}) as server:
        yield server


def vci_jenkins(jenkins, *args, user="alice", token="api-token-1", cwd=ROOT, check=False):
    env = clean_env(JENKINS_URL=jenkins.url, JENKINS_USER=user, JENKINS_TOKEN=token)
    if args[0] == "trigger":
        args = (*args, "--poll-interval", "0.05")
    return run_vci("jenkins", *args, cwd=cwd, env=env, check=check)


def create_job(jenkins, name="vci"):
    client = JenkinsClient(jenkins.url, Credentials("alice", "api-token-1"), timeout=5)
    assert client.upsert_job(name, pipeline_config_xml(JENKINSFILE.read_text())) == "created"


def posts(jenkins, suffix):
    return [r for r in jenkins.state.requests if r[0] == "POST" and r[1].endswith(suffix)]


def test_setup_creates_then_leaves_then_updates_the_job(jenkins, tmp_path):
    first = vci_jenkins(jenkins, "setup", "--job", "vci-delivery", "--output", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["outcome"] == "created"
    config = jenkins.state.jobs["vci-delivery"].config_xml
    assert "CpsFlowDefinition" in config and "stage(&apos;Promote to production&apos;)" not in config
    assert "stage('Promote to production')" in config.replace("&apos;", "'")
    for name in ("MODEL", "RUN_ID", "PROMOTE", "STRATEGY", TRIGGER_PARAM):
        assert f"<name>{name}</name>" in config  # the first build accepts the parameters
    assert (
        json.loads(vci_jenkins(jenkins, "setup", "--job", "vci-delivery", "-o", "json").stdout)["outcome"]
        == "unchanged"
    )
    changed = tmp_path / "Jenkinsfile"
    changed.write_text(JENKINSFILE.read_text().replace("numToKeepStr: '30'", "numToKeepStr: '40'"))
    out = vci_jenkins(
        jenkins,
        "setup",
        "--job",
        "vci-delivery",
        "--jenkinsfile",
        str(changed),
        "--scm-url",
        "https://git.example.com/ml/iris.git",
        "-o",
        "json",
    )
    assert json.loads(out.stdout)["outcome"] == "updated"
    config = jenkins.state.jobs["vci-delivery"].config_xml
    assert "CpsScmFlowDefinition" in config and "https://git.example.com/ml/iris.git" in config
    assert len(posts(jenkins, "/createItem")) == 1 and len(posts(jenkins, "/config.xml")) == 1
    assert len([r for r in jenkins.state.requests if r[1] == "/crumbIssuer/api/json"]) == 2  # one per process


def test_trigger_follows_the_build_and_exits_with_its_result(jenkins):
    create_job(jenkins)
    jenkins.state.script = lambda params: ([f"line {i} for {params['RUN_ID']}" for i in range(30)], "SUCCESS")
    out = vci_jenkins(
        jenkins,
        "trigger",
        "--job",
        "vci",
        "--param",
        "RUN_ID=20261124-0712-3f9a",
        "--param",
        "PROMOTE=false",
        "--follow",
        "--trigger-id",
        "t-1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:30] == [f"line {i} for 20261124-0712-3f9a" for i in range(30)]
    assert out.stdout.splitlines()[-1] == "vci #1: SUCCESS"
    (trigger,) = posts(jenkins, "/buildWithParameters")
    assert trigger[2] == {} and parse_qs(trigger[3].decode()) == {  # parameters in the body, not the URL
        "RUN_ID": ["20261124-0712-3f9a"],
        "PROMOTE": ["false"],
        TRIGGER_PARAM: ["t-1"],
    }
    starts = [int(r[2].get("start", 0)) for r in jenkins.state.requests if r[1].endswith("progressiveText")]
    assert len(starts) > 1 and starts == sorted(starts) and starts[0] == 0  # streamed progressively


@pytest.mark.parametrize("result", ["FAILURE", "UNSTABLE", "ABORTED"])
def test_a_build_that_did_not_succeed_fails_the_command(jenkins, result):
    create_job(jenkins)
    jenkins.state.script = lambda params: (["ERROR: smoke test failed"], result)
    out = vci_jenkins(jenkins, "trigger", "--job", "vci", "--wait", "--output", "json")
    assert out.returncode == 13
    assert f"ended {result}" in json.loads(out.stderr.splitlines()[-1])["error"]


def test_a_repeated_trigger_never_starts_a_second_build(jenkins):
    create_job(jenkins)
    jenkins.state.fail_next.append((r"POST /job/vci/buildWithParameters", 500))  # the first attempt fails
    first = json.loads(vci_jenkins(jenkins, "trigger", "--job", "vci", "--trigger-id", "gh-42-1", "-o", "json").stdout)
    again = json.loads(
        vci_jenkins(jenkins, "trigger", "--job", "vci", "--trigger-id", "gh-42-1", "--wait", "-o", "json").stdout
    )
    assert first["reused"] is False and again["reused"] is True
    assert again["result"] == "SUCCESS" and again["build"] == 1
    assert len(jenkins.state.queue) == 1 and len(jenkins.state.jobs["vci"].builds) == 1
    jenkins.state.lose_next_trigger = True  # queued, but the answer was lost: the retry must find it
    lost = vci_jenkins(jenkins, "trigger", "--job", "vci", "--trigger-id", "gh-43-1", "-o", "json")
    assert json.loads(lost.stdout)["reused"] is True and len(jenkins.state.queue) == 2
    other = json.loads(vci_jenkins(jenkins, "trigger", "--job", "vci", "--wait", "-o", "json").stdout)
    assert other["build"] == 3 and other["reused"] is False


def test_each_refusal_is_explained(jenkins):
    create_job(jenkins)
    wrong = vci_jenkins(jenkins, "trigger", "--job", "vci", token="wrong")
    assert wrong.returncode == 11 and "rejected the credentials of 'alice' (401)" in wrong.stderr
    assert "wrong" not in wrong.stderr
    reader = vci_jenkins(jenkins, "trigger", "--job", "vci", user="reader", token="api-token-2")
    assert reader.returncode == 11 and "'reader' may not access job 'vci'" in reader.stderr
    missing = vci_jenkins(jenkins, "trigger", "--job", "nope")
    assert missing.returncode == 6 and "does not exist" in missing.stderr and "vci jenkins setup" in missing.stderr
    for _ in range(3):
        jenkins.state.fail_next.append((r"POST /job/vci/buildWithParameters", 500))
    broken = vci_jenkins(jenkins, "trigger", "--job", "vci")
    assert broken.returncode == 15 and "Jenkins failed on job 'vci' (500)" in broken.stderr
    assert not jenkins.state.queue
    unreachable = run_vci(
        "jenkins",
        "trigger",
        "--job",
        "vci",
        "--url",
        "http://127.0.0.1:9",
        "--timeout",
        "2",
        cwd=ROOT,
        env=clean_env(JENKINS_USER="a", JENKINS_TOKEN="b"),
        check=False,
    )
    assert unreachable.returncode == 3 and "cannot reach Jenkins" in unreachable.stderr


def test_credentials_come_from_the_environment_or_a_file_never_flags(jenkins, tmp_path):
    with pytest.raises(ConfigError, match="no Jenkins credentials"):
        load_credentials({})
    path = tmp_path / "jenkins-credentials"
    path.write_text("alice:api-token-1\n")
    assert load_credentials({}, str(path)).token == "api-token-1"
    out = run_vci(
        "jenkins",
        "setup",
        "--job",
        "vci",
        "--url",
        jenkins.url,
        "--credentials-file",
        str(path),
        cwd=ROOT,
        env=clean_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    flag = run_vci(
        "jenkins",
        "trigger",
        "--job",
        "vci",
        "--url",
        jenkins.url,
        "--token",
        "x",
        cwd=ROOT,
        env=clean_env(),
        check=False,
    )
    assert flag.returncode == 2 and "No such option '--token'" in flag.stderr


def test_parameters_xml_reads_the_jenkinsfile_declarations():
    xml = parameters_xml(JENKINSFILE.read_text())
    assert "<hudson.model.BooleanParameterDefinition><name>PROMOTE</name><defaultValue>true</defaultValue>" in xml
    assert "<string>default</string><string>direct</string><string>canary</string>" in xml
    assert "<name>MODEL</name><defaultValue>model.py:Model</defaultValue>" in xml
    assert xml.count(f"<name>{TRIGGER_PARAM}</name>") == 1
