"""Ready Model classes for popular frameworks: detect a trained object's framework and pack it for logging.

``run.log_model(trained_object)`` comes here. Detection reads the object's type (its classes'
modules), so no framework is imported that the caller has not imported already. Packing saves the
object in the framework's own format as the ``model`` artifact, writes ``model.json`` (framework,
format, versions, what the Model class needs to know) and names the pinned requirements. The Model
classes live in this package, so a run's pickle refers to them by reference: the image's runtime
layer (vci's own source) holds them.

Models saved by another language's tools are named by a path: ``r("model.rds")`` (R, served through
rpy2), ``pmml("model.pmml")`` (PMML, scored on the JVM by JPMML) and ``h2o("model.zip")`` (an H2O MOJO,
scored on the JVM by H2O's genmodel); their modules are ``rlang``, ``jpmml`` and ``h2omojo``, so that
``vci.frameworks.r`` stays the function whatever has been imported.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import META_KEY, MODEL_KEY

# module root of a class in the object's type -> the vci.frameworks module that handles it
FAMILIES = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "keras": "keras",
    "onnx": "onnx",
    "statsmodels": "statsmodels",
    "transformers": "transformers",
    "catboost": "catboost",
    "spacy": "spacy",
    "prophet": "prophet",
    "sentence_transformers": "sentence_transformers",  # found before its base, torch.nn.Sequential
    "tensorflow": "tensorflow",  # a tf.Module (Keras models are keras's: their classes come first in the MRO)
    "flax": "jax",
}


@dataclass
class Packed:
    """A trained object saved for logging: the Model class, the files to log, the requirements to pin."""

    framework: str
    model_class: type
    artifacts: dict[str, Path]
    requirements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Saved:
    """A model file written by another language's tools, and what its family needs to load and call it."""

    family: str  # the module of this package that packs and serves it
    path: Path
    options: dict = field(default_factory=dict)


def r(
    path: str | os.PathLike,
    *,
    columns: list[str] | None = None,
    packages: list[str] | None = None,
    predict_args: dict | None = None,
) -> Saved:
    """An R model: an ``.rds`` file (``saveRDS``) called with R's ``predict(object, newdata, ...)``, or an
    ``.R`` script defining ``predict(data)``; ``columns`` name a row's cells (else read from the model's
    terms), ``packages`` are loaded first (else the model's classes that are installed packages),
    ``predict_args`` go to ``predict`` (e.g. ``{"type": "response"}``)."""
    options = {"columns": columns, "packages": packages, "predict_args": predict_args or {}}
    return Saved("rlang", Path(path), options)


def pmml(path: str | os.PathLike) -> Saved:
    """A PMML document (any producer: R's pmml, SAS, KNIME, sklearn2pmml...), scored by JPMML on the JVM."""
    return Saved("jpmml", Path(path))


def h2o(path: str | os.PathLike, *, genmodel_jar: str | os.PathLike | None = None) -> Saved:
    """An H2O MOJO zip (``model.download_mojo()``), scored by H2O's genmodel on the JVM; its jar is cut from the
    installed ``h2o`` package, or ``genmodel_jar`` names one (e.g. h2o-genmodel.jar from Maven) shipped as is."""
    return Saved("h2omojo", Path(path), {"genmodel_jar": genmodel_jar})


def detect(obj) -> str | None:
    """The family name (a module of this package) that handles ``obj``, or None; imports nothing."""
    if isinstance(obj, Saved):
        return obj.family
    if inspect.isfunction(obj):
        return "functions"
    if isinstance(obj, (str, os.PathLike)):
        if str(obj).endswith(".onnx"):
            return "onnx"
        return "tensorflow" if (Path(obj) / "saved_model.pb").is_file() else None  # a SavedModel directory
    for klass in type(obj).__mro__:
        root = (klass.__module__ or "").split(".")[0]
        if root in FAMILIES:
            return FAMILIES[root]
    return None


def model_for(obj, directory: str | Path) -> Packed | None:
    """Save ``obj`` under ``directory`` in its framework's format; None when no framework knows it."""
    family = detect(obj)
    if family is None:
        return None
    module = importlib.import_module(f"{__name__}.{family}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path, meta, requirements = module.pack(obj, directory)
    meta = {"framework": family, **meta}
    meta_path = directory / META_KEY
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return Packed(family, module.MODEL_CLASS, {MODEL_KEY: model_path, META_KEY: meta_path}, requirements)


def frameworks() -> list[str]:
    """Every family vci knows, for documentation and error messages."""
    return sorted({*FAMILIES.values(), "functions", "rlang", "jpmml", "h2omojo"})
