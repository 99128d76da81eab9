"""GitHub Actions integration: step outputs as the runner parses them, the summary, annotations, masks."""

import io
import json
import re

from vci.ci import github

from .conftest import run_vci


def parse_github_output(text: str) -> dict:
    """Parse a $GITHUB_OUTPUT file the way the runner does (name=value lines and name<<DELIM heredocs)."""
    outputs, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
            i += 1
        else:
            i += 1
    return outputs


def test_multiline_values_survive_with_random_delimiters(tmp_path):
    path = tmp_path / "output"
    hostile = "line one\nEOF\nghadelimiter_\nname=value\n"
    github.write_outputs(
        {"reason": hostile, "release_id": "r1", "passed": False, "gate": {"checked": 2}},
        {"GITHUB_OUTPUT": str(path)},
    )
    text = path.read_text()
    delimiters = re.findall(r"<<(\S+)", text)
    assert len(delimiters) == len(set(delimiters)) == 5  # a fresh delimiter per output
    outputs = parse_github_output(text)
    assert outputs["reason"] == hostile
    assert outputs["release-id"] == "r1"
    assert outputs["passed"] == "false"
    assert json.loads(outputs["gate"]) == {"checked": 2}
    assert json.loads(outputs["json"])["reason"] == hostile


def test_nothing_is_written_without_the_runner_files(tmp_path):
    github.write_outputs({"a": 1}, {})
    github.write_summary("deploy", {"a": 1}, {})
    assert list(tmp_path.iterdir()) == []


def test_workflow_commands_are_escaped():
    stream = io.StringIO()
    github.error_annotation("bad digest: 100%\nsecond line", title="vci: integrity, store", stream=stream)
    assert stream.getvalue() == "::error title=vci%3A integrity%2C store::bad digest: 100%25%0Asecond line\n"
    stream = io.StringIO()
    with github.group("vci deploy\nstaging", stream=stream):
        stream.write("inside\n")
    assert stream.getvalue() == "::group::vci deploy%0Astaging\ninside\n::endgroup::\n"


def test_secret_keys_are_masked_line_by_line():
    stream = io.StringIO()
    github.mask_secrets({"registry_password": "s3cr3t\nline2", "digest": "sha256:ab", "token": ""}, stream)
    assert stream.getvalue() == "::add-mask::s3cr3t\n::add-mask::line2\n"


def test_summary_shows_what_was_promoted():
    md = github.summary_markdown(
        "promote",
        {
            "from": "staging",
            "to": "production",
            "digest": "sha256:" + "a" * 64,
            "release_id": "r2",
            "strategy": "canary",
            "outcome": "succeeded",
            "diff": "- image: old\n+ image: new",
            "previous": None,
        },
    )
    assert md.startswith("### vci promote\n")
    assert "| from | staging |" in md and "| to | production |" in md
    assert f"| digest | `sha256:{'a' * 64}` |" in md
    assert "| outcome | succeeded |" in md
    assert "```diff\n- image: old\n+ image: new\n```" in md
    assert "previous" not in md


def test_cli_writes_outputs_summary_and_annotations_in_actions(project, tmp_path):
    workdir, env = project
    gha = dict(
        env,
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "out"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
    )
    logged = json.loads(
        run_vci(
            "log",
            "--model",
            "model.py:Doubler",
            "--artifact",
            "factor=factor.txt",
            "--examples",
            "examples.json",
            "--output",
            "json",
            cwd=workdir,
            env=gha,
        ).stdout
    )
    deployed = run_vci("deploy", logged["run_id"], "--env", "staging", "--output", "json", cwd=workdir, env=gha)
    result = json.loads(deployed.stdout)  # stdout stays one JSON object; workflow commands go to stderr
    assert "::group::vci deploy: result" in deployed.stderr and "::endgroup::" in deployed.stderr
    outputs = parse_github_output((tmp_path / "out").read_text())
    assert outputs["release-id"] == result["release_id"]
    assert outputs["digest"] == result["digest"] == logged["version"]
    assert outputs["endpoint"] == result["endpoint"]
    assert json.loads(outputs["json"]) == result
    summary = (tmp_path / "summary").read_text()
    assert "### vci log" in summary and "### vci deploy" in summary
    assert f"| release id | {result['release_id']} |" in summary

    failed = run_vci("status", "--env", "nowhere", "--output", "json", cwd=workdir, env=gha, check=False)
    assert failed.returncode == 3
    assert failed.stderr.startswith("::error title=vci%3A config::unknown environment 'nowhere'")
    assert json.loads(failed.stderr.splitlines()[-1])["code"] == "config"


def test_cli_writes_no_workflow_commands_outside_actions(project, tmp_path):
    workdir, env = project
    out = run_vci(
        "status",
        "--env",
        "nowhere",
        cwd=workdir,
        env=dict(env, GITHUB_OUTPUT=str(tmp_path / "o")),
        check=False,
    )
    assert "::" not in out.stderr and not (tmp_path / "o").exists()
