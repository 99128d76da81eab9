"""GitLab CI: the job's context for the ledger, a dotenv report later jobs read, and a log section per command.

GitLab sets ``GITLAB_CI=true`` in every job (gitlab-ci-local sets ``false``: a local run is no GitLab job).
A command's result is appended to the file ``VCI_DOTENV`` names (the job's ``artifacts:reports:dotenv``,
set by gitlab_ci/vci.gitlab-ci.yml) as ``VCI_DIGEST``, ``VCI_RELEASE_ID``, ``VCI_ENDPOINT``, ...: GitLab
passes them to the jobs that ``needs:`` this one as variables, the last line of a key winning (so a later
command's value replaces an earlier one's, as for ``$GITHUB_OUTPUT`` nothing is rewritten). GitLab's
dotenv rules: keys of ASCII letters, digits and ``_``; one line per value, quotes kept as they are, no
escapes; at most 5 KB and 20 variables (the smallest plan limit), so only the few keys below are written
and a value that breaks a rule is left out. Each command runs inside a job log section (``section_start``
and ``section_end`` on stderr, so that stdout stays one JSON object under ``--output json``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

# The result keys a dotenv report carries, as VCI_<KEY>; later jobs read them (VCI_DIGEST, VCI_RELEASE_ID, ...).
DOTENV_KEYS = ("run_id", "version", "image", "digest", "release_id", "endpoint")
SECTION_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def in_gitlab_ci(env: Mapping[str, str] | None = None) -> bool:
    """True in a GitLab CI job (the runner sets GITLAB_CI=true)."""
    return (env if env is not None else os.environ).get("GITLAB_CI") == "true"


def ci_context(env: Mapping[str, str]) -> dict | None:
    """The job for the ledger: its URL, pipeline, commit, who started it (in a manual job, who ran it), its
    environment; None outside GitLab CI."""
    if not in_gitlab_ci(env):
        return None
    return {
        "system": "gitlab",
        "url": env.get("CI_JOB_URL"),
        "pipeline_url": env.get("CI_PIPELINE_URL"),
        "sha": env.get("CI_COMMIT_SHA"),
        "actor": env.get("GITLAB_USER_LOGIN"),
        "ref": env.get("CI_COMMIT_REF_NAME"),
        "repository": env.get("CI_PROJECT_PATH"),
        "environment": env.get("CI_ENVIRONMENT_NAME") or None,
    }


def dotenv_value(value) -> str | None:
    """A result value as one dotenv value, or None where GitLab's dotenv rules cannot carry it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str) or not value or "\n" in value or "\r" in value or value[0] in "'\"":
        return None
    return value


def dotenv_entries(result: dict) -> dict[str, str]:
    """``VCI_<KEY>`` for each of DOTENV_KEYS the result has as a single-line value."""
    entries = {}
    for key in DOTENV_KEYS:
        value = dotenv_value(result.get(key))
        if value is not None:
            entries[f"VCI_{key.upper()}"] = value
    return entries


def write_dotenv(result: dict, env: Mapping[str, str] | None = None) -> str | None:
    """Append the result's entries to the file ``VCI_DOTENV`` names (its path); nothing when it is not set
    or the result has none of the keys."""
    path = (env if env is not None else os.environ).get("VCI_DOTENV")
    entries = dotenv_entries(result)
    if not path or not entries:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(f"{key}={value}\n" for key, value in entries.items()))
    return path


def section_name(title: str) -> str:
    """A section name GitLab accepts (letters, digits, ``_``, ``.``, ``-``), unique to this process."""
    return f"{SECTION_NAME.sub('-', title)}-{os.getpid()}"


def section_start(name: str, header: str, collapsed: bool = False) -> str:
    option = "[collapsed=true]" if collapsed else ""
    return f"\x1b[0Ksection_start:{int(time.time())}:{name}{option}\r\x1b[0K{header}\n"


def section_end(name: str) -> str:
    return f"\x1b[0Ksection_end:{int(time.time())}:{name}\r\x1b[0K\n"


@contextlib.contextmanager
def section(header: str, stream: TextIO | None = None) -> Iterator[None]:
    """A collapsible job log section around what the block prints (closed when it raises, too)."""
    stream = stream or sys.stderr
    name = section_name(header)
    stream.write(section_start(name, header))
    stream.flush()
    try:
        yield
    finally:
        sys.stdout.flush()
        stream.write(section_end(name))
        stream.flush()
