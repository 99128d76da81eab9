"""TensorFlow models as SavedModel directories: a ``tf.Module`` (Keras on the TensorFlow backend exported with
``model.export``, or a directory holding ``saved_model.pb``), served through its ``serving_default`` signature.

Keras 3 models themselves go to vci.frameworks.keras (their classes live in ``keras``, found first in the type's
MRO); this family takes what TensorFlow itself defines. The CPU build (``tensorflow-cpu``) is pinned when it is
the one installed, as xgboost-cpu is.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, installed, versions
from .convert import to_array

SIGNATURE = "serving_default"
log = logging.getLogger("vci")


def saved_model_dir(path) -> bool:
    """A directory that holds a SavedModel (what ``tf.saved_model.save`` and Keras' ``model.export`` write)."""
    return (Path(path) / "saved_model.pb").is_file()


def pack(obj, directory: Path) -> tuple[Path, dict, list[str]]:
    """The SavedModel directory ``model/`` (copied when ``obj`` is one already) and its signature's inputs."""
    import tensorflow as tf

    path = directory / "model"
    if isinstance(obj, (str, os.PathLike)):
        shutil.copytree(obj, path)
    else:
        tf.saved_model.save(obj, str(path), signatures=_signature(tf, obj))
    signature = tf.saved_model.load(str(path)).signatures.get(SIGNATURE)
    if signature is None:
        raise ModelValidationError(
            f"the SavedModel has no {SIGNATURE!r} signature to serve",
            hint="save it with signatures={'serving_default': fn.get_concrete_function(...)}",
        )
    inputs = _inputs(signature)
    package = installed("tensorflow-cpu", "tensorflow") or "tensorflow"
    meta: dict = {"format": "saved_model", "package": package, "inputs": inputs, "versions": versions(package, "numpy")}
    width = inputs[0]["shape"][1] if len(inputs) == 1 and len(inputs[0]["shape"]) == 2 else None
    if isinstance(width, int) and inputs[0]["dtype"].startswith("float"):
        meta["n_features"] = width  # the input schema's row length (vci.schema.from_framework)
    return path, meta, [package, "numpy"]


def _signature(tf, obj):
    """The function to serve: a loaded SavedModel's own signature, else ``__call__`` traced with its
    ``input_signature``."""
    existing = getattr(obj, "signatures", None)
    if existing is not None and SIGNATURE in existing:
        return existing[SIGNATURE]
    call = obj.__call__ if callable(obj) else None
    if getattr(call, "input_signature", None):
        return call.get_concrete_function()
    raise ModelValidationError(
        f"a {type(obj).__name__} has no signature to serve",
        hint="decorate its __call__ with @tf.function(input_signature=[tf.TensorSpec([None, N], tf.float32)])",
    )


def _inputs(signature) -> list[dict]:
    """``[{"name", "dtype", "shape"}]`` of the signature's keyword inputs (None for an unknown dimension)."""
    specs = signature.structured_input_signature[1]
    return [
        {"name": name, "dtype": spec.dtype.name, "shape": spec.shape.as_list() if spec.shape.rank is not None else None}
        for name, spec in sorted(specs.items())
    ]


class TensorFlowModel(FrameworkModel):
    """Rows -> one tensor of the signature's dtype (several inputs: named columns) -> ``serving_default``."""

    module = "tensorflow"
    package = "tensorflow"

    def load(self, path: str) -> None:
        tf = self.lib
        self.placement = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
        self.device = "cuda:0" if self.placement == "GPU:0" else "cpu"  # named as torch names it (/metadata)
        self.saved = tf.saved_model.load(path)  # kept: the signature's variables belong to it
        self.signature = self.saved.signatures[SIGNATURE]
        self.inputs = self.meta["inputs"]
        log.info("tensorflow: SavedModel loaded (%d inputs), device %s", len(self.inputs), self.placement)

    def predict_rows(self, table):
        tf = self.lib
        if len(self.inputs) == 1:
            spec = self.inputs[0]
            feeds = {spec["name"]: tf.constant(to_array(table, _numpy_dtype(spec)))}
        elif isinstance(table, dict):
            feeds = {s["name"]: tf.constant(to_array(_column(table, s["name"]), _numpy_dtype(s))) for s in self.inputs}
        else:
            names = ", ".join(s["name"] for s in self.inputs)
            raise ModelError(f"this model takes named inputs ({names}): send a dict of columns", status=422)
        with tf.device(self.placement):
            outputs = self.signature(**feeds)
        if len(outputs) == 1:
            return next(iter(outputs.values())).numpy()
        arrays = {name: tensor.numpy() for name, tensor in outputs.items()}
        return [{name: array[i] for name, array in arrays.items()} for i in range(len(next(iter(arrays.values()))))]


def _numpy_dtype(spec: dict) -> str | None:
    """The numpy dtype of an input (strings: numpy's choice; tf.constant makes them tf.string)."""
    return None if spec["dtype"] == "string" else spec["dtype"]


def _column(table: dict, name: str):
    if name not in table:
        raise ModelError(f"missing input column: {name}", status=422)
    return table[name]


MODEL_CLASS = TensorFlowModel
