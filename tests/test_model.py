"""validate_model_class refuses what cannot serve; user modules are pickled by value."""

import abc
import pickle
import subprocess
import sys
import textwrap

import pytest

from vci.errors import ModelValidationError, UsageError
from vci.model import load_model_file, pickle_model_class, validate_model_class


class Good:
    def __init__(self, artifacts):
        self.artifacts = artifacts

    def predict(self, data):
        return data


class NoPredict:
    def __init__(self, artifacts):
        pass


class NoArtifacts:
    def __init__(self, weights):
        pass

    def predict(self, data):
        return data


class ExtraRequired:
    def __init__(self, artifacts, threshold):
        pass

    def predict(self, data):
        return data


class NoInit:
    def predict(self, data):
        return data


class Abstract(abc.ABC):
    def __init__(self, artifacts):
        self.artifacts = artifacts

    @abc.abstractmethod
    def predict(self, data): ...


class Unpicklable:
    import threading

    lock = threading.Lock()

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data


def test_good_class_passes():
    assert validate_model_class(Good) is Good


@pytest.mark.parametrize(
    "obj, fragment",
    [
        (Good({}), "got an instance of Good"),
        (42, "must be a class"),
        (NoPredict, "has no predict"),
        (NoArtifacts, "does not take an 'artifacts'"),
        (ExtraRequired, "requires threshold besides artifacts"),
        (NoInit, "has no __init__"),
        (Abstract, "abstract methods unimplemented: predict"),
    ],
)
def test_bad_classes_are_refused(obj, fragment):
    with pytest.raises(ModelValidationError) as err:
        validate_model_class(obj)
    assert fragment in str(err.value)


def test_unserialisable_class_is_refused():
    with pytest.raises(ModelValidationError, match="cannot be serialised"):
        pickle_model_class(Unpicklable)


def test_local_module_is_pickled_by_value(tmp_path):
    (tmp_path / "mymodel.py").write_text(
        textwrap.dedent("""
        import helperlib
        class M:
            def __init__(self, artifacts):
                pass
            def predict(self, data):
                return helperlib.double(data)
    """)
    )
    (tmp_path / "helperlib.py").write_text("def double(x):\n    return x * 2\n")
    cls = load_model_file(f"{tmp_path / 'mymodel.py'}:M")
    data = pickle_model_class(cls)
    (tmp_path / "blob.pkl").write_bytes(data)
    # a fresh interpreter without tmp_path on sys.path (as in an image) still loads and runs it
    code = f"import pickle; M = pickle.load(open({str(tmp_path / 'blob.pkl')!r}, 'rb')); print(M({{}}).predict(21))"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"


def test_pickled_code_names_the_source_files_as_the_user_knows_them(tmp_path):
    """cloudpickle 3 names all code ``<dynamic-code>``: a traceback from a server could not say where."""
    (tmp_path / "mymodel.py").write_text(
        "import weightcheck\nclass M:\n    def __init__(self, artifacts):\n        weightcheck.fail()\n"
        "    def predict(self, data):\n        return data\n"
    )
    (tmp_path / "weightcheck.py").write_text("def fail():\n    raise ValueError('no weights')\n")
    (tmp_path / "blob.pkl").write_bytes(pickle_model_class(load_model_file(f"{tmp_path / 'mymodel.py'}:M")))
    code = (
        "import pickle, traceback\nM = pickle.load(open('blob.pkl', 'rb'))\ntry:\n    M({})\n"
        "except ValueError as exc:\n"
        "    print([(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    frames = eval(out.stdout)  # noqa: S307 - the list of tuples printed just above
    assert frames[-2:] == [("mymodel.py", 4, "__init__"), ("weightcheck.py", 2, "fail")]


def test_load_model_file_errors(tmp_path):
    with pytest.raises(UsageError, match="must be FILE.py:Class"):
        load_model_file("model.py")
    with pytest.raises(UsageError, match="does not exist"):
        load_model_file(f"{tmp_path}/missing.py:M")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match="importing .* failed: RuntimeError: boom"):
        load_model_file(f"{tmp_path}/broken.py:M")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(UsageError, match="defines no 'M'"):
        load_model_file(f"{tmp_path}/empty.py:M")


def test_pickle_roundtrip_in_process():
    assert pickle.loads(pickle_model_class(Good))({"a": "b"}).predict(3) == 3
