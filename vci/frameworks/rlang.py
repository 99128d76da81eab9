"""R models (an ``.rds`` file saved by R, or an R script defining ``predict``), called through rpy2 in-process.

rpy2 is not pinned in the run's lock: it must match the R beside it (PyPI's rpy2 3.6 needs R 4.5, Debian
bookworm has 4.2), so the base provides both (``scripts/build-base-image.sh --languages``: r-base-core and
Debian's python3-rpy2), or any base the user names that has R and rpy2. Embedded R runs one call at a
time: every call into it holds ``R_LOCK``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import threading
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel

R_LOCK = threading.Lock()  # also: rpy2's conversion rules live in a ContextVar, so each call sets them (_in_r)
HINT = (
    "install R and an rpy2 built for it (Debian: apt-get install r-base-core python3-rpy2), or serve from a base "
    "that has both (scripts/build-base-image.sh --languages, or your own named by `base:`)"
)
# R helpers, defined once per process: what a model needs, and how it is called
R_HELPERS = {
    "columns": """function(model) {
        terms <- tryCatch(delete.response(terms(model)), error = function(e) NULL)
        if (!is.null(terms)) return(all.vars(terms))
        if (is.matrix(model$importance)) return(rownames(model$importance))
        character(0)
    }""",
    "packages": "function(model) Filter(function(p) nzchar(system.file(package = p)), class(model))",
    "version": "function(p) as.character(packageVersion(p))",
    "library": "function(p) suppressPackageStartupMessages(library(p, character.only = TRUE))",
    "call_rds": "function(model, data, args) do.call(predict, c(list(model, newdata = data), args))",
    "source": "function(path) { env <- new.env(); sys.source(path, envir = env); env }",
    "call_script": "function(env, data) env$predict(data)",
    "rows": "function(m) lapply(seq_len(nrow(m)), function(i) unname(m[i, ]))",
}


def pack(saved, directory: Path) -> tuple[Path, dict, list[str]]:
    """Copy the file and load it with R here, so that a file R cannot read fails at log time; record the
    columns, the packages it needs and their versions. No pip requirement: R and rpy2 come with the base."""
    source = Path(saved.path)
    if not source.is_file():
        raise ModelValidationError(
            f"R model file {source} does not exist", hint="pass the .rds file saveRDS wrote, or an .R script"
        )
    kind = "r-script" if source.suffix.lower() == ".r" else "rds"
    path = directory / ("model.R" if kind == "r-script" else "model.rds")
    shutil.copyfile(source, path)
    options = saved.options
    session = RSession(kind, str(path), options.get("packages"), options.get("columns"))
    meta = {
        "format": kind,
        "classes": session.classes,
        "columns": session.columns,
        "n_features": len(session.columns) or None,
        "packages": session.packages,
        "predict_args": options.get("predict_args") or {},
        "versions": session.versions(),
    }
    return path, meta, []


def _robjects():
    """rpy2.robjects, with R's console output sent to stderr (stdout carries the server's log lines).

    Starting R, rpy2 prepends R's and the system's library directories to LD_LIBRARY_PATH; a child process
    would inherit them (a pyenv or venv Python then loads the system's libpython and loses its own
    packages: ``vci package`` after logging an R model could no longer run pip). R is loaded by then, so
    the variable is put back as it was."""
    first = "rpy2.robjects" not in sys.modules
    library_path = os.environ.get("LD_LIBRARY_PATH")
    try:
        import rpy2.robjects as ro
        from rpy2.rinterface_lib import callbacks
    except Exception as exc:  # ImportError, or rpy2's own errors when the R it finds does not fit
        message = f"this model needs R through rpy2, which cannot be loaded here: {exc}"
        raise ModelValidationError(message, hint=HINT) from exc
    finally:
        if first and library_path is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        elif first and library_path is not None:
            os.environ["LD_LIBRARY_PATH"] = library_path
    callbacks.consolewrite_print = callbacks.consolewrite_warnerror = _to_stderr
    return ro


def _to_stderr(text: str) -> None:
    sys.stderr.write(text)


class RSession:
    """An R model loaded in the embedded R: its columns and packages, and ``predict`` on a table."""

    def __init__(self, kind: str, path: str, packages: list[str] | None, columns: list[str] | None):
        ro = self.ro = _robjects()
        with self._in_r():
            self.fn = {name: ro.r(code) for name, code in R_HELPERS.items()}
            self.kind = kind
            if kind == "r-script":
                self.model = self._r("sourcing", self.fn["source"], path)
                self.classes, found_packages, found_columns = [], [], []
            else:
                self.model = self._r("reading", ro.r["readRDS"], path)
                self.classes = list(ro.r["class"](self.model))
                found_packages = list(self.fn["packages"](self.model))
                found_columns = list(self.fn["columns"](self.model))
            self.packages = list(packages) if packages is not None else found_packages
            self.columns = list(columns) if columns is not None else found_columns
            for package in self.packages:
                self._r(f"loading package {package} for", self.fn["library"], package)

    def _r(self, doing: str, fn, *args):
        from rpy2.rinterface_lib.embedded import RRuntimeError

        try:
            return fn(*args)
        except RRuntimeError as exc:
            raise ModelValidationError(
                f"R failed {doing} the model: {str(exc).strip()}", hint="check it in R: readRDS() or source() it"
            ) from exc

    def _in_r(self):
        """R_LOCK held and rpy2's default conversion in force: the server calls from threads other than the
        one that loaded the model, and a thread starts without the ContextVar holding the rules."""
        from rpy2.robjects.conversion import localconverter

        stack = contextlib.ExitStack()
        stack.enter_context(R_LOCK)
        stack.enter_context(localconverter(self.ro.default_converter))
        return stack

    def versions(self) -> dict[str, str]:
        with self._in_r():
            found = {p: str(self.fn["version"](p)[0]) for p in self.packages}
            return {"R": str(self.ro.r("as.character(getRversion())")[0]), **found}

    def predict(self, table, predict_args: dict):
        from rpy2.rinterface_lib.embedded import RRuntimeError

        with self._in_r():
            frame = self._frame(table)
            try:
                if self.kind == "r-script":
                    result = self.fn["call_script"](self.model, frame)
                else:
                    result = self.fn["call_rds"](self.model, frame, self.ro.ListVector(predict_args))
            except RRuntimeError as exc:
                raise ModelError(f"R's predict failed: {str(exc).strip()}", status=422) from exc
            return self._python(result)

    def _frame(self, table):
        """A data.frame of the request: rows take the model's column names, records and columns their own."""
        if isinstance(table, dict):
            columns = table
        elif table and all(isinstance(row, dict) for row in table):
            columns = {name: [row.get(name) for row in table] for name in table[0]}
        elif self.columns and all(isinstance(row, list) and len(row) == len(self.columns) for row in table):
            columns = {name: [row[i] for row in table] for i, name in enumerate(self.columns)}
        else:
            width = f"rows of {len(self.columns)} ({', '.join(self.columns)})" if self.columns else "named columns"
            raise ModelError(f"this R model takes {width}, or records", status=422)
        return self.ro.DataFrame({name: self._vector(name, values) for name, values in columns.items()})

    def _vector(self, name: str, values: list):
        ro, present = self.ro, [v for v in values if v is not None]
        if all(isinstance(v, bool) for v in present):
            return ro.BoolVector([ro.NA_Logical if v is None else v for v in values])
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            return ro.FloatVector([ro.NA_Real if v is None else float(v) for v in values])
        if all(isinstance(v, str) for v in present):
            return ro.StrVector([ro.NA_Character if v is None else v for v in values])
        raise ModelError(f"column {name!r} mixes types: R needs numbers, strings or booleans", status=422)

    def _python(self, result):
        """A factor's labels, a matrix's rows, a vector's values (NA as None)."""
        ro = self.ro
        if ro.r["is.factor"](result)[0]:
            result = ro.r["as.character"](result)
        elif ro.r["is.matrix"](result)[0]:
            return [self._python(row) for row in self.fn["rows"](result)]
        if ro.r["is.list"](result)[0]:
            raise ModelError(f"R's predict returned a list ({', '.join(ro.r['class'](result))}): return a vector")
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) or _is_na(ro, v) else v for v in result]


def _is_na(ro, value) -> bool:
    return value is ro.NA_Character or value is ro.NA_Logical or value is ro.NA_Integer


class RModel(FrameworkModel):
    """An R model: rows (in the model's columns), records or a dict of columns in, one value (or a matrix
    row) per row out, as R's ``predict`` gives them."""

    def load(self, path: str) -> None:
        self.session = RSession(self.meta["format"], path, self.meta.get("packages"), self.meta.get("columns"))

    def predict_rows(self, table):
        return self.session.predict(table, self.meta.get("predict_args") or {})


MODEL_CLASS = RModel
