"""The layer plan: a committed run becomes an OCI image: base + dependencies + vci runtime + model + artifacts.

Layers change at different rates and are cached by what they hold: dependencies by the run's lock
(its whole closure, names and versions), the runtime by vci's source, the model class and each artifact
by their digests, so a new version that changes only the weights adds exactly one layer. The run
manifest travels in the image config (``VCI_RUN_MANIFEST``) rather than in a layer, for the same reason;
the image digest covers it.
Builds are reproducible: files in layers carry a fixed mtime (so that a layer's digest depends on its
content alone, whatever the build time), and the image's creation time is SOURCE_DATE_EPOCH, else the
run's own creation time. The dependency and runtime layers carry bytecode compiled ahead (bytecode.py).
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..ci.gitlab import in_gitlab_ci
from ..digests import hex_of
from ..errors import BuildError
from ..files import commit, temporary_for
from ..modeldir import blob_path, blob_records
from ..oci.image import ContainerConfig, iso_time
from ..oci.layers import Entry, tree_entries
from ..serve.docs_page import PACKAGE, asset_files
from .bytecode import bytecode_tag, compile_tree
from .wheels import Dependencies, install_dependencies

log = logging.getLogger("vci")
MODEL_ROOT = "/opt/vci/model"
RUNTIME_ROOT = "/opt/vci/runtime"
DEPS_ROOT = "/opt/vci/site-packages"
PORT = 8080
USER = "65532"
LAYER_MTIME = 0  # file times inside layers: fixed, so a layer's digest depends on its content alone
MAX_ENV_MANIFEST = 96 * 1024  # a single environment string must stay under Linux's 128 KiB


@dataclass
class LayerSpec:
    """One layer to build: its cache key, what it holds (for plans and history), how to list its entries."""

    name: str
    key: str
    describe: str
    entries: object  # () -> list[Entry]


def build_epoch(manifest: dict) -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        try:
            return int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError:
            raise BuildError("SOURCE_DATE_EPOCH must be an integer number of seconds") from None
    return calendar.timegm(time.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ"))


def runtime_files() -> list[tuple[str, Path]]:
    """vci's own source (the server, frameworks, everything; the .proto files the server compiles when it
    starts), as (path relative to vci/, file)."""
    root = Path(__file__).resolve().parent.parent
    files = [p for pattern in ("*.py", "*.proto") for p in root.rglob(pattern) if "__pycache__" not in p.parts]
    return sorted((p.relative_to(root).as_posix(), p) for p in files)


def runtime_tree_files() -> list[tuple[str, Path]]:
    """What the runtime layer holds, relative to RUNTIME_ROOT: ``vci/`` and the /docs page's Swagger UI files
    (``swagger_ui/static/``, a namespace package there: vci.serve.docs_page finds it without importing)."""
    docs = [(f"{PACKAGE}/static/{name}", path) for name, path in asset_files()]
    return [(f"vci/{rel}", path) for rel, path in runtime_files()] + docs


def runtime_key(python: str) -> str:
    h = hashlib.sha256(f"bytecode:{bytecode_tag(python)}".encode())
    for rel, path in runtime_tree_files():
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return "runtime-" + h.hexdigest()[:32]


def runtime_tree(cache_dir: Path, python: str) -> Path:
    """A cached directory holding ``vci/`` (vci's own source and its bytecode for CPython ``python``) and
    the Swagger UI files of /docs."""
    target = Path(cache_dir) / "runtime" / runtime_key(python)
    if (target / ".complete").is_file():
        return target
    if not asset_files():
        log.warning("swagger-ui-py is not installed here: the image's /docs will answer 404 for its assets")
    with temporary_for(target, directory=True) as tmp:
        for rel, path in runtime_tree_files():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, tmp / rel)  # the mode too; times are fixed in the layer
        compile_tree(tmp, RUNTIME_ROOT, python)
        (tmp / ".complete").write_text("")
        shutil.rmtree(target, ignore_errors=True)
        commit(tmp, target)
    return target


def plan_layers(
    manifest: dict, model_dir: Path | None, *, python: str, platform: str, cache_dir: Path, store=None
) -> list[LayerSpec]:
    """The layers vci adds on top of the base, in order (pure apart from reading vci's own source).

    ``store`` is where the locked wheels' hashes are recorded and checked (None: neither)."""
    deps = Dependencies(manifest, python, platform)
    specs = [
        LayerSpec(
            "dependencies",
            deps.key(),
            deps.describe(),
            lambda: _tree(install_dependencies(deps, cache_dir, DEPS_ROOT, store), DEPS_ROOT),
        ),
        LayerSpec(
            "runtime",
            runtime_key(python),
            "vci runtime (model server)",
            lambda: _tree(runtime_tree(cache_dir, python), RUNTIME_ROOT),
        ),
    ]
    for rec in blob_records(manifest):
        is_model = rec is manifest.get("model")
        name = "model" if is_model else "artifact " + next(k for k, r in manifest["artifacts"].items() if r is rec)
        specs.append(
            LayerSpec(
                name,
                f"blob-{hex_of(rec['digest'])}",
                f"{name} ({rec['size']} bytes, {rec['digest'][:19]})",
                lambda digest=rec["digest"]: _blob_entries(model_dir, digest),
            )
        )
    return specs


def _blob_entries(model_dir: Path | None, digest: str) -> list[Entry]:
    """The one entry of a model or artifact blob's layer, read from ``model_dir``."""
    if model_dir is None:
        raise BuildError(
            "this layer plan was made without a model directory (a dry run): it cannot build the model's layers"
        )
    return [Entry.file(blob_path(MODEL_ROOT, digest).as_posix(), blob_path(model_dir, digest), mode=0o444)]


def _tree(directory: Path, prefix: str):
    return [e for e in tree_entries(directory, prefix) if not e.path.endswith(".complete")]


def container_config(manifest: dict, manifest_json: str, labels: dict[str, str]):
    env = {
        "VCI_MODEL_DIR": MODEL_ROOT,
        "VCI_PORT": str(PORT),
        "PYTHONPATH": f"{RUNTIME_ROOT}:{DEPS_ROOT}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "VCI_RUN_MANIFEST": manifest_json,
    }
    return ContainerConfig(
        entrypoint=["python3", "-m", "vci.serve"],
        cmd=[],
        env=env,
        exposed_ports=[f"{PORT}/tcp"],
        user=USER,
        workdir="/opt/vci",
        labels=labels,
    )


def image_labels(manifest: dict, digest: str, epoch: int) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.created": iso_time(epoch),
        "org.opencontainers.image.title": manifest.get("project") or "vci-model",
        "org.opencontainers.image.version": manifest["id"],
        "vci.project": manifest.get("project") or "",
        "vci.run-id": manifest["id"],
        "vci.model-digest": digest,
        "vci.version": manifest.get("vci_version", ""),
    }
    source, revision = _source_and_revision()
    if source:
        labels["org.opencontainers.image.source"] = source
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    return labels


def _source_and_revision() -> tuple[str | None, str | None]:
    env = os.environ
    source = env.get("VCI_SOURCE_URL")
    if not source and env.get("GITHUB_REPOSITORY"):
        source = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env['GITHUB_REPOSITORY']}"
    gitlab = in_gitlab_ci(env)
    source = source or env.get("GIT_URL") or (env.get("CI_PROJECT_URL") if gitlab else None)
    revision = env.get("VCI_SOURCE_REVISION") or env.get("GITHUB_SHA") or env.get("GIT_COMMIT")
    return source, revision or (env.get("CI_COMMIT_SHA") if gitlab else None)


def python_of(manifest: dict) -> str:
    """The run's Python as ``X.Y`` (what the image's base must have: the model pickle needs it)."""
    return minor_version(manifest["environment"]["python"])


def minor_version(version: str) -> str:
    """``3.11.7`` -> ``3.11``."""
    major, minor, *_ = version.split(".")
    return f"{major}.{minor}"


def layout_base(spec: str | None) -> tuple[str, str | None] | None:
    """``(directory, tag or None)`` when a ``--base`` names an OCI layout (``oci:DIR[:tag]`` or a
    directory), else None (a registry reference, or no base given)."""
    if not spec or not (spec.startswith("oci:") or Path(spec).is_dir()):
        return None
    path, _, tag = spec.removeprefix("oci:").partition(":")
    return path, tag or None
