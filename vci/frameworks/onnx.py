"""ONNX models (an ``onnx.ModelProto`` or a path to a ``.onnx`` file), run with onnxruntime: on a GPU where
its build has a GPU provider (onnxruntime-gpu: CUDA; onnxruntime-rocm), else on the CPU."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, require, versions
from .convert import as_table, to_array, to_jsonable

REQUIREMENTS = ["onnxruntime", "numpy"]
GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider")  # onnxruntime-gpu's, onnxruntime-rocm's
DEVICES = {"CUDAExecutionProvider": "cuda:0", "ROCMExecutionProvider": "rocm:0", "CPUExecutionProvider": "cpu"}
log = logging.getLogger("vci")
DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
    "tensor(float16)": "float16",
}


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """Write ``model.onnx`` and check that onnxruntime opens it; record input names and dtypes."""
    path = directory / "model.onnx"
    if hasattr(model, "SerializeToString"):
        path.write_bytes(model.SerializeToString())
    elif Path(model).is_file():
        shutil.copyfile(model, path)
    else:
        raise ModelValidationError(
            f"ONNX model file {model} does not exist", hint="pass an existing .onnx file or an onnx.ModelProto"
        )
    ort = require("onnxruntime", "onnxruntime")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... kinds
        raise ModelValidationError(
            f"onnxruntime cannot open this model: {exc}", hint="check it with onnx.checker.check_model"
        ) from exc
    inputs = [
        {"name": i.name, "dtype": DTYPES.get(i.type, "float32"), "shape": _shape(i.shape)} for i in session.get_inputs()
    ]
    meta = {
        "format": "onnx",
        "inputs": inputs,
        "outputs": [o.name for o in session.get_outputs()],
        "versions": versions(*REQUIREMENTS),
    }
    return path, meta, REQUIREMENTS


def providers(available: list[str]) -> list[str]:
    """The execution providers to ask for, GPU first: those of GPU_PROVIDERS this onnxruntime has (the
    onnxruntime-gpu build does; it falls back to the CPU where the device or driver is missing), then the CPU."""
    return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]


def _shape(shape) -> list:
    """The graph input's dimensions: a number where fixed, None where symbolic ("batch") or unknown."""
    return [d if isinstance(d, int) and d > 0 else None for d in shape or []]


class OnnxModel(FrameworkModel):
    """One input: rows (or one row) as that input's dtype. Several inputs: ``{input name: rows}``.
    One output: its rows; several: ``{output name: rows}``."""

    module = "onnxruntime"
    package = "onnxruntime"

    def load(self, path: str) -> None:
        self.session = self.lib.InferenceSession(path, providers=providers(self.lib.get_available_providers()))
        used = self.session.get_providers()
        self.device = DEVICES.get(used[0], used[0]) if used else "cpu"
        log.info("onnx model on %s (%s)", self.device, ", ".join(used))
        self.inputs = self.meta["inputs"]
        self.outputs = self.meta["outputs"]

    def predict(self, data):
        names = [i["name"] for i in self.inputs]
        if len(names) > 1:
            if not isinstance(data, dict) or set(data) != set(names):
                raise ModelError(f"this model takes a dict of its inputs: {', '.join(names)}", status=422)
            feed = {i["name"]: to_array(data[i["name"]], i["dtype"]) for i in self.inputs}
            single = False
        else:
            table, single = as_table(data)
            feed = {names[0]: to_array(table, self.inputs[0]["dtype"])}
        results = to_jsonable(self.session.run(None, feed))
        if single:
            results = [r[0] for r in results]
        return results[0] if len(results) == 1 else dict(zip(self.outputs, results, strict=True))

    def predict_rows(self, table):
        return self.predict(table)


MODEL_CLASS = OnnxModel
