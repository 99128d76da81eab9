"""PMML documents, scored on the JVM by JPMML (``jpmml-evaluator`` from PyPI bundles its jars; JPype starts
the JVM in the server process). The JRE comes from the base (``scripts/build-base-image.sh --languages``, or
any base with a JRE 11+ and ``JAVA_HOME`` or ``java`` on the PATH)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, require, versions
from .convert import to_frame
from .jvm import HINT, with_jars

REQUIREMENTS = ["jpmml-evaluator", "pandas"]


def pack(saved, directory: Path) -> tuple[Path, dict, list[str]]:
    """Copy the document and load it with JPMML here (a document it refuses fails at log time); record its
    input fields (names and types), targets and output fields."""
    source = Path(saved.path)
    if not source.is_file():
        raise ModelValidationError(f"PMML file {source} does not exist", hint="pass the .pmml file a PMML writer saved")
    path = directory / "model.pmml"
    shutil.copyfile(source, path)
    fields = describe(evaluator(str(path), source.name))
    inputs = fields["inputs"]
    meta = {
        "format": "pmml",
        **fields,
        "columns": [field["name"] for field in inputs],
        "n_features": len(inputs) or None,
        "versions": versions(*REQUIREMENTS, "jpype1"),
    }
    return path, meta, REQUIREMENTS


def evaluator(path: str, name: str = "the PMML document"):
    """A verified JPMML evaluator of the document at ``path`` (the JVM is started on first use)."""
    lib = require("jpmml_evaluator", "jpmml-evaluator")
    try:
        with_jars(sorted(Path(str(lib.__file__)).parent.glob("*/*.jar")))  # its resources/ and dependencies/
        return lib.make_evaluator(path, backend="jpype").verify()
    except Exception as exc:  # JPype raises the JVM's exceptions (a missing JVM, a document JPMML refuses)
        message = _innermost(exc)
        hint = HINT if "jvm" in message.lower() or "java_home" in message.lower() else "check it against PMML 4.x"
        raise ModelValidationError(f"JPMML cannot load {name}: {message}", hint=hint) from exc


def _innermost(exc: BaseException) -> str:
    """The first line of the deepest cause that says something (JPype wraps the JVM's exceptions in layers)."""
    said = type(exc).__name__
    while exc is not None:
        text = str(exc).strip()
        if text and text != "Java Exception":
            said = text.splitlines()[0]
        exc = exc.__cause__  # type: ignore[assignment]
    return said


def describe(scorer) -> dict:
    """The document's fields: inputs with their PMML data types, target and output field names."""
    inputs = [{"name": f.getName(), "type": str(f.getDataType())} for f in scorer.getInputFields()]
    return {
        "inputs": inputs,
        "targets": [f.getName() for f in scorer.getTargetFields()],
        "outputs": [f.getName() for f in scorer.getOutputFields()],
    }


class PmmlModel(FrameworkModel):
    """Rows (in the document's input field order), records or a dict of columns in. Out, one per row: the
    target's value when the document has one target and no output fields, else a record of every target
    and output field (``probability(1)``, ...); a missing value is None."""

    module = "jpmml_evaluator"
    package = "jpmml-evaluator"

    def load(self, path: str) -> None:
        self.scorer = evaluator(path)
        self.columns = self.meta.get("columns") or []
        self.single = len(self.meta.get("targets") or []) == 1 and not self.meta.get("outputs")

    def predict_rows(self, table):
        frame = to_frame(table, self.columns)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ModelError(f"missing input fields: {', '.join(missing)}", status=422)
        try:
            scored = self.scorer.evaluateAll(frame[self.columns])
        except Exception as exc:  # JPMML's EvaluationException and kin, through JPype
            raise ModelError(f"JPMML could not score this input: {str(exc).strip()[:300]}", status=422) from exc
        records = [{k: _value(v) for k, v in row.items()} for row in scored.to_dict("records")]
        return [next(iter(r.values())) for r in records] if self.single else records


def _value(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


MODEL_CLASS = PmmlModel
