"""An MLflow model (a directory with an ``MLmodel`` file) as a vci run, read without MLflow installed.

``SOURCE`` is the model's directory (or its ``MLmodel``), ``models:/NAME/VERSION`` (``latest``: the highest
version) or ``runs:/RUN_ID/PATH``, the last two looked up in a local tracking store: MLflow's sqlite
database (``sqlite:///mlflow.db``, MLflow's default), its tables read with the standard library.

Flavors: ``sklearn`` (its ``pickled_model`` in the format MLflow recorded: skops, cloudpickle or pickle) is
served by vci's scikit-learn adapter and needs no MLflow; the pyfunc ``python_model`` (a pickled
``mlflow.pyfunc.PythonModel``) by vci.frameworks.mlflow, which imports mlflow for the pickle's base class
(so MLflow's pin stays in the requirements). Anything else (another framework's loader, models from code,
code paths, a flavor without ``python_function``) is refused by name. The signature becomes the run's
schemas (vci.importers.signature), the input example its example, requirements.txt (else conda.yaml's
pip list) its requirements, pinned and locked as any run's.
"""

from __future__ import annotations

import json
import platform
import re
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import NotFoundError
from ..frameworks.mlflow import MlflowPythonModel
from ..frameworks.sklearn import SklearnModel
from ..requirements import read_requirements
from . import ImportRefused, Plan, read_yaml
from .signature import Mapped, input_schema, output_schema, parse_side

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
SKLEARN_FORMATS = {"skops": "skops", "cloudpickle": "pickle", "pickle": "pickle"}  # MLflow's -> vci's adapter's
RESERVED_KEYS = ("model", "model.json")  # the artifacts vci's adapters read


def model_directory(source: str, tracking_uri: str | None = None) -> Path:
    """The local directory holding the model's MLmodel file."""
    if source.startswith(("models:/", "runs:/")):
        directory = _local_path(_resolve_uri(source, tracking_uri or DEFAULT_TRACKING_URI), source)
    else:
        directory = Path(source)
        if directory.name == "MLmodel" and directory.is_file():
            directory = directory.parent
    if not (directory / "MLmodel").is_file():
        raise ImportRefused(f"{directory} has no MLmodel file: it is not an MLflow model", hint="pass its directory")
    return directory


def _resolve_uri(source: str, tracking_uri: str) -> str:
    """Where a ``models:/`` or ``runs:/`` URI's artifacts are, from MLflow's sqlite tracking store."""
    try:
        with _tracking_db(tracking_uri) as db:
            scheme, _, rest = source.partition(":/")
            if scheme == "models":
                return _model_version_location(db, rest.strip("/"), source)
            return _run_model_location(db, rest.strip("/"), tracking_uri)
    except sqlite3.Error as exc:
        raise ImportRefused(
            f"{tracking_uri} cannot be read as MLflow's tracking database: {exc}",
            hint="name the sqlite file MLflow writes (mlflow.db), or pass the model's directory",
        ) from None


def _run_model_location(db: sqlite3.Connection, rest: str, tracking_uri: str) -> str:
    """``RUN_ID/PATH``: the run's artifacts' PATH, else (MLflow 3) the run's logged model named PATH."""
    run_id, _, path = rest.partition("/")
    row = db.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no run {run_id} in {tracking_uri}", hint="check the run id and --tracking-uri")
    in_run = f"{row[0].rstrip('/')}/{path}" if path else row[0]
    if path and not _has_mlmodel(in_run):  # MLflow 3 keeps a run's model apart: a logged model named PATH
        logged = db.execute(
            "SELECT artifact_location FROM logged_models WHERE source_run_id = ? AND name = ? "
            "ORDER BY creation_timestamp_ms DESC",
            (run_id, path),
        ).fetchone()
        return logged[0] if logged else in_run
    return in_run


def _model_version_location(db: sqlite3.Connection, rest: str, source: str) -> str:
    """A registered version (``NAME/VERSION``, ``NAME/latest``) or, MLflow 3, a logged model's id (``m-...``)."""
    if LOGGED_MODEL_ID.fullmatch(rest):
        row = db.execute("SELECT artifact_location FROM logged_models WHERE model_id = ?", (rest,)).fetchone()
        if row is None:
            raise NotFoundError(f"no logged model {source}", hint="check the model id (mlflow ui, the run's page)")
        return row[0]
    name, _, version = rest.rpartition("/")
    if not name:
        name, version = rest, "latest"
    if version == "latest":
        row = db.execute("SELECT MAX(version) FROM model_versions WHERE name = ?", (name,)).fetchone()
        version = str(row[0]) if row and row[0] is not None else ""
    row = db.execute(
        "SELECT storage_location, source FROM model_versions WHERE name = ? AND version = ?", (name, version or "-1")
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no registered model version {source}", hint="check the name and version (mlflow ui)")
    return row[0] or row[1]


class _tracking_db:
    """MLflow's sqlite database, opened read-only."""

    def __init__(self, tracking_uri: str):
        if not tracking_uri.startswith("sqlite:///"):
            raise ImportRefused(
                f"tracking store {tracking_uri!r}: vci reads MLflow's sqlite store only (sqlite:///PATH)",
                hint="pass --tracking-uri sqlite:///mlflow.db, or the model's directory",
            )
        self.path = Path(tracking_uri.removeprefix("sqlite:///"))  # sqlite:////abs/path or sqlite:///relative
        if not self.path.is_file():
            raise NotFoundError(f"MLflow tracking database {self.path} does not exist", hint="check --tracking-uri")

    def __enter__(self) -> sqlite3.Connection:
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self.db

    def __exit__(self, *exc) -> None:
        self.db.close()


def _has_mlmodel(uri: str) -> bool:
    """Whether ``uri`` is a local directory with an MLmodel file."""
    parsed = urlparse(uri)
    return parsed.scheme in ("", "file") and (Path(unquote(parsed.path)) / "MLmodel").is_file()


def _local_path(uri: str, source: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ImportRefused(
            f"{source}'s artifacts are at {uri}, not on this machine",
            hint=f"download them (mlflow artifacts download -u {uri} -d DIR) and run vci import mlflow DIR",
        )
    return Path(unquote(parsed.path))


def read_mlmodel(directory: Path) -> dict:
    doc = read_yaml(directory / "MLmodel")
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise ImportRefused(f"{directory / 'MLmodel'} lists no flavors: it is not an MLflow model")
    return doc


def plan(source: str, tracking_uri: str | None = None) -> Plan:
    """What the MLflow model becomes (ImportRefused for what vci would have to guess)."""
    directory = model_directory(source, tracking_uri)
    mlmodel = read_mlmodel(directory)
    flavors = mlmodel["flavors"]
    pyfunc = flavors.get("python_function")
    if not isinstance(pyfunc, dict):
        raise ImportRefused(
            f"the model's flavors ({', '.join(sorted(flavors))}) have no python_function: no Python loader to serve",
            hint="log it with a flavor that has one (mlflow.sklearn, mlflow.pyfunc)",
        )
    if pyfunc.get("code"):
        raise ImportRefused(
            f"the model loads code from {pyfunc['code']!r} (code_paths), which vci does not log as code",
            hint="install that code as a package and require it, or log the model class with vci itself",
        )
    loader = pyfunc.get("loader_module")
    signature = _signature(mlmodel)
    if loader == "mlflow.sklearn" and isinstance(flavors.get("sklearn"), dict):
        built = _sklearn(directory, flavors["sklearn"], pyfunc, signature)
    elif loader == "mlflow.pyfunc.model" and pyfunc.get("python_model"):
        built = _python_model(directory, pyfunc, signature)
    else:
        what = "a model from code" if pyfunc.get("model_code_path") else f"loader {loader}"
        raise ImportRefused(
            f"the model's python_function flavor is {what}, which vci has no adapter for",
            hint="vci imports the sklearn flavor and pyfunc python models; log others with run.log_model",
        )
    built.source = f"{source} ({directory})" if source.startswith(("models:/", "runs:/")) else str(directory)
    built.requirements, pins_note = _requirements(directory, keep_mlflow=built.model_class is MlflowPythonModel)
    built.mapped.append(pins_note)
    _apply_signature(built, signature)
    _apply_example(built, directory, mlmodel)
    _note_python(built, pyfunc)
    return built


def _signature(mlmodel: dict) -> dict[str, Mapped]:
    sig = mlmodel.get("signature") or {}
    try:
        specs = {side: parse_side(sig.get(f"{side}s"), side) for side in ("input", "output")}
    except ValueError as exc:
        raise ImportRefused(f"the MLmodel's signature cannot be read: {exc}") from None
    mapped = {"input": input_schema(specs["input"]), "output": output_schema(specs["output"])}
    if sig.get("params"):
        mapped["params"] = Mapped(problem="params (vci's predict takes the input only)")
    return mapped


def _sklearn(directory: Path, flavor: dict, pyfunc: dict, signature: dict[str, Mapped]) -> Plan:
    fmt = flavor.get("serialization_format", "cloudpickle")
    if fmt not in SKLEARN_FORMATS:
        raise ImportRefused(f"the sklearn flavor is serialized as {fmt!r}, which vci cannot load")
    weights = directory / str(flavor.get("pickled_model"))
    if not weights.is_file():
        raise ImportRefused(f"{weights} is missing: the MLflow model is incomplete")
    columns, width = signature["input"].columns, signature["input"].width
    meta = {
        "framework": "sklearn",
        "format": SKLEARN_FORMATS[fmt],
        "method": pyfunc.get("predict_fn") or "predict",
        "texts": False,
        "n_features": width,
        "columns": columns,
        "skops_trusted_types": flavor.get("skops_trusted_types"),
        "versions": {"scikit-learn": flavor.get("sklearn_version")},
    }
    imports = ["sklearn", "numpy", *(["skops"] if fmt == "skops" else []), *(["pandas"] if columns else [])]
    return Plan(
        tool="mlflow",
        source="",
        flavor=f"sklearn ({fmt})",
        model_class=SklearnModel,
        artifacts={"model": weights},
        meta=meta,
        requirements=[],
        imports=imports,
        mapped=[f"sklearn flavor {weights.name} -> artifact 'model', served by vci.frameworks.sklearn (no MLflow)"],
    )


def _python_model(directory: Path, pyfunc: dict, signature: dict[str, Mapped]) -> Plan:
    artifacts = {"model": directory / str(pyfunc["python_model"])}
    for key, spec in (pyfunc.get("artifacts") or {}).items():
        if key in RESERVED_KEYS:
            raise ImportRefused(
                f"the python model's artifact key {key!r} is one vci's adapter uses itself",
                hint="log the model again with another key for that artifact",
            )
        artifacts[key] = directory / str((spec or {}).get("path"))
    context_keys = sorted(k for k in artifacts if k != "model")
    meta = {
        "framework": "mlflow",
        "format": "python_model",
        "artifacts": context_keys,
        "columns": signature["input"].columns,
        "tensor_dtype": signature["input"].dtype,
        "model_config": pyfunc.get("model_config") or {},
        "versions": {"cloudpickle": pyfunc.get("cloudpickle_version")},
    }
    keys = ", ".join(context_keys) or "none"
    return Plan(
        tool="mlflow",
        source="",
        flavor="python_function (python_model)",
        model_class=MlflowPythonModel,
        artifacts=artifacts,
        meta=meta,
        requirements=[],
        imports=["mlflow (the pickle's PythonModel base class)", *(["pandas"] if meta["columns"] else [])],
        mapped=[
            "python_model.pkl -> artifact 'model', served by vci.frameworks.mlflow (load_context, predict)",
            f"context artifacts -> artifacts by key ({keys})",
        ],
    )


def _requirements(directory: Path, keep_mlflow: bool) -> tuple[list[str], str]:
    """requirements.txt (else conda.yaml's pip list); mlflow dropped unless the served model imports it."""
    path = directory / "requirements.txt"
    if path.is_file():
        lines, origin = read_requirements(path), "requirements.txt"
    else:
        lines, origin = _conda_pip(directory / "conda.yaml"), "conda.yaml"
    kept = [r for r in lines if keep_mlflow or _name(r) not in ("mlflow", "mlflow-skinny")]
    dropped = sorted(set(lines) - set(kept))
    note = f"{origin} -> requirements ({len(kept)} pinned and locked here)"
    return kept, note + (f"; {', '.join(dropped)} left out: the served model does not import it" if dropped else "")


def _conda_pip(path: Path) -> list[str]:
    doc = read_yaml(path) if path.is_file() else None
    for dep in (doc or {}).get("dependencies") or []:
        if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            return read_requirements([str(line) for line in dep["pip"]])
    raise ImportRefused(f"{path.parent} has neither requirements.txt nor conda.yaml's pip list: requirements unknown")


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower()


def _apply_signature(built: Plan, signature: dict[str, Mapped]) -> None:
    for side, mapped in signature.items():
        if mapped.problem:
            built.unmapped.append(f"signature {side}: {mapped.problem}")
            continue
        if side == "input":
            built.input_schema = mapped.schema
        else:
            built.output_schema = mapped.schema
        built.mapped.append(f"signature {side}s -> the run's {side} schema")


def _apply_example(built: Plan, directory: Path, mlmodel: dict) -> None:
    info = mlmodel.get("saved_input_example_info") or {}
    path = directory / str(info.get("artifact_path", "input_example.json"))
    if not info or not path.is_file():
        built.unmapped.append("input example: none saved")
        return
    doc = json.loads(path.read_text())
    if info.get("type") == "dataframe" and info.get("pandas_orient") == "split" and isinstance(doc, dict):
        columns = doc.get("columns") or []
        example = [dict(zip(columns, row, strict=True)) for row in doc.get("data") or []]
    elif info.get("type") == "ndarray" and isinstance(doc, dict) and "inputs" in doc:
        example = doc["inputs"]
    else:
        built.unmapped.append(f"input example of type {info.get('type')!r}: vci cannot send it as JSON")
        return
    built.examples = [example]
    built.mapped.append(f"{path.name} -> the run's example ({len(example)} rows)")


def _note_python(built: Plan, pyfunc: dict) -> None:
    theirs, ours = str(pyfunc.get("python_version") or ""), platform.python_version()
    if theirs and theirs.split(".")[:2] != ours.split(".")[:2]:
        built.unmapped.append(f"python_version {theirs}: the run records this Python ({ours})")
