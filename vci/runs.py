"""Runs: log artifacts, a model class, requirements and examples, then commit an immutable manifest."""

from __future__ import annotations

import inspect
import json
import logging
import os
import platform
import re
import secrets
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from . import __version__
from .archive import archive_directory
from .catalog import newest_documents
from .config import Settings, load_settings
from .errors import ConflictError, IntegrityError, ModelValidationError, NotFoundError, UsageError
from .fetch import fetch_model_dir
from .files import write_replacing
from .frameworks import detect, model_for
from .frameworks.base import META_KEY
from .model import pickle_model_class, validate_model_class
from .modeldir import (
    SCHEMA,
    blob_records,
    load_model,
    manifest_digest,
    manifest_problem,
    materialize_artifacts,
)
from .progress import Progress
from .redact import refuse_secret_variable
from .requirements import lock_requirements, pin_requirements, read_requirements
from .schema import declared, describe
from .schema import schemas as infer_schemas
from .store import open_store
from .store.base import Store
from .store.dryrun import DryRunStore
from .store.sigterm import sigterm_raises
from .tags import Tag, list_tags, run_id_for, write_tag
from .trust import SIGNATURE_FILE, keys_from_environ, read_run_signature, sign_run, signer_for, verify_run_envelope

log = logging.getLogger("vci")
OPEN_RUNS: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()  # logged here, not committed
RUN_ID = re.compile(r"\d{8}-\d{6}-(?:[0-9a-f]{8}|[0-9a-f]{4})")  # older runs: 4 hex digits
ARTIFACT_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROJECT = ARTIFACT_KEY  # a project names directories, image labels and Kubernetes objects
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_EXAMPLES_BYTES = 64 * 1024  # the manifest travels in image configs (see vci.build.plan)
COMMIT_ATTEMPTS = 5  # ids tried before commit() gives up (a collision is one in 2**32 per second and pair)


def new_run_id() -> str:
    """Short, sortable by time, unique in practice: ``YYYYMMDD-HHMMSS-xxxxxxxx`` (UTC, 32 random bits).

    Two runs collide only when they start in the same second and draw the same 32 bits: for n runs in
    one second about n**2 / 2**33, so 1,000 runs started in one second collide once in 8,600 such
    seconds; commit() then takes another id."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def run_key(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id or ""):
        raise UsageError(
            f"{run_id!r} is not a run id", hint="run ids look like 20261124-071203-3f9a1c7e; see `vci runs list`"
        )
    return f"runs/{run_id}.json"


class Run:
    """A run being logged (mutable) or committed (immutable, read from the store)."""

    def __init__(
        self,
        store: Store,
        *,
        project: str | None = None,
        settings: Settings | None = None,
        manifest: dict | None = None,
    ):
        self.store = store
        self.settings = settings
        self._manifest = manifest
        self.id = manifest["id"] if manifest else new_run_id()
        self.project = manifest.get("project") if manifest else project
        self._artifacts: dict[str, dict] = {}
        self._model: dict | None = None
        self._requirements: list[str] = []
        self._framework_requirements: list[str] = []  # kept when log_requirements comes after log_model
        self._lock: list[dict] = []  # the requirements' whole closure as installed (requirements.lock_requirements)
        self._environment: dict[str, Any] = {"python": platform.python_version(), "env": {}}
        self._examples: dict | None = None
        self._declared: dict[str, dict | None] = {}  # run.log_schema's input and output
        self._model_class: type | None = None  # for its predict's type hints (vci.schema.from_hints)
        self._framework_meta: dict | None = None  # a framework adapter's model.json (vci.schema.from_framework)
        self._schemas: dict | None = None  # set once, when the manifest is first made
        if manifest is None:
            OPEN_RUNS[self.id] = self

    def __repr__(self) -> str:
        state = "committed" if self.committed else "open"
        return f"<Run {self.id} project={self.project!r} {state}>"

    @property
    def committed(self) -> bool:
        return self._manifest is not None

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            raise UsageError(f"run {self.id} is not committed yet", hint="call run.commit()")
        return self._manifest

    @property
    def version(self) -> str:
        """The model version: the digest of the committed manifest."""
        return manifest_digest(self.manifest)

    def _open(self) -> None:
        if self.committed:
            raise UsageError(f"run {self.id} is committed and immutable", hint="start a new run with vci.init()")

    # -- logging ---------------------------------------------------------------------------------
    def log_artifact(self, key: str, value) -> dict:
        """Log a file, a directory (archived reproducibly) or a Python object under ``key``."""
        self._open()
        if not isinstance(key, str) or not ARTIFACT_KEY.fullmatch(key):
            raise UsageError(
                f"artifact key {key!r} is not valid",
                hint="use letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        if key in self._artifacts:
            raise UsageError(
                f"artifact {key!r} is logged already in run {self.id}",
                hint="give each artifact its own key (the model receives {key: path})",
            )
        if isinstance(value, (str, os.PathLike)):
            record = self._log_path(key, Path(value))
        else:
            record = self._log_object(value)
        self._artifacts[key] = record
        return record

    def _log_path(self, key: str, path: Path) -> dict:
        if path.is_dir():
            with sigterm_raises(f"logging {path}"), tempfile.TemporaryDirectory(prefix="vci-") as tmp:
                tar = archive_directory(path, Path(tmp) / f"{key}.tar")
                desc = _upload(self.store, tar, f"{key} (directory)")
            return {"digest": desc.digest, "size": desc.size, "kind": "directory", "filename": path.name}
        if path.is_file():
            desc = _upload(self.store, path, key)
            return {"digest": desc.digest, "size": desc.size, "kind": "file", "filename": path.name}
        raise UsageError(
            f"artifact {key!r}: {path} does not exist", hint="pass an existing file or directory, or a Python object"
        )

    def _log_object(self, value) -> dict:
        import cloudpickle

        try:
            data = cloudpickle.dumps(value)
        except Exception as exc:
            raise UsageError(f"cannot serialise {type(value).__name__}: {exc}") from exc
        desc = self.store.put_bytes(data)
        return {"digest": desc.digest, "size": desc.size, "kind": "object", "filename": "object.pkl"}

    def log_model(self, model_class, artifacts: list[str] | None = None) -> dict:
        """Log the model class (not an instance), or a trained object of a framework vci knows
        (see vci.frameworks); ``artifacts`` are keys logged already."""
        self._open()
        if not inspect.isclass(model_class):
            packed = self._log_framework_object(model_class)
            if packed is not None:
                model_class, artifacts = packed.model_class, [*packed.artifacts, *(artifacts or [])]
        cls = validate_model_class(model_class)
        keys = list(artifacts) if artifacts is not None else sorted(self._artifacts)
        missing = [k for k in keys if k not in self._artifacts]
        if missing:
            raise ModelValidationError(
                f"artifacts not logged yet: {', '.join(missing)}",
                hint="call run.log_artifact(key, path) before log_model",
            )
        desc = self.store.put_bytes(pickle_model_class(cls))
        self._model_class = cls
        self._model = {
            "digest": desc.digest,
            "size": desc.size,
            "artifacts": keys,
            "class": f"{cls.__module__}.{cls.__qualname__}",
        }
        return self._model

    def _log_framework_object(self, obj):
        """Save a trained framework object as artifacts and pin its framework; None if vci.frameworks
        does not know it (log_model then refuses it as before)."""
        if detect(obj) is None:
            return None
        with tempfile.TemporaryDirectory(prefix="vci-model-") as tmp:
            packed = model_for(obj, tmp)
            for key in packed.artifacts:
                if key in self._artifacts:
                    raise UsageError(
                        f"artifact {key!r} is logged already; a framework model logs its own",
                        hint=f"log your artifact under another key than {key!r}",
                    )
            for key, path in packed.artifacts.items():
                self.log_artifact(key, path)
            self._framework_meta = json.loads(Path(packed.artifacts[META_KEY]).read_text())
        self._framework_requirements = packed.requirements
        self._pin(packed.requirements + self._requirements)
        return packed

    def log_requirements(self, requirements) -> list[str]:
        """Pin a list or requirements file to the versions installed now (cloudpickle, vci added)."""
        self._open()
        self._pin(self._framework_requirements + read_requirements(requirements))
        return self._requirements

    def _pin(self, requirements: list[str]) -> None:
        """Pin ``requirements`` and lock their whole closure from what is installed now."""
        pins = pin_requirements(requirements)
        self._requirements, self._lock = pins, lock_requirements(pins)

    def log_environment(self, env_vars: dict[str, str] | list[str] | None = None) -> dict:
        """Record the Python version and environment variables the model needs at serving time: names
        (their values read here) or ``{name: value}``. Secrets are refused (see vci.redact)."""
        self._open()
        self._environment["env"].update(_checked_environment(env_vars))
        return self._environment

    def log_schema(self, input=None, output=None) -> dict:
        """Declare the model's input and output: each a JSON Schema dict, a pydantic model class or None
        (then inferred when the run commits: vci.schema). The server refuses a request that does not
        match the input schema (422) before the model sees it."""
        self._open()
        self._declared = {"input": declared(input, "input"), "output": declared(output, "output")}
        return dict(self._declared)

    def log_examples(self, inputs: list, expected_outputs: list | None = None) -> dict:
        """Example requests that smoke tests (and the canary gate) send to a deployment."""
        self._open()
        if not isinstance(inputs, list) or not inputs:
            raise UsageError("examples must be a non-empty list of model inputs")
        if expected_outputs is not None and not isinstance(expected_outputs, list):
            raise UsageError(f"expected outputs must be a list (one per input), got {type(expected_outputs).__name__}")
        if expected_outputs is not None and len(expected_outputs) != len(inputs):
            raise UsageError(f"{len(inputs)} inputs but {len(expected_outputs)} expected outputs")
        examples = {"inputs": inputs, "expected_outputs": expected_outputs}
        size = len(_as_json(examples, "examples"))
        if size > MAX_EXAMPLES_BYTES:
            raise UsageError(
                f"examples take {size} bytes as JSON; keep them under 64 KiB",
                hint="a few representative requests are enough for smoke tests",
            )
        self._examples = examples
        return examples

    def commit(self) -> str:
        """Write the manifest (last, atomically, never overwriting); return the model version digest.

        Should another run have taken this id meanwhile (two runs started in the same second with the same
        random part), the run takes a new id and commits under it: its blobs do not depend on the id."""
        if self.committed:
            return self.version
        if self._model is None and not self._artifacts:
            raise UsageError(
                f"run {self.id} is empty: nothing to commit",
                hint="log a model (run.log_model(Model, artifacts=[...])) and its artifacts first",
            )
        if not self._requirements:
            self._pin([])  # cloudpickle and vci, always
        if self._model is None:
            log.warning("run %s has artifacts but no model: it can be read back, not served or packaged", self.id)
        signer = signer_for(self.settings)  # a bad key is refused before anything is written
        for _ in range(COMMIT_ATTEMPTS):
            manifest = self._new_manifest()
            if signer is not None:  # signed first: a signed run is never seen unsigned
                sign_run(self.store, manifest, signer)
            try:
                self.store.put_json_new(run_key(self.id), manifest)
            except ConflictError:
                if not self._stored_is(manifest):
                    self.id = new_run_id()
                    continue
            self._manifest = manifest
            return self.version
        raise ConflictError(
            f"run ids kept colliding in {self.store.url} ({COMMIT_ATTEMPTS} tried)",
            hint="check the machine's random source and clock; then commit again",
        )

    def _new_manifest(self) -> dict:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "project": self.project,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "vci_version": _vci_version(),
            "artifacts": self._artifacts,
            "model": self._model,
            "requirements": self._requirements,
            "lock": self._lock,
            "environment": self._environment,
            "examples": self._examples,
            "schemas": self._schemas or self._infer_schemas(),
        }

    def _infer_schemas(self) -> dict:
        """The input and output schemas (declared, else inferred), said in a log line; kept for retries."""
        self._schemas = infer_schemas(
            declared_input=self._declared.get("input"),
            declared_output=self._declared.get("output"),
            model_class=self._model_class,
            framework_meta=self._framework_meta,
            examples=self._examples,
        )
        for side in ("input", "output"):
            source = self._schemas["from"][side] or "nothing (log_schema or log_examples gives one)"
            log.info("run %s: %s schema from %s: %s", self.id, side, source, describe(self._schemas[side]))
        return self._schemas

    def _stored_is(self, manifest: dict) -> bool:
        """Whether the manifest stored under this run's id is ``manifest`` itself (a retried write of ours
        that had arrived), rather than another run's."""
        try:
            return self.store.get_json(run_key(self.id)) == manifest
        except (NotFoundError, IntegrityError):
            return False

    # -- reading back ------------------------------------------------------------------------------
    def model_dir(self) -> Path:
        """A verified local copy of the run as a model directory (cached by model version)."""
        self.commit()
        root = fetch_model_dir(self.store, self.manifest)
        envelope = read_run_signature(self.store, self.version)
        if envelope is not None:  # beside the manifest, for a server that verifies it
            write_replacing(root / SIGNATURE_FILE, json.dumps(envelope, sort_keys=True).encode())
        return root

    def verify(self, keys=None):
        """Check the run's signature against ``keys`` (default: ``VCI_TRUSTED_KEYS``); VerificationError
        unless a trusted key signed exactly this manifest. Returns what was verified (None: no keys)."""
        keys = keys if keys is not None else keys_from_environ()
        if not keys:
            return None
        return verify_run_envelope(self.manifest, read_run_signature(self.store, self.version), keys)

    def fetch_artifacts(self) -> dict[str, str]:
        """``{key: local path}`` of every artifact, downloaded and verified."""
        root = self.model_dir()
        return materialize_artifacts(root, self.manifest, root / "work")

    def load_model(self):
        """An instance built exactly as the model server builds it (its signature checked first when
        ``VCI_TRUSTED_KEYS`` names trusted keys)."""
        self.commit()
        self.verify()
        root = self.model_dir()
        return load_model(root, root / "work")[0]

    def summary(self) -> dict:
        m = self.manifest
        return {
            "id": self.id,
            "project": self.project,
            "created": m["created"],
            "version": self.version,
            "model": (m.get("model") or {}).get("class"),
            "artifacts": sorted(m["artifacts"]),
            "size": sum(r["size"] for r in blob_records(m)),
            "requirements": m["requirements"],
        }

    # -- conveniences over the deploy layer (imported lazily) ---------------------------------------------
    def deploy(self, env: str | None = None, *, wait: bool = True, **options):
        from .deploy import deploy_run

        self.commit()
        return deploy_run(self, env, wait=wait, **options)

    def get_deployed_model(self, env: str | None = None):
        from .deploy import deployed_model

        return deployed_model(self.settings, env)


def _checked_environment(env_vars) -> dict[str, str]:
    """``{name: value}`` from names (read from os.environ, each must be set) or a mapping, every name a
    variable's, every value a string without NUL, and nothing that looks like a secret."""
    if env_vars is None:
        return {}
    if isinstance(env_vars, (list, tuple)):
        unset = [n for n in env_vars if isinstance(n, str) and n not in os.environ]
        if unset:
            raise UsageError(
                f"environment variable {unset[0]} is not set here", hint="set it before logging, or leave it out"
            )
        env_vars = {name: os.environ.get(name, "") if isinstance(name, str) else "" for name in env_vars}
    if not isinstance(env_vars, dict):
        raise UsageError(
            f"log_environment takes a list of variable names or a {{name: value}} dict, not {type(env_vars).__name__}"
        )
    for name, value in env_vars.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not an environment variable name", hint="letters, digits and _, not a digit first"
            )
        if not isinstance(value, str) or "\0" in value:
            got = "a NUL character" if isinstance(value, str) else type(value).__name__
            raise UsageError(f"environment variable {name} must have a string value, got {got}", hint="pass str(value)")
        refuse_secret_variable(name, value)
    return dict(env_vars)


def _as_json(value, what: str) -> str:
    """``value`` as JSON text when JSON holds it exactly: no NaN or infinity (not JSON), no tuple or
    non-string key (they would come back as a list or a string)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{what} must be JSON: {exc}", hint="use lists, dicts with string keys, str, int, finite float"
        ) from exc
    if json.loads(text) != value:
        raise UsageError(
            f"{what} would change when written as JSON (a tuple, or a key that is not a string?)",
            hint="use lists and dicts with string keys",
        )
    return text


def _upload(store: Store, path: Path, label: str):
    size = path.stat().st_size
    bar = Progress(size, f"uploading {label}")
    try:
        return store.put_blob(path, progress=bar)
    finally:
        bar.close()


def _vci_version() -> str:
    return __version__


def _settings_and_store(
    project: str | None = None, store: str | Path | None = None, settings: Settings | None = None
) -> tuple[Settings, Store]:
    settings = settings or load_settings({"project": project, "store": str(store) if store else None})
    return settings, open_store(settings.store)


def init(
    project: str | None = None, *, store: str | None = None, settings: Settings | None = None, dry_run: bool = False
) -> Run:
    """Start a run in the configured store (vci.yaml / VCI_STORE; default ./.vci); with ``dry_run`` it
    writes nothing there (``run.store.planned``: the blobs it would upload)."""
    settings, st = _settings_and_store(project, store, settings)
    project = project or settings.project
    if project is not None and not (isinstance(project, str) and PROJECT.fullmatch(project)):
        raise UsageError(
            f"project name {project!r} is not valid",
            hint="use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return Run(DryRunStore(st) if dry_run else st, project=project, settings=settings)


def get_run(run_id: str, *, store: str | None = None, settings: Settings | None = None) -> Run:
    """A committed run by id, or by name: ``latest``, a tag, ``PROJECT:NAME`` (vci.tags)."""
    settings, st = _settings_and_store(None, store, settings)
    if not RUN_ID.fullmatch(run_id or ""):
        run_id = run_id_for(st, run_id, settings.project)
    try:
        manifest = read_run_manifest(st, run_id)
    except NotFoundError:
        if run_id in OPEN_RUNS and not OPEN_RUNS[run_id].committed:
            raise NotFoundError(
                f"run {run_id} was logged but is not committed, so it is not in the store yet",
                hint="call run.commit() first (run.deploy() and packaging commit it too)",
            ) from None
        raise NotFoundError(
            f"run {run_id} is not in the store {st.url}", hint="`vci runs list` shows the runs there; check VCI_STORE"
        ) from None
    return Run(st, settings=settings, manifest=manifest)


def read_run_manifest(store: Store, run_id: str) -> dict:
    """The manifest of run ``run_id``, checked against the schema: IntegrityError naming the run if it
    is not one (not JSON, a list, a field missing or of the wrong type, another run's id)."""
    key = run_key(run_id)
    try:
        doc = store.get_json(key)
    except IntegrityError as exc:
        raise _malformed(store, run_id, exc.message) from None
    problem = _manifest_problem_at(key, doc)
    if problem:
        raise _malformed(store, run_id, problem)
    return doc


def _malformed(store: Store, run_id: str, problem: str) -> IntegrityError:
    return IntegrityError(
        f"run {run_id} in {store.url} has a malformed manifest: {problem}",
        hint=f"the run cannot be used: log it again as a new run (remove runs/{run_id}.json to hide this one)",
    )


def tag_run(settings: Settings, run: str, name: str, *, dry_run: bool = False) -> Tag:
    """Name a committed run (by id or by another name) ``name`` in its project, moving the tag if it
    exists; a dry run checks everything and says what the tag would be, writing nothing."""
    found = get_run(run, settings=settings)
    if not found.project:
        raise UsageError(f"run {found.id} has no project, and names live in a project", hint="log runs with a project")
    return write_tag(found.store, found.project, name, found.id, dry_run=dry_run)


def run_tags(settings: Settings, project: str | None = None) -> list[Tag]:
    """The names of ``project``'s runs (default: the configured project)."""
    owner = project or settings.project
    if not owner:
        raise UsageError("which project's names?", hint="pass --project, or set project: in vci.yaml")
    return list_tags(open_store(settings.store), owner)


def resolve_run(settings: Settings, run: Run | str) -> Run:
    """A Run object (committed now if it was not) or a run id -> a committed Run."""
    if isinstance(run, Run):
        run.commit()
        return run
    return get_run(str(run), settings=settings)


def list_runs(
    *,
    project: str | None = None,
    store: str | None = None,
    settings: Settings | None = None,
    limit: int | None = None,
    cached: bool = False,
) -> list[Run]:
    """Committed runs, newest first; with ``limit``, only the newest manifests that page needs are read
    (run ids sort by time). ``cached``: manifests may come from the local cache, for a listing that is
    only shown (a Run to load or deploy is read from the store: ``get_run``)."""
    settings, st = _settings_and_store(None, store, settings)
    wanted = (lambda m: m.get("project") == project) if project is not None else (lambda m: True)
    manifests = newest_documents(st, "runs/", limit, wanted, cache=cached, problem=_manifest_problem_at)
    return [Run(st, settings=settings, manifest=m) for m in manifests]


def _manifest_problem_at(key: str, doc) -> str | None:
    """What makes the document at ``key`` not the manifest of the run its key names, or None."""
    run_id = key.removeprefix("runs/").removesuffix(".json")
    if not RUN_ID.fullmatch(run_id):
        return f"{run_id!r} is not a run id"
    problem = manifest_problem(doc)
    return problem or (f"it names the run {doc['id']!r}" if doc["id"] != run_id else None)
