"""What every framework Model class shares: its two artifacts, importing the framework, batching rows."""

from __future__ import annotations

import importlib
import inspect
import json
from importlib import metadata
from pathlib import Path
from types import ModuleType

from ..errors import ModelValidationError
from ..model import _local_modules, deterministic_dumps
from .convert import as_table, to_jsonable

MODEL_KEY = "model"  # the artifact holding the saved object (a file or a directory)
META_KEY = "model.json"  # the artifact describing it: framework, format, versions, input details


def require(module: str, package: str) -> ModuleType:
    """Import ``module`` or say which package to install (``package`` as pip spells it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelValidationError(
            f"this model needs {package}, and {module} cannot be imported here: {exc}", hint=f"pip install {package}"
        ) from exc


def installed(*names: str) -> str | None:
    """The first of these distributions that is installed (e.g. ``xgboost-cpu`` before ``xgboost``)."""
    for name in names:
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return None


def versions(*names: str) -> dict[str, str]:
    """``{distribution: version}`` of those installed, recorded in model.json for error messages."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


class FrameworkModel:
    """A Model (``__init__(artifacts)``, ``predict``) over a saved framework object; subclasses set
    ``module``/``package`` (what to import, what to pip install) and implement ``load``/``predict_rows``."""

    module = ""
    package = ""
    device: str | None = None  # where it computes (torch, onnx: cuda:0 where a GPU is visible and usable), or None

    def __init__(self, artifacts: dict[str, str]):
        self.meta = json.loads(Path(artifacts[META_KEY]).read_text())
        self.path = artifacts[MODEL_KEY]
        self.package = self.meta.get("package", self.package)  # e.g. xgboost-cpu or xgboost
        pinned = self.meta.get("versions", {}).get(self.package)
        package = f"{self.package}=={pinned}" if pinned else self.package
        self.before_import()
        self._lib = require(self.module, package) if self.module else None
        self.load(self.path)

    @property
    def lib(self) -> ModuleType:
        """The framework's module (``module``, imported when the model was made)."""
        if self._lib is None:
            raise ModelValidationError(
                f"{type(self).__name__} names no framework module to import", hint="set the class attribute module"
            )
        return self._lib

    def before_import(self) -> None:
        """Set what the framework reads at import time (e.g. KERAS_BACKEND); ``self.meta`` is loaded."""

    def load(self, path: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def predict_rows(self, rows):
        """Predict a table (rows, columns or records, from ``as_table``); return one output per row."""
        raise NotImplementedError  # pragma: no cover - interface

    def predict(self, data):
        """A list of rows, one row, a dict of columns or records (see vci.frameworks.convert)."""
        table, single = as_table(data)
        outputs = to_jsonable(self.predict_rows(table))
        return outputs[0] if single else outputs

    def batch_predict(self, items: list) -> list:
        """One framework call for every row of every item, split back per item (lists of rows only)."""
        if not items:
            return []
        if not all(isinstance(item, list) and item and all(isinstance(r, list) for r in item) for item in items):
            return [self.predict(item) for item in items]
        rows = [row for item in items for row in item]
        outputs = self.predict(rows)
        if not isinstance(outputs, list) or len(outputs) != len(rows):  # not one output per row
            return [self.predict(item) for item in items]
        counts = [len(item) for item in items]
        result, start = [], 0
        for n in counts:
            result.append(outputs[start : start + n])
            start += n
        return result

    def predict_tensors(self, inputs):
        """Open Inference Protocol (V2) tensors: one tensor is a table of rows (a 1-D tensor one row),
        several are named columns (each flattened to one value per row); the framework's output as it is."""
        if isinstance(inputs, dict):
            return self.predict_rows({name: tensor.reshape(-1) for name, tensor in inputs.items()})
        return self.predict_rows(inputs.reshape(1, -1) if inputs.ndim == 1 else inputs)

    def batch_predict_tensors(self, items: list) -> list:
        """Batched V2 requests: single tensors of rows of one width in one framework call, split back per item."""
        widths = {item.shape[1:] if not isinstance(item, dict) and item.ndim == 2 else None for item in items}
        if len(widths) != 1 or None in widths:
            return [self.predict_tensors(item) for item in items]
        import numpy

        outputs = self.predict_tensors(numpy.concatenate(items))
        counts = [len(item) for item in items]
        if getattr(outputs, "shape", (None,))[0] != sum(counts):
            return [self.predict_tensors(item) for item in items]
        return numpy.split(outputs, numpy.cumsum(counts)[:-1])


def dumps_by_value(obj) -> bytes:
    """cloudpickle ``obj``, with the user's own (not installed) modules by value, as model classes are, to
    bytes that do not depend on the process (vci.model.deterministic_dumps)."""
    import cloudpickle

    owner = obj if isinstance(obj, type) or inspect.isfunction(obj) else type(obj)
    modules = _local_modules(owner)
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return deterministic_dumps(obj)
    except Exception as exc:  # cloudpickle raises many kinds
        raise ModelValidationError(
            f"{type(obj).__name__} cannot be serialised: {exc}",
            hint="keep open files, locks and sockets out of the model",
        ) from exc
    finally:
        for module in modules:
            try:
                cloudpickle.unregister_pickle_by_value(module)
            except ValueError:
                pass
