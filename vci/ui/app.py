"""The Flask application of ``vci ui``: routes that read through ``pages`` and act through ``actions``.

Pages are rendered on the server by Jinja2 (autoescaped) with the app's own stylesheet; no page runs a
script (the CSP forbids any). Errors from the library are shown as their one-line message, masked by
``vci.redact``; an action the guard refuses changes nothing and says why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from pathlib import Path

from flask import Flask, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server, select_address_family

from ..client import DeployedModel
from ..config import Settings
from ..deploy import target_for
from ..errors import ConflictError, NotFoundError, UsageError, VciError
from ..ledger import ReleaseRecord
from ..redact import mask_url, redact
from . import actions
from .charts import Sampler, charts_for, drift_charts, drift_points
from .diff import ReleaseDiff, diff_manifests, image_layers, layer_rows
from .guard import COOKIE, HEADERS, Guard, Refused, same_origin
from .pages import PAGE, Catalog, ci_url, evidence, manifest_schema, shown_error

HERE = Path(__file__).parent
log = logging.getLogger("vci")
PRODUCTION_NAMES = {"production", "prod"}
STATUS_OF = {UsageError: 400, NotFoundError: 404, ConflictError: 409}


def create_app(settings: Settings, guard: Guard) -> Flask:
    """The app over ``settings``' store and environments, acting only as ``guard`` allows."""
    app = Flask("vci.ui", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(catalog=Catalog(settings), guard=guard, sampler=Sampler(settings), settings=settings)
    app.jinja_env.filters.update(short=_short, ci_url=ci_url)
    app.jinja_env.globals.update(store=mask_url(settings.store), can_try=can_try)
    app.before_request(_session)
    app.after_request(_secure_headers)
    app.register_error_handler(VciError, _library_error)
    app.register_error_handler(Refused, _refused)
    app.register_error_handler(Exception, _unexpected)
    _read_routes(app)
    _action_routes(app)
    return app


def serve(app: Flask, host: str, port: int):
    """A threaded WSGI server for ``app`` on ``host:port`` (0: a free port); the caller runs it. The socket is
    bound here, so that a taken port is a UsageError (werkzeug's own bind exits the process)."""
    try:
        listener = socket.create_server((host, port), family=select_address_family(host, port), backlog=128)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port") from None
    with listener:
        return make_server(host, listener.getsockname()[1], app, threaded=True, fd=listener.fileno())


def can_try(settings: Settings, env: str) -> bool:
    """The "try it" form sends predictions to non-production environments only: not named production or
    prod, and not requiring approval."""
    return env not in PRODUCTION_NAMES and not settings.environment(env).requires_approval


def _short(digest: str | None, length: int = 19) -> str:
    return (digest or "")[:length] or "-"


def _session() -> None:
    guard: Guard = _config("guard")
    guard.check_host(request.host)
    session = request.cookies.get(COOKIE)
    g.signed_in = guard.signed_in(session)
    g.csrf = guard.csrf(session)
    g.actions = guard.actions


def _secure_headers(response):
    response.headers.update(HEADERS)
    return response


def _library_error(exc: VciError):
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
    return render_template("message.html", title="refused" if status < 500 else "failed", text=shown_error(exc)), status


def _unexpected(exc: Exception):
    """A bug (or a library error not yet translated into the VciError tree): one line, as the CLI prints it."""
    if isinstance(exc, HTTPException):  # Flask's own 403/404/405: its status, our page
        return render_template("message.html", title=exc.name.lower(), text=exc.description), exc.code
    log.exception("vci ui: internal error")
    text = redact(f"internal error: {type(exc).__name__}: {exc} (a bug in vci: the app's log has the traceback)")
    return render_template("message.html", title="failed", text=text), 500


def _refused(exc: Refused):
    return render_template("message.html", title="refused", text=exc.message), exc.status


def _config(name: str):
    from flask import current_app

    return current_app.config[name]


def _read_routes(app: Flask) -> None:
    @app.get("/")
    def board():
        return render_template("board.html", rows=_config("catalog").board(), settings=_config("settings"))

    @app.get("/env/<name>")
    def environment(name: str):
        catalog: Catalog = _config("catalog")
        page = request.args.get("page", default=1, type=int) or 1
        timeline = catalog.timeline(name, request.args.get("before") or None, page)
        status = target_for(_config("settings"), name).status()
        canary = None if status.shadow else catalog.canary(name)  # a local shadow's server sits in the canary's slot
        settings = _config("settings")
        return render_template("env.html", timeline=timeline, status=status, canary=canary, settings=settings)

    @app.get("/env/<name>/live")
    def live(name: str):
        settings = _config("settings")
        settings.environment(name)  # an unknown one is a 404 with the configured names
        sampler: Sampler = _config("sampler")
        problem = sampler.scrape(name)
        drift = drift_charts(drift_points(sampler.scrapes(name)))
        return render_template(
            "live.html", env=name, charts=charts_for(sampler.points(name)), drift=drift, problem=problem
        )

    @app.get("/runs")
    def runs():
        project, tag = request.args.get("project") or None, request.args.get("tag") or None
        found = _config("catalog").runs(project, tag, PAGE)
        return render_template("runs.html", runs=found, project=project or "", tag=tag or "")

    @app.get("/runs/<run_id>")
    def run(run_id: str):
        catalog: Catalog = _config("catalog")
        found = catalog.run(run_id)
        manifest = found.manifest
        return render_template(
            "run.html",
            run=found,
            manifest=manifest,
            schema=manifest_schema(manifest),
            examples=json.dumps((manifest.get("examples") or {}).get("inputs"), indent=1),
            releases=catalog.where_run(found),
            evidence=evidence(catalog.settings, found.id),
        )

    @app.get("/diff")
    def diff():
        catalog: Catalog = _config("catalog")
        a, b = _release_arg(catalog, "a"), _release_arg(catalog, "b")
        return render_template("diff.html", a=a, b=b, diff=_diff(catalog, a, b))


def _release_arg(catalog: Catalog, name: str) -> ReleaseRecord:
    """A release named by the query argument ``name`` as ``ENV/RELEASE_ID``."""
    env, _, release_id = (request.args.get(name) or "").partition("/")
    if not env or not release_id:
        raise UsageError(f"name two releases as ?a=ENV/RELEASE_ID&b=ENV/RELEASE_ID ({name!r} is missing)")
    return catalog.record(env, release_id)


def _diff(catalog: Catalog, a: ReleaseRecord, b: ReleaseRecord) -> ReleaseDiff:
    runs = [catalog.run(r.run_id).manifest if r.run_id else {} for r in (a, b)]
    found = diff_manifests(runs[0], runs[1])
    if a.image and b.image:
        try:
            insecure = catalog.settings.environment(b.environment).insecure
            layers = layer_rows(image_layers(a.image, insecure), image_layers(b.image, insecure))
            found = dataclasses.replace(found, layers=layers)
        except VciError as exc:  # the registry is out of reach, or refuses: the page says why
            found = dataclasses.replace(found, layers_problem=shown_error(exc))
    return found


def _action_routes(app: Flask) -> None:
    @app.route("/login", methods=["GET", "POST"])
    def login():
        guard: Guard = _config("guard")
        offered = request.form.get("token") if request.method == "POST" else request.args.get("token")
        if offered is None:
            return render_template("login.html")
        if request.method == "POST" and not same_origin(
            request.headers.get("Origin"), request.headers.get("Referer"), request.host_url
        ):
            raise Refused("refused: the sign-in comes from another origin")
        response = redirect(url_for("board"))
        response.set_cookie(COOKIE, guard.login(offered), httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    @app.post("/promote")
    def promote():
        _check_action()
        form, settings = request.form, _config("settings")
        result = actions.promote_action(
            settings,
            source=form.get("source", ""),
            destination=form.get("destination", ""),
            digest=form.get("digest", ""),
            strategy=form.get("strategy", "direct"),
            actor=form.get("actor"),
            approver=form.get("approver"),
            seen=form.get("seen"),
        )
        return render_template("message.html", title=result["outcome"], text=result.get("reason"), result=result)

    @app.post("/rollback")
    def rollback():
        _check_action()
        form = request.form
        result = actions.rollback_action(
            _config("settings"), env=form.get("env", ""), to=form.get("to", ""), actor=form.get("actor"),
            seen=form.get("seen"),
        )  # fmt: skip
        return render_template("message.html", title=result["outcome"], text=result.get("reason"), result=result)

    @app.post("/abort")
    def abort_canary():
        _check_action()
        text = actions.abort_action(
            _config("settings"), env=request.form.get("env", ""), actor=request.form.get("actor")
        )
        return render_template("message.html", title="aborted", text=text)

    @app.get("/env/<name>/try")
    def try_form(name: str):
        settings = _config("settings")
        if not can_try(settings, name):
            abort(403)
        status = target_for(settings, name).status()
        if not status.run_id:
            raise NotFoundError(f"nothing is deployed to {name!r}", hint=f"vci deploy RUN_ID --env {name}")
        run = _config("catalog").run(status.run_id)
        schema = manifest_schema(run.manifest)
        inputs = (run.manifest.get("examples") or {}).get("inputs") or []
        return render_template(
            "try.html",
            env=name,
            run=run,
            fields=form_fields(schema, inputs[0] if inputs else None),
            schema=json.dumps(schema, indent=1) if schema else None,
            example=json.dumps(inputs[0]) if inputs else "",
        )

    @app.post("/env/<name>/predict")
    def try_it(name: str):
        settings = _config("settings")
        if not can_try(settings, name):
            abort(403)
        _check_action()
        answer = _predict(settings, name, _form_input(request.form))
        return render_template("message.html", title="answer", text=answer, env=name)


def _check_action() -> None:
    auth = request.headers.get("Authorization", "")
    _config("guard").check_action(
        session=request.cookies.get(COOKIE),
        bearer=auth[7:] if auth.startswith("Bearer ") else None,
        csrf=request.form.get("csrf"),
        origin=request.headers.get("Origin"),
        referer=request.headers.get("Referer"),
        host_url=request.host_url,
    )
    _config("catalog").forget_listings()  # what follows may write the ledger: the next page lists again


def _predict(settings: Settings, env: str, data: str) -> str:
    """What ``vci predict --env ENV --data DATA`` prints: the model's answer as JSON."""
    try:
        given = json.loads(data, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise UsageError(f"the input is not strict JSON: {exc}", hint="e.g. [[5.1, 3.5, 1.4, 0.2]]") from None
    client: DeployedModel = target_for(settings, env).client(timeout=10.0, deadline=10.0)
    try:
        return json.dumps(client.predict(given))
    finally:
        client.close()


def form_fields(schema: dict | None, example) -> list[dict]:
    """One form field per property of an object schema (its type, the example's value), else none (the
    form then takes the input as JSON, filled in with the first logged example)."""
    properties = (schema or {}).get("properties") if (schema or {}).get("type") == "object" else None
    if not isinstance(properties, dict) or not properties:
        return []
    given = example if isinstance(example, dict) else {}
    return [
        {
            "name": name,
            "type": (spec or {}).get("type", "any"),
            "value": json.dumps(given[name]) if name in given else "",
        }
        for name, spec in properties.items()
    ]


def _shown_value(given: dict, name: str) -> str:
    return json.dumps(given[name]) if name in given else ""


def _form_input(form) -> str:
    """The prediction's JSON: the ``data`` field, or an object of the ``field.NAME`` fields (each JSON)."""
    fields = {k.removeprefix("field."): v for k, v in form.items() if k.startswith("field.")}
    if not fields:
        return form.get("data", "")
    parts = []
    for name, text in fields.items():
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except ValueError:
            value = text  # a bare word is taken as the string it is
        parts.append((name, value))
    return json.dumps(dict(parts))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")
