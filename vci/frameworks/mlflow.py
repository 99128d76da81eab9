"""An MLflow pyfunc ``python_model`` (a pickled ``mlflow.pyfunc.PythonModel``) served as a vci Model.

``vci import mlflow`` (vci.importers.mlflow) logs such a model's ``python_model.pkl`` as the ``model``
artifact, its context artifacts under their own keys and a ``model.json`` naming them and the signature's
columns. The pickle's class derives from mlflow's ``PythonModel``, so unpickling it needs mlflow importable:
that flavor's loader needs it, and the run's requirements keep MLflow's pin. Nothing else of MLflow runs:
``load_context`` receives a context with ``artifacts`` ({key: local path}) and ``model_config``, and
``predict`` gets a DataFrame of the signature's columns (rows or records in), a numpy array for a tensor
signature, or the input as it came without a signature, as MLflow's pyfunc wrapper gives it.
"""

from __future__ import annotations

import inspect
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from .base import META_KEY, MODEL_KEY, require
from .convert import as_table, to_array, to_frame, to_jsonable


@dataclass
class Context:
    """What MLflow's PythonModelContext carries that a PythonModel reads."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict = field(default_factory=dict)


class MlflowPythonModel:
    """``load_context`` once, then ``predict(context, model_input)`` (or ``predict(model_input)``) per request."""

    def __init__(self, artifacts: dict[str, str]):
        self.meta = json.loads(Path(artifacts[META_KEY]).read_text())
        pinned = self.meta.get("versions", {}).get("mlflow")
        require("mlflow.pyfunc", f"mlflow=={pinned}" if pinned else "mlflow")  # the pickle's base class
        import cloudpickle  # noqa: F401  (MLflow pickles python models with it, by value)

        with open(artifacts[MODEL_KEY], "rb") as f:  # digest-verified by vci before this
            self.python_model = pickle.load(f)
        keys = self.meta.get("artifacts") or []
        self.context = Context({k: artifacts[k] for k in keys}, self.meta.get("model_config") or {})
        if callable(getattr(self.python_model, "load_context", None)):
            self.python_model.load_context(self.context)
        params = list(inspect.signature(self.python_model.predict).parameters)
        self.takes_context = bool(params) and params[0] == "context"

    def predict(self, data):
        """Rows or records (one row or record: one output) with a column signature; else as MLflow would."""
        columns, tensor, single = self.meta.get("columns"), self.meta.get("tensor_dtype"), False
        if columns:
            table, single = as_table(data)
            data = to_frame(table, columns)
        elif tensor:
            data = to_array(data, tensor)
        args = (self.context, data) if self.takes_context else (data,)
        outputs = to_jsonable(self.python_model.predict(*args))
        return outputs[0] if single and isinstance(outputs, list) and len(outputs) == 1 else outputs


MODEL_CLASS = MlflowPythonModel
