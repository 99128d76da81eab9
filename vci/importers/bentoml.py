"""A model saved in BentoML's model store (``model.yaml`` beside its files) as a vci run.

``PATH_OR_TAG`` is the model's directory (or its ``model.yaml``), or a tag ``NAME[:VERSION]`` looked up in
the store under ``$BENTOML_HOME/models`` (default ``~/bentoml``; ``latest`` or no version: the version its
``latest`` file names), as BentoML lays it out. ``bentoml.sklearn`` models (``saved_model.pkl``, joblib) are
served by vci's scikit-learn adapter: the image needs neither BentoML nor anything of it. Every other module
(another framework's, a ``bentoml.models.create`` custom one) and a Bento (a service with its own runtime)
is refused by name. BentoML records no input schema or examples: the run's schema is left to inference.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..frameworks.sklearn import SklearnModel
from . import ImportRefused, Plan, read_yaml

TAG = re.compile(r"^([a-z0-9](?:[-._a-z0-9]*[a-z0-9])?)(?::([A-Za-z0-9](?:[-._A-Za-z0-9]*[A-Za-z0-9])?))?$")
SUPPORTED = {"bentoml.sklearn": "saved_model.pkl"}
ARTIFACT = "model"


def default_home() -> Path:
    return Path("~/bentoml").expanduser()


def model_directory(path_or_tag: str, home: str | Path | None = None) -> Path:
    """The directory holding the model's ``model.yaml``: the path given, or the tag's in the model store."""
    given = Path(path_or_tag)
    if given.name in ("model.yaml", "bento.yaml") and given.is_file():
        given = given.parent
    if given.is_dir():
        if (given / "bento.yaml").is_file():
            raise ImportRefused(
                f"{given} is a Bento (a service with its own runtime), not a saved model",
                hint="import the model the Bento uses: vci import bentoml NAME:VERSION (bentoml models list)",
            )
        if not (given / "model.yaml").is_file():
            raise ImportRefused(f"{given} has no model.yaml: it is not a BentoML saved model")
        return given
    match = TAG.fullmatch(path_or_tag)
    if not match:
        raise ImportRefused(
            f"{path_or_tag!r} is neither a directory nor a BentoML tag",
            hint="pass a saved model's directory, or NAME:VERSION as `bentoml models list` shows it",
        )
    return _from_store(match.group(1), match.group(2), Path(home) if home else default_home())


def _from_store(name: str, version: str | None, home: Path) -> Path:
    models = home / "models" / name
    if version in (None, "latest"):
        latest = models / "latest"
        if not latest.is_file():
            raise ImportRefused(f"no model {name!r} in the BentoML store {home}", hint="check BENTOML_HOME or the tag")
        version = latest.read_text().strip()
    directory = models / str(version)
    if not (directory / "model.yaml").is_file() or not TAG.fullmatch(f"{name}:{version}"):
        raise ImportRefused(
            f"no model {name}:{version} in the BentoML store {home}", hint="check BENTOML_HOME or the tag"
        )
    return directory


def read_model_info(directory: Path) -> dict:
    """``model.yaml`` as a mapping, with the fields vci reads checked."""
    info = read_yaml(directory / "model.yaml")
    if not isinstance(info, dict) or not isinstance(info.get("module"), str):
        raise ImportRefused(f"{directory / 'model.yaml'} names no module: it is not a BentoML saved model")
    return info


def plan(path_or_tag: str, home: str | Path | None = None) -> Plan:
    """What the saved model becomes (ImportRefused for what vci would have to guess)."""
    directory = model_directory(path_or_tag, home)
    info = read_model_info(directory)
    module = info["module"]
    if module not in SUPPORTED:
        raise ImportRefused(
            f"BentoML model {info.get('name')}:{info.get('version')} is saved by {module}, which vci has no loader for",
            hint=f"supported: {', '.join(SUPPORTED)}; log other models with run.log_model (see vci.frameworks)",
        )
    weights = directory / SUPPORTED[module]
    if not weights.is_file():
        raise ImportRefused(f"{weights} is missing: the saved model is incomplete")
    method, batchable = _method(info)
    context = info.get("context") or {}
    versions = dict(context.get("framework_versions") or {})
    meta = {
        "framework": "sklearn",
        "format": "joblib",
        "method": method,
        "texts": False,
        "n_features": None,
        "columns": None,
        "versions": versions,
        "bentoml": {k: info.get(k) for k in ("name", "version", "labels", "metadata", "creation_time")},
    }
    requirements = [f"{name}=={version}" for name, version in sorted(versions.items())] + ["joblib", "numpy"]
    return Plan(
        tool="bentoml",
        source=f"{info.get('name')}:{info.get('version')} ({directory})",
        flavor=module,
        model_class=SklearnModel,
        artifacts={ARTIFACT: weights},
        meta=meta,
        requirements=requirements,
        imports=["sklearn", "joblib", "numpy"],
        mapped=_mapped(info, method, batchable, versions),
        unmapped=_unmapped(info),
    )


def _method(info: dict) -> tuple[str, bool]:
    """The signature method that predicts: ``predict`` if saved, else the only one."""
    signatures = info.get("signatures") or {"predict": {}}
    if not isinstance(signatures, dict):
        raise ImportRefused("model.yaml's signatures is not a mapping of method -> options")
    method = "predict" if "predict" in signatures else next(iter(signatures)) if len(signatures) == 1 else None
    if method is None:
        raise ImportRefused(
            f"the model saves several signatures ({', '.join(sorted(signatures))}) and none is predict",
            hint="save it with signatures={'predict': {...}}, the method vci serves",
        )
    return method, bool((signatures.get(method) or {}).get("batchable"))


def _mapped(info: dict, method: str, batchable: bool, versions: dict) -> list[str]:
    pins = ", ".join(f"{k}=={v}" for k, v in sorted(versions.items())) or "none recorded"
    return [
        f"{info['module']} saved_model.pkl -> artifact {ARTIFACT!r}, served by vci.frameworks.sklearn (no BentoML)",
        f"signature {method!r} -> predict" + (" (batchable: one call per batch of rows)" if batchable else ""),
        f"context.framework_versions -> requirements ({pins})",
        "name, version, labels, metadata -> model.json",
    ]


def _unmapped(info: dict) -> list[str]:
    missing = ["input schema and examples: BentoML records none (the run's schema is inferred)"]
    if info.get("options"):
        missing.append(f"options {sorted(info['options'])}: no vci equivalent")
    extra = sorted(set(info.get("signatures") or {}) - {"predict"})
    if extra:
        missing.append(f"signatures {', '.join(extra)}: vci serves predict only")
    return missing
