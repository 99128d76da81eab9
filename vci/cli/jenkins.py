"""``vci jenkins setup|trigger``: create or update the pipeline job, trigger it once and follow its build."""

from __future__ import annotations

import sys

import click

from ..ci.jenkins import JenkinsClient
from ..ci.jenkins_job import (
    exit_status,
    load_credentials,
    new_trigger_id,
    pipeline_config_xml,
)
from ..errors import DeployError, UsageError
from .output import emit, output_option
from .params import HTTP_URL, POSITIVE_SECONDS

url_option = click.option(
    "--url",
    envvar="JENKINS_URL",
    required=True,
    type=HTTP_URL,
    metavar="URL",
    help="Jenkins base URL (or JENKINS_URL).",
)
job_option = click.option("--job", required=True, metavar="NAME", help="The job (folder/name for jobs in folders).")
credentials_option = click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A file holding USER:API_TOKEN (default: JENKINS_USER and JENKINS_TOKEN; never a flag).",
)
timeout_option = click.option(
    "--timeout",
    type=POSITIVE_SECONDS,
    default=30.0,
    show_default=True,
    help="Seconds to wait for each HTTP answer from Jenkins.",
)
poll_option = click.option(
    "--poll-interval",
    "poll",
    type=POSITIVE_SECONDS,
    default=1.0,
    show_default=True,
    help="Seconds between polls of the queue, the build and its console.",
)


def _client(url, credentials_file, timeout, poll=1.0):

    return JenkinsClient(url, load_credentials(path=credentials_file), timeout=timeout, poll=poll)


@click.group("jenkins")
def jenkins_group():
    """Run vci's pipeline on Jenkins: set up the job, trigger it, follow it."""


@jenkins_group.command("setup")
@url_option
@job_option
@click.option(
    "--jenkinsfile",
    default="jenkins/Jenkinsfile",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The Jenkinsfile: inlined, or (with --scm-url) its path in the repository.",
)
@click.option("--scm-url", metavar="URL", help="Load the Jenkinsfile from this git repository instead of inlining it.")
@click.option("--branch", default="main", show_default=True, help="Branch to build (with --scm-url).")
@click.option("--dry-run", is_flag=True, help="Print the config.xml and touch nothing.")
@credentials_option
@timeout_option
@output_option
def setup_cmd(url, job, jenkinsfile, scm_url, branch, dry_run, credentials_file, timeout, output):
    """Create the pipeline job or update its config.xml (idempotent: an unchanged job is left alone)."""

    try:
        text = open(jenkinsfile, encoding="utf-8").read()
    except OSError as exc:
        raise UsageError(f"cannot read {jenkinsfile}: {exc.strerror}", hint="pass --jenkinsfile PATH") from exc
    config = pipeline_config_xml(
        text,
        scm_url=scm_url,
        branch=branch,
        script_path=jenkinsfile,
        description="vci model delivery (managed by `vci jenkins setup`)",
    )
    if dry_run:
        emit(output, {"job": job, "config_xml": config, "outcome": "planned"}, config)
        return
    outcome = _client(url, credentials_file, timeout).upsert_job(job, config)
    emit(output, {"job": job, "url": f"{url.rstrip('/')}/job/{job}/", "outcome": outcome}, f"{outcome}: {job}")


def _parse_params(values: tuple[str, ...]) -> dict:

    params = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {value!r} is not KEY=VALUE", hint="e.g. --param RUN_ID=20261124-0712-3f9a")
        params[key] = val
    return params


@jenkins_group.command("trigger")
@url_option
@job_option
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A build parameter; repeatable.")
@click.option(
    "--trigger-id",
    metavar="ID",
    help="Identifies this trigger: repeating it never starts a second build "
    "(default: the GitHub run and attempt, else random).",
)
@click.option("--wait", is_flag=True, help="Wait for the build and exit with its result (SUCCESS 0).")
@click.option("--follow", is_flag=True, help="Stream the console while the build runs (implies --wait).")
@click.option(
    "--build-timeout",
    type=POSITIVE_SECONDS,
    default=3600.0,
    show_default=True,
    help="Seconds to wait for the queued build to start and finish.",
)
@credentials_option
@timeout_option
@poll_option
@output_option
def trigger_cmd(url, job, params, trigger_id, wait, follow, build_timeout, credentials_file, timeout, poll, output):
    """Trigger the job with parameters (in the request body); with --wait/--follow, exit with its result."""

    client = _client(url, credentials_file, timeout, poll)
    trigger_id = trigger_id or new_trigger_id()
    started = client.trigger(job, _parse_params(params), trigger_id)
    result = {
        "job": job,
        "trigger_id": trigger_id,
        "queue_id": started["queue_id"],
        "build": started["build"],
        "reused": started["reused"],
        "result": None,
        "url": None,
    }
    if wait or follow:
        number = started["build"] or client.await_build(job, started["queue_id"], build_timeout)
        if follow:
            stream = sys.stderr if output == "json" else sys.stdout
            client.stream_console(job, number, lambda text: (stream.write(text), stream.flush()), build_timeout)
        build = client.await_result(job, number, build_timeout)
        result.update(build=number, result=build["result"], url=build.get("url"))
    emit(
        output,
        result,
        f"{job} #{result['build'] or '(queued ' + str(result['queue_id']) + ')'}: "
        f"{result['result'] or 'triggered'}{' (already triggered)' if result['reused'] else ''}",
    )
    if result["result"] and exit_status(result["result"]):
        raise DeployError(f"build #{result['build']} of {job!r} ended {result['result']}", hint=result["url"] or "")
