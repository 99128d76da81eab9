"""``vci serve``, ``deploy``, ``status``, ``undeploy`` and ``predict``: run a model and talk to it."""

from __future__ import annotations

import json

import click

from ..client import DeployedModel
from ..deploy import deploy, deployed_model, overview, status, undeploy
from ..deploy.dashboard import grafana_dashboard
from ..deploy.kube import KubeTarget
from ..deploy.manifests import to_yaml
from ..deploy.rbac import render_rbac, subject
from ..errors import UsageError
from ..runs import get_run
from ..serve import run_server
from .output import comparison_text, emit, output_option, record_table
from .params import AT_LEAST_ONE, HTTP_URL, PORT, POSITIVE_SECONDS, SECONDS
from .runs import settings_for, store_option

env_option = click.option("--env", "env", metavar="NAME", help="Environment (default: staging).")
OVERVIEW_FIELDS = ("environment", "target", "state", "run_id", "digest", "release_id", "since")


@click.command("serve")
@click.argument("run_id")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=PORT, default=8080, show_default=True, help="HTTP port (0: a free one, logged).")
@click.option("--grpc-port", type=PORT, default=None, help="Also serve gRPC on this port.")
@click.option("--workers", type=AT_LEAST_ONE, default=1, show_default=True, help="Server worker processes.")
@click.option(
    "--backlog",
    type=AT_LEAST_ONE,
    default=1024,
    show_default=True,
    help="Connections the kernel queues before the server accepts them (capped by net.core.somaxconn).",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Batch concurrent /predict requests into batch_predict calls of at most this many (0: off).",
)
@click.option(
    "--max-latency-ms",
    type=click.FloatRange(0, 60_000),
    default=5.0,
    show_default=True,
    help="The longest a request waits for its batch to fill.",
)
@click.option(
    "--no-validate",
    "validate",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Do not check requests against the run's input schema (else a mismatch is answered 422).",
)
@store_option
def serve_cmd(run_id, host, port, grpc_port, workers, backlog, max_batch_size, max_latency_ms, validate, store):
    """Fetch a run (verified) into the local cache and serve it in the foreground.

    The server is the one images run (python -m vci.serve): POST /predict, POST /batch-predict,
    GET /healthz, /readyz, /metadata, /metrics, /openapi.json and /docs (Swagger UI). Requests that do
    not match the run's input schema get 422. Stop it with Ctrl-C (it drains in-flight requests).
    It listens on 127.0.0.1 unless --host says otherwise (images listen on 0.0.0.0: a pod's own address).
    """
    model_dir = get_run(run_id, settings=settings_for(store)).model_dir()
    where = f"http://{host}:{port}" if port else f"{host}, on a free port (the 'listening' line names it)"
    click.echo(f"serving run {run_id} from {model_dir} on {where}", err=True)
    run_server(
        model_dir,
        host=host,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        backlog=backlog,
        max_batch_size=max_batch_size,
        max_latency=max_latency_ms / 1000,
        validate=validate,
    )


@click.command("deploy")
@click.argument("target", metavar="RUN_ID|IMAGE@DIGEST")
@env_option
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the deployment is ready.")
@click.option(
    "--timeout",
    type=SECONDS,
    default=0,
    show_default=True,
    help="Overall bound in seconds on the wait (0: none; a cluster rollout fails once it makes no progress "
    "for the environment's progress_deadline, a local server gets 300 s to load).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change (a diff on a cluster) and touch nothing.")
@click.option("--allow-tag", is_flag=True, help="Accept an image by tag (a cluster deploys digests otherwise).")
@click.option("--insecure", is_flag=True, default=None, help="Plain-HTTP / unverified registry (local registries).")
@store_option
@output_option
def deploy_cmd(target, env, wait, timeout, dry_run, allow_tag, insecure, store, output):
    """Deploy a run, or an image by digest, to an environment (default staging).

    A local environment (the default) runs a run: the model server starts as a background process on a
    free port and replaces what ran before only once it is ready, so a failed deploy leaves the old one
    serving. A Kubernetes environment runs an image: a run id is packaged and pushed to the
    environment's repository first; --wait watches the rollout and rolls back a failed one.
    Deploying what already runs changes nothing.
    """
    result = deploy(
        settings_for(store),
        target,
        env,
        wait=wait,
        timeout=timeout or None,
        dry_run=dry_run,
        allow_tag=allow_tag,
        insecure=insecure,
    )
    if dry_run and result.diff and output == "text":
        click.echo(result.diff)
    if result.status in ("deployed", "applied"):
        text = f"deployed {result.run_id} to {result.environment}: {result.endpoint} (release {result.release_id})"
    elif result.status == "unchanged":
        text = f"{result.environment} already runs {result.run_id} ({(result.digest or '')[:19]}): nothing to do"
    else:
        text = (
            f"would deploy {result.run_id} ({(result.digest or '')[:19]}) to {result.environment}, "
            f"replacing {result.previous or 'nothing'}"
        )
    emit(output, result.to_json(), text)


@click.command("status")
@click.option("--env", "env", metavar="NAME", help="One environment (default: every configured one).")
@store_option
@output_option
def status_cmd(env, store, output):
    """Show what runs in an environment and whether it is ready; without --env, every environment:
    its target, what runs, health and since when (the ledger's time of its release)."""
    if env is None:
        rows = [row.to_json() for row in overview(settings_for(store))]
        emit(output, {"environments": rows}, record_table(rows, OVERVIEW_FIELDS))
        return
    result = status(settings_for(store), env).to_json()
    if result["state"] == "not-deployed":
        text = f"{result['environment']}: nothing deployed"
    else:
        text = "\n".join(f"{k}: {v}" for k, v in result.items() if k != "shadow")
        if result.get("shadow"):
            text += "\n" + comparison_text(result["shadow"])
    emit(output, result, text)


@click.command("undeploy")
@env_option
@click.option("--dry-run", is_flag=True, help="Print what would be removed (checked by the cluster) and touch nothing.")
@store_option
@output_option
def undeploy_cmd(env, dry_run, store, output):
    """Stop what runs in an environment and forget it. Nothing running is not an error (exit 0), so that a
    cleanup step can always call it."""
    result = undeploy(settings_for(store), env, dry_run=dry_run)
    if not result.removed:
        text = f"{result.environment}: nothing to stop"
    else:
        what = ", ".join(result.objects or []) or (f"server process {result.pid}" if result.pid else "")
        done = "would remove" if result.dry_run else "removed"
        text = f"{done} {result.environment} (was {(result.digest or '')[:19]}): {what}"
    emit(output, result.to_json(), text)


@click.command("predict")
@env_option
@click.option("--url", type=HTTP_URL, help="A model server URL instead of an environment.")
@click.option("--data", required=True, metavar="JSON|@FILE", help="The request: JSON text, or @file.json.")
@click.option("--batch", is_flag=True, help="Send a list to /batch-predict.")
@click.option(
    "--deadline",
    type=POSITIVE_SECONDS,
    default=10.0,
    show_default=True,
    help="Seconds for the call with its retries (a restarting server, 429, 503); a server known to be gone "
    "and other errors fail at once.",
)
@store_option
@output_option
def predict_cmd(env, url, data, batch, deadline, store, output):
    """Send one prediction request to a deployment and print the answer (JSON)."""
    try:
        payload = json.loads(open(data[1:]).read() if data.startswith("@") else data, parse_constant=_not_json)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data is not valid JSON: {exc}", hint="quote it for the shell: --data '[[1, 2]]'") from exc
    if url:
        model = DeployedModel(url, deadline=deadline)
    else:
        model = deployed_model(settings_for(store), env, deadline=deadline)
    if batch:
        result, request_id = model.batch_predict(payload), None
    else:
        result, request_id = model.predict_with_id(payload)
    emit(output, {"prediction": result, "request_id": request_id}, json.dumps(result))


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON (a model server would refuse it)")


@click.command("render")
@click.argument("target", metavar="RUN_ID|IMAGE@DIGEST", required=False)
@env_option
@click.option("--allow-tag", is_flag=True, help="Accept an image by tag.")
@click.option("--insecure", is_flag=True, default=None, help="Plain-HTTP / unverified registry.")
@click.option("--rbac", is_flag=True, help="Print the Role and RoleBinding vci needs in the environment's namespace.")
@click.option("--service-account", metavar="[NAMESPACE/]NAME", help="With --rbac: bind this ServiceAccount.")
@click.option("--user", metavar="NAME", help="With --rbac: bind this user (as the cluster authenticates it).")
@click.option("--grafana", is_flag=True, help="Print the Grafana dashboard (JSON) of the model servers' metrics.")
@click.option(
    "--format",
    "kind",
    type=click.Choice(["kubernetes", "kserve"]),
    default="kubernetes",
    show_default=True,
    help="kserve: a ServingRuntime and an InferenceService (raw deployment mode) running the image instead.",
)
@store_option
@output_option
def render_cmd(target, env, allow_tag, insecure, rbac, service_account, user, grafana, kind, store, output):
    """Print the Kubernetes YAML that `vci deploy` would apply (for GitOps), or with --rbac the least
    access vci needs there (a Role and a RoleBinding for --service-account or --user). With --format
    kserve, KServe's resources for the same image: the model answers KServe's V2 protocol.

    A run id is built (not pushed) to learn the image digest it would deploy (the environment's
    repository names it). An IMAGE@DIGEST renders offline: its run id and model digest come from the
    registry when it answers. Default resources and what could not be read are said on stderr.
    With --grafana, the dashboard to import into Grafana (needs no vci.yaml).
    """
    if grafana:
        click.echo(json.dumps(grafana_dashboard(), indent=2))
        return
    settings = settings_for(store)
    kube = KubeTarget(settings, settings.environment(env))
    if rbac:
        objects = render_rbac(kube.namespace, subject(service_account, user, kube.namespace))
        emit(
            output,
            {"environment": kube.environment.name, "namespace": kube.namespace, "objects": objects},
            to_yaml(objects).rstrip("\n"),
        )
        return
    if not target:
        raise UsageError("name what to render: RUN_ID or IMAGE@DIGEST", hint="or pass --rbac for the Role vci needs")
    rendering = kube.render(target, allow_tag=allow_tag, insecure=insecure, kserve=kind == "kserve")
    for warning in rendering.warnings:
        click.echo(f"vci: warning: {warning}", err=True)
    emit(output, rendering.to_json(), to_yaml(rendering.objects).rstrip("\n"))
