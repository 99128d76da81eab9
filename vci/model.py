"""The Model interface: check that a class can serve, load one from a file, and pickle it by value."""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.util
import inspect
import io
import os
import sys
import sysconfig
import types
import typing
from pathlib import Path

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
    """cloudpickle ``cls``, by value for the user's own modules so an image without them can load it.

    The bytes depend on the code alone (see ``deterministic_dumps``): the same ``model.py`` logged from
    two processes gives one blob, so a weights-only change adds one layer, not two. Its code keeps the
    file names of the user's sources, relative to the class's own directory (``model.py``,
    ``features/scale.py``)."""
    import cloudpickle

    for module in _local_modules(cls):
        cloudpickle.register_pickle_by_value(module)
    try:
        return deterministic_dumps(cls, _source_root(cls))
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


def deterministic_dumps(obj, root: str = "") -> bytes:
    """cloudpickle ``obj`` to bytes that do not depend on the process that pickles it.

    cloudpickle gives every class it pickles by value a random tracker id (``uuid4``; objects unpickled
    with the same id in one process share one class). Here each id is derived from the content instead:
    a first pass pickles with the classes' qualified names as ids, and each final id is the sha256 of
    that pass's bytes and the name. Two different versions of a class never share an id; the same code
    always gives the same one. Sets (code constants such as ``x in {"a", "b"}``, class attributes, the
    globals a function reads) are written sorted, not in the order the process's hash seed gives them.
    Code objects and the modules' ``__file__`` name their source relative to ``root`` (else by base name):
    cloudpickle 3 names all code ``<dynamic-code>``, which leaves the traceback of a model failing in a
    server nothing to point at, and an absolute path would carry this checkout's directories."""
    draft = _dumps_with_ids(obj, lambda name: name, root)
    content = hashlib.sha256(draft).digest()
    return _dumps_with_ids(obj, lambda name: hashlib.sha256(content + name.encode()).hexdigest()[:32], root)


def _dumps_with_ids(obj, tracker_id, root: str) -> bytes:
    buffer = io.BytesIO()
    _deterministic_pickler()(buffer, tracker_id, root).dump(obj)
    return buffer.getvalue()


class _Sorted:
    """A set or frozenset to pickle with its members sorted (the pickler's ``reducer_override`` writes it)."""

    def __init__(self, members: set | frozenset):
        self.members = members

    def reduce(self) -> tuple:
        return type(self.members), (tuple(sorted(self.members, key=lambda m: (type(m).__name__, repr(m)))),)


def _sorted_sets(values: dict, wrappers: dict) -> dict:
    """``values`` with each set or frozenset value wrapped in one ``_Sorted`` per set (identity kept)."""
    return {k: wrappers.setdefault(id(v), _Sorted(v)) if type(v) in (set, frozenset) else v for k, v in values.items()}


@functools.cache
def _deterministic_pickler():
    """A cloudpickle Pickler whose reductions carry content-derived tracker ids and sorted sets."""
    import cloudpickle

    impl = _cloudpickle_internals()
    tracker_position = {impl["_make_skeleton_class"]: 4, impl["_make_skeleton_enum"]: 5, impl["_make_typevar"]: 5}

    class DeterministicPickler(cloudpickle.Pickler):
        def __init__(self, file, tracker_id, root: str):
            super().__init__(file, protocol=cloudpickle.DEFAULT_PROTOCOL)
            self.tracker_id, self.root = tracker_id, root
            self.names_seen: collections.Counter[str] = collections.Counter()
            self.wrappers: dict[int, _Sorted] = {}  # id of a set -> its one wrapper (the pickle keeps sharing)

        def reducer_override(self, obj):
            if isinstance(obj, _Sorted):
                return obj.reduce()
            if isinstance(obj, types.CodeType):
                return self._code(obj)
            reduced = impl["_typevar_reduce"](obj) if isinstance(obj, typing.TypeVar) else super().reducer_override(obj)
            if not isinstance(reduced, tuple) or len(reduced) < 3:
                return reduced
            if reduced[0] in tracker_position:
                return self._with_tracker_id(obj, reduced, tracker_position[reduced[0]])
            if reduced[0] is impl["_make_function"]:
                return self._function(reduced)
            return reduced

        def _code(self, code: types.CodeType) -> tuple:
            """Its constant frozensets sorted; its file named after the source, relative to the root."""
            make, args = impl["_code_reduce"](code)
            named = _source_name(code.co_filename, self.root)
            consts = tuple(self._sorted(c) if type(c) is frozenset else c for c in code.co_consts)

            def swap(arg):
                if arg is code.co_consts:
                    return consts
                return named if isinstance(arg, str) and arg in (code.co_filename, "<dynamic-code>") else arg

            return make, tuple(swap(arg) for arg in args)

        def _sorted(self, members):
            return self.wrappers.setdefault(id(members), _Sorted(members))

        def _with_tracker_id(self, obj, reduced: tuple, position: int) -> tuple:
            name = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj.__name__)}"
            self.names_seen[name] += 1  # two classes of one name (made in a loop) get two ids
            args = list(reduced[1])
            args[position] = self.tracker_id(f"{name}#{self.names_seen[name]}")
            state = reduced[2]
            if isinstance(state, tuple) and state and isinstance(state[0], dict):
                state = (_sorted_sets(state[0], self.wrappers), *state[1:])
            return (reduced[0], tuple(args), state, *reduced[3:])

        def _function(self, reduced: tuple) -> tuple:
            base_globals = reduced[1][1]  # this pickler's own dict (globals_ref), shared by the module's functions
            if isinstance(base_globals.get("__file__"), str):
                base_globals["__file__"] = _source_name(base_globals["__file__"], self.root)
            state, slots = reduced[2]
            slots = dict(slots, __globals__=_sorted_sets(slots.get("__globals__", {}), self.wrappers))
            if "_cloudpickle_submodules" in slots:  # in sys.modules' order, which is the process's import order
                slots["_cloudpickle_submodules"] = sorted(slots["_cloudpickle_submodules"], key=lambda m: m.__name__)
            return (reduced[0], reduced[1], (state, slots), *reduced[3:])

    return DeterministicPickler


def _cloudpickle_internals() -> dict:
    """The reducers ``deterministic_dumps`` builds on (cloudpickle 3 keeps them in one module, 2 in two)."""
    import importlib

    wanted = (
        "_make_skeleton_class",
        "_make_skeleton_enum",
        "_make_typevar",
        "_make_function",
        "_code_reduce",
        "_typevar_reduce",
    )
    found = {}
    for name in ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.update({k: getattr(module, k) for k in wanted if hasattr(module, k) and k not in found})
    missing = [k for k in wanted if k not in found]
    if missing:
        raise ModelValidationError(
            f"the installed cloudpickle lacks {', '.join(missing)}, which vci's deterministic pickling uses",
            hint="install cloudpickle>=2.1,<4",
        )
    return found


def _source_root(cls) -> str:
    """The directory of the file that defines ``cls`` (its module's, or the script's for ``__main__``)."""
    home = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return os.path.dirname(os.path.realpath(home)) if home else ""


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
