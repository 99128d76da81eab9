"""H2O MOJO models (``model.download_mojo()``), scored on the JVM by H2O's own scorer (h2o-genmodel) through JPype.

The model artifact is a directory: the MOJO zip as it was exported and the scorer's jar (vci.frameworks.genmodel
cuts it out of the installed ``h2o`` package's server jar, or ``genmodel_jar=`` names one from Maven), so the
image needs only jpype1 and a JRE from its base (``scripts/build-base-image.sh --languages``), never the 279 MB
H2O server. ``EasyPredictModelWrapper`` scores each row, with unknown categorical levels taken as missing
(NA), as H2O's own prediction does. H2O documents MOJOs as safe to score from several threads at once.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, versions
from .convert import is_columnar, records_of_columns
from .genmodel import genmodel_jar
from .jvm import HINT, with_jars

REQUIREMENTS = ["jpype1"]
MOJO, JAR = "model.zip", "h2o-genmodel.jar"  # the model artifact directory's two files
CATEGORIES = ("Regression", "Binomial", "Multinomial")  # the model categories vci serves (their answers: README)
NOT_A_MOJO = "export the model with model.download_mojo() (h2o.save_model's binary models and POJOs are not MOJOs)"


def pack(saved, directory: Path) -> tuple[Path, dict, list[str]]:
    """Copy the MOJO and the scorer's jar into ``directory/h2o-mojo``, load the MOJO with that jar here (so
    one it cannot read fails at log time) and record its category, columns, domains and response."""
    source, jar = Path(saved.path), saved.options.get("genmodel_jar")
    info = mojo_info(source)
    if jar and not Path(jar).is_file():
        raise ModelValidationError(f"genmodel jar {jar} does not exist", hint="pass h2o-genmodel.jar's path, or none")
    target = directory / "h2o-mojo"
    target.mkdir(exist_ok=True)
    shutil.copyfile(source, target / MOJO)
    shutil.copyfile(Path(jar) if jar else genmodel_jar(), target / JAR)
    described = describe(load_mojo(target, source.name))
    if described["category"] not in CATEGORIES:
        raise ModelValidationError(
            f"{source.name} is a {described['category']} model ({info.get('algo')}): vci serves "
            f"{', '.join(CATEGORIES)} MOJOs",
            hint="log it as a Model class of your own that calls h2o-genmodel",
        )
    meta = {
        "format": "h2o-mojo",
        **described,
        "algo": info.get("algo"),
        "h2o_version": info.get("h2o_version"),
        "mojo_version": info.get("mojo_version"),
        "n_features": len(described["columns"]),
        "input_schema": _input_schema(described["inputs"]),
        "versions": versions(*REQUIREMENTS),
    }
    return target, meta, REQUIREMENTS


def mojo_info(path: Path) -> dict[str, str]:
    """The ``[info]`` section of the MOJO's ``model.ini``; a one-line refusal for anything that is not a MOJO."""
    if not path.is_file():
        raise ModelValidationError(f"H2O MOJO file {path} does not exist", hint=NOT_A_MOJO)
    try:
        with zipfile.ZipFile(path) as mojo:
            text = mojo.read("model.ini").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError):
        raise ModelValidationError(f"{path.name} is not an H2O MOJO (no model.ini inside)", hint=NOT_A_MOJO) from None
    section, info = None, {}
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        elif section == "info" and " = " in line:
            key, value = line.split(" = ", 1)
            info[key.strip()] = value.strip()
    return info


def load_mojo(directory: Path, name: str = "the MOJO"):
    """``EasyPredictModelWrapper`` over the MOJO in ``directory``, its jar on the JVM's class path."""
    jpype = with_jars([directory / JAR])
    try:
        mojo = jpype.JClass("hex.genmodel.MojoModel").load(str(directory / MOJO))
        wrapper = jpype.JClass("hex.genmodel.easy.EasyPredictModelWrapper")
        config = wrapper.Config().setModel(mojo).setConvertUnknownCategoricalLevelsToNa(True)
        return wrapper(config)
    except Exception as exc:  # JPype raises the JVM's exceptions: a jar without the scorer, a MOJO it cannot read
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = HINT if "jvm" in message.lower() else "export it again with the h2o the scorer's jar came from"
        raise ModelValidationError(f"H2O's scorer cannot load {name}: {message}", hint=hint) from exc


def describe(wrapper) -> dict:
    """The model's category, input columns (numeric, or categorical with their levels) and response."""
    model = wrapper.m
    names = [str(n) for n in model.getNames()]
    inputs = []
    for i in range(model.getNumCols()):
        domain = model.getDomainValues(i)
        levels = None if domain is None else [str(level) for level in domain]
        inputs.append({"name": names[i], "type": "numeric" if levels is None else "categorical", "levels": levels})
    response = None
    if model.isSupervised():
        domain = model.getDomainValues(model.getResponseIdx())
        levels = None if domain is None else [str(level) for level in domain]
        response = {"name": str(model.getResponseName()), "levels": levels}
    category = str(model.getModelCategory().toString())
    return {"category": category, "inputs": inputs, "columns": [c["name"] for c in inputs], "response": response}


def _input_schema(inputs: list[dict]) -> dict:
    """Rows in the MOJO's column order, one row, records or one record (vci.schema); a cell may be null (NA)."""
    cells = [{"type": ["number", "string", "null"] if c["levels"] else ["number", "null"]} for c in inputs]
    width = len(inputs)
    row = {"type": "array", "prefixItems": cells, "minItems": width, "maxItems": width}
    properties = {c["name"]: cell for c, cell in zip(inputs, cells, strict=True)}
    record = {"type": "object", "properties": properties, "required": [c["name"] for c in inputs]}
    return {"anyOf": [{"type": "array", "items": row, "minItems": 1}, row, {"type": "array", "items": record}, record]}


class H2OMojoModel(FrameworkModel):
    """Rows (in the MOJO's column order, ``columns`` in model.json), records or a dict of columns in; a missing
    value is None. Out, per row: a regression's value; a binomial or multinomial model's
    ``{"label": ..., "probabilities": {level: p, ...}}``."""

    module = "jpype"
    package = "jpype1"

    def load(self, path: str) -> None:
        self.wrapper = load_mojo(Path(path))
        self.columns = list(self.meta["columns"])
        self.categorical = {c["name"] for c in self.meta["inputs"] if c["type"] == "categorical"}
        self.regression = self.meta["category"] == "Regression"
        self.levels = (self.meta.get("response") or {}).get("levels") or []
        self.RowData = self.lib.JClass("hex.genmodel.easy.RowData")

    def predict_rows(self, table):
        answers = []
        for cells in self._rows(table):
            row = self.RowData()
            for name, value in zip(self.columns, cells, strict=True):
                if value is not None:
                    row.put(name, self._cell(name, value))
            try:
                prediction = self.wrapper.predict(row)
            except self.lib.JException as exc:  # PredictNumberFormatException and kin
                raise ModelError(f"H2O could not score this input: {str(exc).strip()[:300]}", status=422) from None
            answers.append(self._answer(prediction))
        return answers

    def _rows(self, table) -> list[list]:
        """The request as rows of cells in the MOJO's column order (records and columns by name)."""
        if isinstance(table, dict):  # columns (V2: named tensors, as numpy arrays)
            table = {name: list(_plain(values)) for name, values in table.items()}
        table = _plain(table)
        if is_columnar(table):
            records = records_of_columns(table) if isinstance(table, dict) else table
            missing = sorted({c for record in records for c in self.columns if c not in record})
            if missing:
                raise ModelError(f"missing input columns: {', '.join(missing)}", status=422)
            return [[record[c] for c in self.columns] for record in records]
        if all(isinstance(row, list) and len(row) == len(self.columns) for row in table):
            return table
        shape = f"rows of {len(self.columns)} cells ({', '.join(self.columns)})"
        raise ModelError(f"this H2O MOJO takes {shape}, records or a dict of columns", status=422)

    def _cell(self, name: str, value):
        """A categorical column's level as a string (2 or 2.0 -> "2"), a number as a double; else a 422."""
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value  # a V2 BYTES tensor's
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ModelError(f"column {name!r} takes a number or a string, not {value!r}", status=422)
        if name in self.categorical:
            return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        return value if isinstance(value, str) else float(value)  # H2O parses a numeric string, or refuses it

    def _answer(self, prediction):
        if self.regression:
            return float(prediction.value)
        probabilities = [float(p) for p in prediction.classProbabilities]
        return {"label": str(prediction.label), "probabilities": dict(zip(self.levels, probabilities, strict=True))}


def _plain(values):
    """Python values of a numpy array (a V2 tensor), else ``values`` as they are."""
    return values.tolist() if hasattr(values, "tolist") else values


MODEL_CLASS = H2OMojoModel
