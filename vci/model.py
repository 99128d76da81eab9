"""The Model interface: check that a class can serve, load one from a file, and pickle it by value."""

from __future__ import annotations

import importlib.util
import inspect
import io
import os
import sys
import sysconfig
import types
from collections import ChainMap
from pathlib import Path
from typing import Any

from .errors import ModelValidationError, UsageError


class Model:
    """The interface vci serves (for reference and type hints; subclassing it is optional).

    ``__init__(self, artifacts)`` gets ``{key: local path}`` for the artifacts named at log time;
    ``predict(self, data)`` takes and returns anything JSON-able. Optional: ``batch_predict(self, items)``
    and ``model_test(self)``, which runs when a server starts (an exception blocks readiness).
    """

    def __init__(self, artifacts: dict[str, str]):
        self.artifacts = artifacts

    def predict(self, data):  # pragma: no cover - interface only
        raise NotImplementedError


def validate_model_class(cls) -> type:
    """Return ``cls`` if it can be served, else raise ModelValidationError saying what to change."""
    if not inspect.isclass(cls):
        if hasattr(cls, "predict") and inspect.isclass(type(cls)):
            raise ModelValidationError(
                f"got an instance of {type(cls).__name__}, not a class",
                hint=f"pass the class itself: log_model({type(cls).__name__}, artifacts=[...])",
            )
        raise ModelValidationError(f"a model must be a class with predict(); got {type(cls).__name__}")
    name = cls.__qualname__
    if not callable(getattr(cls, "predict", None)):
        raise ModelValidationError(f"{name} has no predict method", hint="define predict(self, data)")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))  # what ABCMeta records (inspect.isabstract's test)
    if missing:
        raise ModelValidationError(f"{name} leaves abstract methods unimplemented: {', '.join(missing)}")
    _check_init(cls, name)
    _check_takes_data(cls, "predict", name)
    for optional in ("batch_predict", "model_test"):
        if hasattr(cls, optional) and not callable(getattr(cls, optional)):
            raise ModelValidationError(f"{name}.{optional} must be a method")
    return cls


def _check_takes_data(cls, method: str, name: str) -> None:
    """``predict(self, data)``: the server calls it with one argument, the request's input."""
    try:
        sig = inspect.signature(getattr(cls, method))
    except (TypeError, ValueError):
        return  # a builtin: cannot inspect, trust it
    params = list(sig.parameters.values())
    if (
        params
        and params[0].name in ("self", "cls")
        and not isinstance(inspect.getattr_static(cls, method), staticmethod)
    ):
        params = params[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    extra = [p.name for p in positional[1:] if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    required_kw = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if not positional or extra or required_kw:
        raise ModelValidationError(
            f"{name}.{method}{sig} cannot be called with one input"
            + (f" (it also requires {', '.join(extra + required_kw)})" if extra or required_kw else ""),
            hint=f"define {method}(self, data): vci calls it with each request's input",
        )


def _check_init(cls, name: str) -> None:
    if cls.__init__ is object.__init__:
        raise ModelValidationError(f"{name} has no __init__", hint="define __init__(self, artifacts)")
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return  # a builtin or C __init__: cannot inspect, trust it
    params = list(sig.parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params) or "artifacts" in sig.parameters:
        required = [
            p
            for p in params
            if p.default is p.empty
            and p.name != "artifacts"
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if required:
            raise ModelValidationError(
                f"{name}.__init__ requires {', '.join(p.name for p in required)} besides artifacts",
                hint="vci calls __init__(artifacts) only: give the other parameters defaults",
            )
        return
    raise ModelValidationError(
        f"{name}.__init__ does not take an 'artifacts' argument", hint="define __init__(self, artifacts)"
    )


def pickle_model_class(cls) -> bytes:
    """cloudpickle ``cls``, by value for the user's own modules so an image without them can load it; its
    code keeps the file names of the user's sources (see :func:`_naming_pickler`)."""
    import cloudpickle

    for module in _local_modules(cls):
        cloudpickle.register_pickle_by_value(module)
    try:
        buffer = io.BytesIO()
        _naming_pickler(cloudpickle.Pickler, _source_root(cls))(buffer).dump(cls)
        return buffer.getvalue()
    except Exception as exc:  # cloudpickle raises many kinds (PicklingError, TypeError, ...)
        raise ModelValidationError(
            f"{cls.__qualname__} cannot be serialised: {exc}",
            hint="keep open files, locks and sockets out of class attributes",
        ) from exc
    finally:
        for module in _local_modules(cls):
            try:
                cloudpickle.unregister_pickle_by_value(module)
            except ValueError:
                pass


def _source_root(cls) -> str:
    """The directory of the file that defines ``cls`` (its module's, or the script's for ``__main__``)."""
    home = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return os.path.dirname(os.path.realpath(home)) if home else ""


def _naming_pickler(base: Any, root: str) -> type:
    """A cloudpickle Pickler whose code objects are named after their source file relative to ``root``
    (``model.py``, ``features/scale.py``). cloudpickle 3 names them all ``<dynamic-code>``, which leaves
    the traceback of a model failing in a server nothing to point at; a relative name points at the
    user's file and line without carrying this machine's directories into the image."""
    reduce_code = base.dispatch_table[types.CodeType]

    def reduce_named(code: types.CodeType):
        make, args = reduce_code(code)
        name = _source_name(code.co_filename, root)
        return make, tuple(
            name if isinstance(a, str) and a in (code.co_filename, "<dynamic-code>") else a for a in args
        )

    return type(
        "NamingPickler", (base,), {"dispatch_table": ChainMap({types.CodeType: reduce_named}, base.dispatch_table)}
    )


def _source_name(filename: str, root: str) -> str:
    """``filename`` relative to ``root`` when it lies there, else its base name (``<stdin>`` stays as it is)."""
    if filename.startswith("<"):
        return filename
    real = os.path.realpath(filename)
    return os.path.relpath(real, root) if root and real.startswith(root + os.sep) else os.path.basename(real)


def _installed_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    roots.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return [os.path.realpath(r) for r in roots if r]


def _local_modules(cls) -> list:
    """The class's module and every loaded module beside it that is not installed (user code)."""
    home = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if cls.__module__ == "__main__" or not home:
        return []
    base = os.path.dirname(os.path.realpath(home))
    roots = _installed_roots()
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__" or name.split(".")[0] == "vci":
            continue
        real = os.path.realpath(path)
        if real.startswith(base + os.sep) and not any(real.startswith(r + os.sep) for r in roots):
            if "." not in name or name.split(".")[0] in sys.modules:
                found.append(module)
    return found


def load_model_file(spec: str) -> type:
    """Import ``FILE.py:Class`` (or ``package.module:Class``) and return the validated class."""
    if ":" not in spec:
        raise UsageError(
            f"--model {spec!r} must be FILE.py:Class or module:Class", hint="e.g. --model examples/iris/model.py:Model"
        )
    source, _, attr = spec.rpartition(":")
    if source.endswith(".py"):
        module = _import_file(Path(source))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise UsageError(f"cannot import {source}: {exc}") from exc
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{source} defines no {attr!r}") from None
    return validate_model_class(cls)


def _import_file(path: Path):
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist")
    name = "vci_user_" + path.stem
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the model file's sibling modules import as they do for the user
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"model file {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module
