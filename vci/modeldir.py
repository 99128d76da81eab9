"""A model directory on local disk (the image contract): a run manifest plus its blobs, verified, then loaded.

Layout (``/opt/vci/model`` in an image, a cache directory elsewhere)::

    manifest.json          the run manifest; the sha256 of its canonical JSON is the model version
                           (images carry it in their config as VCI_RUN_MANIFEST instead, so that a
                           weights-only change adds exactly one layer)
    blobs/sha256/<hex>     every blob the manifest names: the pickled model class and each artifact

The manifest (schema 1)::

    {"schema": 1, "id": RUN_ID, "project": NAME, "created": ISO-8601, "vci_version": V,
     "artifacts": {KEY: {"digest", "size", "kind": "file"|"directory"|"object", "filename"}},
     "model": {"digest", "size", "class": "module.Qualname", "artifacts": [KEY, ...]},
     "requirements": ["pkg==1.2.3", ...],
     "lock": [{"name", "version", "extras": [...]?, "dependencies_locked": false?}, ...],   (optional)
     "environment": {"python": "3.11.7", "env": {NAME: VALUE}},
     "examples": {"inputs": [...], "expected_outputs": [...] | null} | null,
     "schemas": {"input": SCHEMA | null, "output": SCHEMA | null,                           (optional)
                   "from": {"input": "declared" | "type hints" | FRAMEWORK | "examples" | null, "output": ...}}}

``requirements`` are the direct pins; ``lock`` is their whole closure as installed when the run was
logged (vci.requirements.lock_requirements), what the image's dependency layer holds exactly. Runs
logged before locks have none, and their images resolve the pins' dependencies when they are built.
``schemas`` holds the JSON Schemas of the model's input and output (vci.schema), which the server
checks requests against; runs logged before vci recorded them have none, and nothing is checked for them.

Nothing here imports the store, boto3 or the CLI: the model server uses this module alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from pathlib import Path

from .archive import extract_archive, matches_archive
from .digests import check_digest, hex_of, sha256_bytes, verify_bytes, verify_file
from .errors import IntegrityError, NotFoundError, ServeError, UsageError
from .files import commit, temporary_for

SCHEMA = 1
MANIFEST = "manifest.json"
MANIFEST_ENV = "VCI_RUN_MANIFEST"  # an image's manifest, when its model directory has no manifest.json
log = logging.getLogger("vci")


def encode_manifest(manifest: dict) -> bytes:
    """Canonical bytes of a manifest: sorted keys, no spaces; hashing them gives the model version."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def manifest_digest(manifest: dict) -> str:
    return sha256_bytes(encode_manifest(manifest))


def blob_path(model_dir: str | Path, digest: str) -> Path:
    return Path(model_dir) / "blobs" / "sha256" / hex_of(digest)


def blob_records(manifest: dict) -> list[dict]:
    """Every blob record a manifest names (the model first, then artifacts by key)."""
    records = []
    if manifest.get("model"):
        records.append(manifest["model"])
    records.extend(manifest["artifacts"][k] for k in sorted(manifest.get("artifacts", {})))
    return records


_KINDS = ("file", "directory", "object")


def manifest_problem(doc) -> str | None:
    """What makes ``doc`` not a schema-1 run manifest (the first problem found), or None.

    Every reader checks this before it uses a field, so a malformed manifest is one clear error
    naming the run instead of a KeyError or TypeError wherever the field is first used."""
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}, not an object"
    if doc.get("schema") != SCHEMA or isinstance(doc.get("schema"), bool):
        return f"schema {doc.get('schema')!r}, not {SCHEMA}"
    return (
        _typed(doc, "id", str)
        or _typed(doc, "created", str)
        or _created_problem(doc["created"])
        or _typed(doc, "vci_version", str)
        or _typed(doc, "project", (str, type(None)), optional=True)
        or _typed(doc, "requirements", list)
        or _all(doc["requirements"], str, "requirements")
        or _lock_problem(doc)
        or _environment_problem(doc)
        or _artifacts_problem(doc)
        or _model_problem(doc)
        or _examples_problem(doc.get("examples"))
        or _schemas_problem(doc.get("schemas"))
    )


def _typed(doc: dict, field: str, types, *, optional: bool = False, where: str = "") -> str | None:
    name = f"{where}{field}"
    if field not in doc:
        return None if optional else f"{name!r} is missing"
    if isinstance(doc[field], bool) or not isinstance(doc[field], types):
        return f"{name!r} is {type(doc[field]).__name__}, not {_names(types)}"
    return None


def _names(types) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def _all(values: list, types, name: str) -> str | None:
    bad = [v for v in values if not isinstance(v, types)]
    return f"{name!r} holds {bad[0]!r}, not {_names(types)}" if bad else None


def _created_problem(created: str) -> str | None:
    try:
        time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return f"'created' is {created!r}, not a UTC time such as 2026-11-24T07:12:03Z"
    return None


def _lock_problem(doc: dict) -> str | None:
    """The lock is optional (runs logged before it have none); when there, each entry names one distribution."""
    problem = _typed(doc, "lock", list, optional=True)
    if problem or "lock" not in doc:
        return problem
    names = set()
    for i, entry in enumerate(doc["lock"]):
        where = f"lock[{i}]."
        if not isinstance(entry, dict):
            return f"'lock[{i}]' is {type(entry).__name__}, not object"
        problem = _typed(entry, "name", str, where=where) or _typed(entry, "version", str, where=where)
        problem = problem or _typed(entry, "extras", list, optional=True, where=where)
        problem = problem or _all(entry.get("extras", []), str, f"{where}extras")
        if problem:
            return problem
        if entry.get("dependencies_locked", False) is not False:
            return f"'{where}dependencies_locked' is {entry['dependencies_locked']!r}; only false is recorded"
        if not entry["name"] or not entry["version"]:
            return f"'{where}name' and '{where}version' must not be empty"
        key = re.sub(r"[-_.]+", "-", entry["name"]).lower()  # the name as packaging canonicalises it
        if key in names:
            return f"'lock' names {entry['name']} twice"
        names.add(key)
    return None


def _environment_problem(doc: dict) -> str | None:
    problem = _typed(doc, "environment", dict)
    if problem:
        return problem
    env = doc["environment"]
    problem = _typed(env, "python", str, where="environment.") or _typed(env, "env", dict, where="environment.")
    return problem or _all(list(env["env"].values()), str, "environment.env")


def _artifacts_problem(doc: dict) -> str | None:
    problem = _typed(doc, "artifacts", dict)
    if problem:
        return problem
    problems = (_record_problem(f"artifacts.{key}", rec) for key, rec in sorted(doc["artifacts"].items()))
    return next((p for p in problems if p), None)


def _record_problem(name: str, rec) -> str | None:
    if not isinstance(rec, dict):
        return f"{name!r} is {type(rec).__name__}, not object"
    where = name + "."
    problem = _typed(rec, "digest", str, where=where) or _typed(rec, "size", int, where=where)
    if problem:
        return problem
    try:
        check_digest(rec["digest"])
    except UsageError:
        return f"'{where}digest' is {rec['digest']!r}, not sha256: and 64 hex digits"
    if rec["size"] < 0:
        return f"'{where}size' is negative"
    if name.startswith("artifacts.") and rec.get("kind") not in _KINDS:
        return f"'{where}kind' is {rec.get('kind')!r}, not one of {', '.join(_KINDS)}"
    return _typed(rec, "filename", str, optional=not name.startswith("artifacts."), where=where)


def _model_problem(doc: dict) -> str | None:
    model = doc.get("model")
    if model is None:
        return None
    problem = _record_problem("model", model) or _typed(model, "class", str, where="model.")
    problem = problem or _typed(model, "artifacts", list, optional=True, where="model.")
    problem = problem or _all(model.get("artifacts", []), str, "model.artifacts")
    if problem:
        return problem
    unknown = sorted(k for k in model.get("artifacts", []) if k not in doc["artifacts"])
    return f"'model.artifacts' names artifacts the run lacks: {', '.join(unknown)}" if unknown else None


def _examples_problem(examples) -> str | None:
    if examples is None:
        return None
    if not isinstance(examples, dict) or not isinstance(examples.get("inputs"), list):
        return '\'examples\' is not {"inputs": [...], "expected_outputs": [...] | null}'
    expected = examples.get("expected_outputs")
    if expected is not None and not (isinstance(expected, list) and len(expected) == len(examples["inputs"])):
        return "'examples.expected_outputs' is not a list as long as 'examples.inputs'"
    return None


def _schemas_problem(schemas) -> str | None:
    """The schemas are optional (runs logged before it have none): input and output schemas, or null."""
    if schemas is None:
        return None
    if not isinstance(schemas, dict):
        return f"'schemas' is {type(schemas).__name__}, not object"
    for side in ("input", "output"):
        schema = schemas.get(side)
        if schema is not None and not isinstance(schema, (dict, bool)):
            return f"'schemas.{side}' is {type(schema).__name__}, not a JSON Schema (object) or null"
    return None


def read_manifest(model_dir: str | Path) -> tuple[dict, str]:
    """Return ``(manifest, digest)`` of a model directory."""
    path = Path(model_dir) / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if os.environ.get(MANIFEST_ENV):  # images carry the manifest in their config (see vci.build.plan)
            data = os.environ[MANIFEST_ENV].encode()
        else:
            raise NotFoundError(
                f"no {MANIFEST} in the model directory {model_dir}",
                hint="set VCI_MODEL_DIR to a directory written by `vci package` or `vci serve`",
            ) from None
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ServeError(f"{path}: unsupported manifest schema", hint="package the run with this vci version")
    problem = manifest_problem(manifest)
    if problem:
        raise IntegrityError(f"{path} is not a valid run manifest: {problem}", hint="package the run again")
    return manifest, manifest_digest(manifest)


def verify_model_dir(model_dir: str | Path) -> tuple[dict, str]:
    """Check every blob against the manifest before anything is unpickled; return ``(manifest, digest)``."""
    manifest, digest = read_manifest(model_dir)
    _verify_blobs(model_dir, blob_records(manifest))
    return manifest, digest


def _verify_blobs(model_dir: str | Path, records: list[dict]) -> None:
    for rec in records:
        path = blob_path(model_dir, rec["digest"])
        if not path.is_file():
            raise IntegrityError(f"model directory {model_dir} lacks blob {rec['digest']}")
        verify_file(path, rec["digest"], rec.get("size"))


def materialize_artifacts(model_dir: str | Path, manifest: dict, work_dir: str | Path) -> dict[str, str]:
    """Give each artifact a local path under ``work_dir``: files keep their logged name, directories
    are extracted (tar-slip refused), objects are their pickle file. Returns ``{key: path}``."""
    paths: dict[str, str] = {}
    for key, rec in sorted(manifest.get("artifacts", {}).items()):
        blob = blob_path(model_dir, rec["digest"]).resolve()
        target = Path(work_dir) / "artifacts" / _plain_name(key)
        if rec["kind"] == "directory":
            paths[key] = str(_extracted(blob, target, rec["size"]))
            continue
        target.mkdir(parents=True, exist_ok=True)
        link = target / _plain_name(rec.get("filename") or key)
        if not (link.is_symlink() and os.readlink(link) == str(blob)):
            with temporary_for(link) as tmp:  # link beside, then rename: atomic for concurrent server
                tmp.unlink()  # workers and for a stale link left by an old run
                os.symlink(blob, tmp)
                commit(tmp, link)
        paths[key] = str(link)
    return paths


def _extracted(archive: Path, target: Path, size: int) -> Path:
    """``target`` holding the (verified) ``archive``'s tree: one extracted earlier is used again only if
    it still matches the archive, else it is extracted anew beside and renamed into place."""
    if _holds(target, archive):
        return target
    with temporary_for(target, directory=True) as partial:
        extract_archive(archive, partial, max_size=size)
        if target.exists() or target.is_symlink():
            if _holds(target, archive):  # another server worker extracted it meanwhile
                return target
            log.warning("%s no longer matches its artifact; extracting it again", target)
            _discard(target)
        try:
            commit(partial, target)
        except OSError:  # another worker renamed its extraction there first: fine if it matches
            if not _holds(target, archive):
                raise
    return target


def _holds(target: Path, archive: Path) -> bool:
    return target.is_dir() and not target.is_symlink() and matches_archive(archive, target)


def _discard(path: Path) -> None:
    """Move ``path`` aside (one rename: readers see it or nothing) and remove it."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    with temporary_for(path, directory=True) as stale:
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            os.replace(path, stale)


def _plain_name(name: str) -> str:
    """``name`` if it is one plain path component (artifact keys and file names come from the manifest)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise IntegrityError(
            f"artifact name {name!r} is not a plain file name; refused",
            hint="log artifacts under simple keys such as 'weights'",
        )
    return name


def load_model_class(model_dir: str | Path, manifest: dict):
    """Unpickle the model class from its blob, whose bytes are checked against the manifest first."""
    import pickle

    import cloudpickle  # noqa: F401  (cloudpickle-made pickles need it importable)

    rec = manifest.get("model")
    if not rec:
        raise ServeError(f"run {manifest.get('id')} has no model logged", hint="call run.log_model(...) first")
    path = blob_path(model_dir, rec["digest"])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(f"model directory {model_dir} lacks blob {rec['digest']}") from None
    return pickle.loads(verify_bytes(data, rec["digest"], rec.get("size"), path))


def load_model(model_dir: str | Path, work_dir: str | Path | None = None, *, verify: bool = True):
    """Verify ``model_dir``, materialise its artifacts and return ``(instance, manifest, digest)``.

    Every blob is checked before anything is unpickled, each read once for it: the artifacts first, then
    the model class's, whose checked bytes are the ones unpickled. (Hashing the artifacts in a thread
    while the class unpickled was tried: in the real server it did not come out ahead, see design.md.)"""
    manifest, digest = read_manifest(model_dir)
    if verify:
        _verify_blobs(model_dir, [manifest["artifacts"][key] for key in sorted(manifest.get("artifacts", {}))])
    work = Path(work_dir) if work_dir else Path(model_dir) / "work"
    artifacts = materialize_artifacts(model_dir, manifest, work)
    for name, value in (manifest.get("environment") or {}).get("env", {}).items():
        os.environ.setdefault(name, value)
    cls = load_model_class(model_dir, manifest)
    wanted = manifest["model"].get("artifacts", sorted(artifacts))
    missing = sorted(set(wanted) - set(artifacts))
    if missing:
        raise IntegrityError(
            f"the model needs artifacts the run does not have: {', '.join(missing)}",
            hint="log them with run.log_artifact(...) before log_model",
        )
    return cls({k: artifacts[k] for k in wanted}), manifest, digest


@contextlib.contextmanager
def in_use(root: str | os.PathLike):
    """Hold a shared lock on a model directory (its manifest) while it is served, so that trimming the
    model cache (vci.fetch) passes it by; a directory that cannot be locked is served all the same."""
    import fcntl

    try:
        held = open(Path(root) / MANIFEST, "rb")  # held for the whole block
    except OSError:
        yield
        return
    with held:
        with contextlib.suppress(OSError):
            fcntl.flock(held, fcntl.LOCK_SH)
        yield


def remove_unless_in_use(root: Path) -> bool:
    """Remove a cached model directory unless a server holds it (vci.modeldir.in_use); whether it went."""
    import fcntl
    import shutil

    try:
        held = open(root / MANIFEST, "rb")
    except OSError:
        shutil.rmtree(root, ignore_errors=True)  # an unfinished fetch: nothing serves it
        return True
    with held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        shutil.rmtree(root, ignore_errors=True)
    return True
