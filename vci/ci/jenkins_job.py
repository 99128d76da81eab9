"""What a Jenkins pipeline job is made of (pure): credentials, config.xml, trigger ids, results."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from ..errors import ConfigError
from ..redact import remember
from .github import mask

TRIGGER_PARAM = "VCI_TRIGGER_ID"
PARAMETER = re.compile(r"\b(string|booleanParam|choice)\(\s*name:\s*'([A-Za-z_]\w*)'(.*?)\)\s*$", re.M)


@dataclass(frozen=True)
class Credentials:
    """A Jenkins user and API token (never taken from the command line)."""

    user: str
    token: str


def load_credentials(env: Mapping[str, str] | None = None, path: str | None = None) -> Credentials:
    """``JENKINS_USER``/``JENKINS_TOKEN``, else a file (``--credentials-file``/``JENKINS_CREDENTIALS_FILE``)
    holding ``USER:TOKEN``."""
    env = os.environ if env is None else env
    path = path or env.get("JENKINS_CREDENTIALS_FILE")
    if path:
        try:
            user, _, token = Path(path).read_text().strip().partition(":")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the Jenkins credentials file {path}: {exc.strerror}",
                hint="write USER:API_TOKEN into it (mode 600)",
            ) from exc
    else:
        user, token = env.get("JENKINS_USER", ""), env.get("JENKINS_TOKEN", "")
    if not user or not token:
        raise ConfigError(
            "no Jenkins credentials",
            hint="set JENKINS_USER and JENKINS_TOKEN (an API token), or pass --credentials-file holding USER:TOKEN",
        )
    if env.get("GITHUB_ACTIONS") == "true":
        mask(token)
    remember(token)
    return Credentials(user, token)


def parameters_xml(jenkinsfile_text: str) -> str:
    """Parameter definitions for config.xml, read from the Jenkinsfile's ``parameters {}`` block (so the
    first build accepts them) plus the trigger id that makes triggers idempotent."""
    found = {name: (kind, rest) for kind, name, rest in PARAMETER.findall(jenkinsfile_text)}
    found.setdefault(TRIGGER_PARAM, ("string", ""))
    items = []
    for name, (kind, rest) in found.items():
        default = re.search(r"defaultValue:\s*(?:'([^']*)'|(true|false))", rest)
        if kind == "booleanParam":
            value = default.group(2) if default and default.group(2) else "false"
            items.append(
                f"<hudson.model.BooleanParameterDefinition><name>{name}</name>"
                f"<defaultValue>{value}</defaultValue></hudson.model.BooleanParameterDefinition>"
            )
        elif kind == "choice":
            listed_in = re.search(r"choices:\s*\[(.*?)\]", rest)
            choices = re.findall(r"'([^']*)'", listed_in.group(1) if listed_in else "")
            listed = "".join(f"<string>{escape(c)}</string>" for c in choices)
            items.append(
                f'<hudson.model.ChoiceParameterDefinition><name>{name}</name><choices class="java.util'
                f'.Arrays$ArrayList"><a class="string-array">{listed}</a></choices>'
                f"</hudson.model.ChoiceParameterDefinition>"
            )
        else:
            value = escape(default.group(1) or "") if default else ""
            items.append(
                f"<hudson.model.StringParameterDefinition><name>{name}</name>"
                f"<defaultValue>{value}</defaultValue></hudson.model.StringParameterDefinition>"
            )
    return (
        "<hudson.model.ParametersDefinitionProperty><parameterDefinitions>"
        + "".join(items)
        + "</parameterDefinitions></hudson.model.ParametersDefinitionProperty>"
    )


def pipeline_config_xml(
    jenkinsfile_text: str,
    *,
    scm_url: str | None = None,
    branch: str = "main",
    script_path: str = "jenkins/Jenkinsfile",
    description: str = "",
) -> str:
    """A pipeline job's config.xml: the Jenkinsfile from SCM (``scm_url``) or inline, with its parameters."""
    if scm_url:
        definition = (
            '<definition class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition">'
            '<scm class="hudson.plugins.git.GitSCM"><userRemoteConfigs><hudson.plugins.git.UserRemoteConfig>'
            f"<url>{escape(scm_url)}</url></hudson.plugins.git.UserRemoteConfig></userRemoteConfigs>"
            f"<branches><hudson.plugins.git.BranchSpec><name>*/{escape(branch)}</name>"
            "</hudson.plugins.git.BranchSpec></branches></scm>"
            f"<scriptPath>{escape(script_path)}</scriptPath><lightweight>true</lightweight></definition>"
        )
    else:
        definition = (
            '<definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition">'
            f"<script>{escape(jenkinsfile_text)}</script><sandbox>true</sandbox></definition>"
        )
    return (
        "<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin=\"workflow-job\">"
        f"<description>{escape(description)}</description><keepDependencies>false</keepDependencies>"
        f"<properties>{parameters_xml(jenkinsfile_text)}</properties>{definition}"
        "<disabled>false</disabled></flow-definition>"
    )


def new_trigger_id(env: Mapping[str, str] | None = None) -> str:
    """A trigger id: stable across retries of one CI job attempt (GitHub run id + attempt), else random."""
    env = os.environ if env is None else env
    if env.get("GITHUB_RUN_ID"):
        return f"gh-{env['GITHUB_RUN_ID']}-{env.get('GITHUB_RUN_ATTEMPT', '1')}-{env.get('GITHUB_JOB', '')}"
    return uuid.uuid4().hex


def build_parameters(build: dict) -> dict:
    """The parameters a build (or queue item) was started with, from its ``actions``."""
    values = {}
    for action in build.get("actions") or []:
        for p in (action or {}).get("parameters") or []:
            values[p.get("name")] = p.get("value")
    return values


def exit_status(result: str | None) -> int:
    """A build's result as an exit code: SUCCESS 0, anything else non-zero."""
    return 0 if result == "SUCCESS" else 1
