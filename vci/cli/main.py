"""The ``vci`` entry point: the command group, global flags, and the one place errors are printed."""

from __future__ import annotations

import logging
import os
import sys

import click

from .. import __version__
from ..ci import gitlab
from ..errors import Aborted, VciError
from ..redact import RedactingFormatter, redact, remember_environment
from .output import STATE, report_error


class LazyGroup(click.Group):
    """Commands live in submodules imported only when that command runs (``vci --help`` stays fast)."""

    COMMANDS = {
        "init": ("vci.cli.init", "init_cmd", "Start a project: model, training, settings, examples, CI."),
        "log": ("vci.cli.runs", "log_cmd", "Log a model, its artifacts and requirements as a run."),
        "runs": ("vci.cli.runs", "runs_group", "List and show logged runs."),
        "import": ("vci.cli.importing", "import_group", "Import a model saved by MLflow or BentoML as a run."),
        "package": ("vci.cli.package", "package_cmd", "Build a run's OCI image (no daemon) and push it."),
        "serve": ("vci.cli.deploy", "serve_cmd", "Serve a run in the foreground."),
        "deploy": ("vci.cli.deploy", "deploy_cmd", "Deploy a run or an image by digest to an environment."),
        "render": ("vci.cli.deploy", "render_cmd", "Print the Kubernetes YAML a deploy would apply."),
        "status": ("vci.cli.deploy", "status_cmd", "Show what runs in one environment or in every one."),
        "envs": ("vci.cli.envs", "envs_cmd", "List the configured environments."),
        "logs": ("vci.cli.envs", "logs_cmd", "Show (or follow) the model server's log of an environment."),
        "undeploy": ("vci.cli.deploy", "undeploy_cmd", "Stop what runs in an environment."),
        "predict": ("vci.cli.deploy", "predict_cmd", "Send a prediction request to a deployment."),
        "predictions": (
            "vci.cli.predictions",
            "predictions_cmd",
            "Show the predictions a server logged (newest first).",
        ),
        "test": ("vci.cli.release", "test_cmd", "Smoke-test a live deployment with its run's examples."),
        "promote": ("vci.cli.release", "promote_cmd", "Promote the verified digest to another environment."),
        "rollback": ("vci.cli.release", "rollback_cmd", "Return an environment to an earlier release."),
        "history": ("vci.cli.release", "history_cmd", "List an environment's releases (the ledger)."),
        "holds": ("vci.cli.holds", "holds_group", "List, add and lift holds on automatic promotion."),
        "jenkins": ("vci.cli.jenkins", "jenkins_group", "Set up, trigger and follow the pipeline job on Jenkins."),
        "gc": ("vci.cli.gc", "gc_cmd", "List (or remove, --yes) unfinished uploads killed writers left."),
        "keys": ("vci.cli.keys", "keys_group", "Make a signing key pair; show a public key's id."),
        "sign": ("vci.cli.sign", "sign_cmd", "Sign an image by digest with the configured key (one built elsewhere)."),
        "ui": ("vci.cli.ui", "ui_cmd", "Serve the web app: environments, releases, runs, charts; actions."),
        "verify": ("vci.cli.verify", "verify_cmd", "Check an image's or a run's signatures and attestations."),
    }

    def list_commands(self, ctx):
        return sorted(self.COMMANDS)

    def get_command(self, ctx, name):
        if name not in self.COMMANDS:
            return None
        import importlib

        module, attr, _ = self.COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in sorted(self.COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="vci")
@click.option("--debug", is_flag=True, envvar="VCI_DEBUG", help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool):
    """vci: log a model, package it as an image, deploy it to staging, test it, promote the same
    digest to production.

    Every command that prints a result takes --output json. Settings come from vci.yaml (or
    [tool.vci] in pyproject.toml), then VCI_* environment variables, then flags.
    """
    STATE["debug"] = debug
    handler = logging.StreamHandler(sys.stderr)  # every record, botocore's and urllib3's too, redacted
    handler.setFormatter(RedactingFormatter("vci: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])
    if ctx.invoked_subcommand and gitlab.in_gitlab_ci():  # a job log section per command, closed before any error
        ctx.with_resource(gitlab.section(f"vci {ctx.invoked_subcommand}"))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    STATE["debug"] = bool(os.environ.get("VCI_DEBUG")) or "--debug" in args
    if wants_json(args):  # known before parsing: a usage error stops click before --output is processed
        STATE["output"] = "json"
    remember_environment()  # AWS_SECRET_ACCESS_KEY, VCI_REGISTRY_PASSWORD, ...: never printed
    try:
        code = cli.main(args=argv, prog_name="vci", standalone_mode=False)
    except VciError as exc:
        if STATE["debug"]:
            print_traceback()
        report_error(str(exc), exc.code)
        sys.exit(exc.exit_code)
    except Aborted as exc:  # SIGTERM/SIGINT during a release, after its cleanup and ledger record
        report_error(str(exc), exc.code)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        print("vci: aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:  # a usage error (unknown option, missing argument, bad choice)
        if STATE["output"] != "json":
            exc.show()
        else:
            report_error(usage_message(exc), "usage")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("vci: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: one line, and with --debug its traceback (redacted like all vci prints)
        if STATE["debug"]:
            print_traceback()
        report_error(f"internal error: {type(exc).__name__}: {exc} (a bug in vci: --debug shows the traceback)", "bug")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--output json`` (``-o json``, ``--output=json``, ``-ojson``)."""
    args = args[: args.index("--")] if "--" in args else args
    pairs = zip(args, [*args[1:], ""], strict=True)
    return any(
        (a in ("--output", "-o") and b == "json") or a in ("--output=json", "-ojson", "-o=json") for a, b in pairs
    )


def usage_message(exc: click.ClickException) -> str:
    """Click's message, with the command it concerns and where its usage is shown."""
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return exc.format_message() + where


def print_traceback() -> None:
    import traceback

    print(redact(traceback.format_exc()), end="", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
