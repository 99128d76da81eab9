"""validate_model_class refuses what cannot serve; user modules are pickled by value."""

import abc
import json
import os
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


MODEL_SOURCE = """
import enum
import labels

THRESHOLD = {threshold}
KINDS = {{"flower", "tree", "grass"}}


class Kind(enum.Enum):
    FLOWER = 1


class Model:
    def __init__(self, artifacts):
        self.scale = float(open(artifacts["weights"]).read())

    def predict(self, data):
        return [x * self.scale > THRESHOLD and labels.known(kind) for x, kind in data if kind in {{"flower", "tree"}}]
"""


def write_model(directory, threshold: float):
    directory.mkdir(exist_ok=True)
    (directory / "model.py").write_text(MODEL_SOURCE.format(threshold=threshold))
    (directory / "labels.py").write_text("NAMES = {'flower', 'tree'}\n\ndef known(name):\n    return name in NAMES\n")
    (directory / "weights.txt").write_text("2.0")
    return directory


def log_in_a_new_process(code, store, seed: int) -> dict:
    """``vci log`` in its own interpreter (its own hash seed): the run's manifest."""
    env = {**os.environ, "VCI_STORE": str(store), "PYTHONHASHSEED": str(seed)}
    env.pop("VCI_DEBUG", None)
    argv = [sys.executable, "-m", "vci", "log", "--model", f"{code / 'model.py'}:Model", "--project", "twice"]
    argv += ["--artifact", f"weights={code / 'weights.txt'}", "-o", "json"]
    out = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    return json.loads((store / "runs" / f"{run_id}.json").read_text())


def test_the_same_code_logged_from_two_processes_gives_one_model_digest(tmp_path):
    code = write_model(tmp_path / "code", threshold=1.5)
    first = log_in_a_new_process(code, tmp_path / "store", seed=1)
    second = log_in_a_new_process(code, tmp_path / "store", seed=2)  # the .pyc the first one wrote, too
    assert first["id"] != second["id"]
    assert first["model"]["digest"] == second["model"]["digest"]
    assert first["artifacts"] == second["artifacts"]
    # another size too: a .pyc is checked against its source's mtime (whole seconds) and size, so a
    # same-size edit within the second of the first log would be read from the stale .pyc
    changed = log_in_a_new_process(write_model(code, threshold=12.5), tmp_path / "store", seed=1)
    assert changed["model"]["digest"] != first["model"]["digest"]


def test_two_versions_of_a_class_stay_two_classes_in_one_process(tmp_path):
    """Tracker ids come from the content: loading both versions must not merge them into one class."""
    blobs = []
    for threshold in (1.5, 3.5):
        code = write_model(tmp_path / f"v{threshold}", threshold)
        manifest = log_in_a_new_process(code, tmp_path / "store", seed=3)
        blobs.append((tmp_path / "store" / "blobs" / "sha256" / manifest["model"]["digest"][7:]).read_bytes())
    weights = str(write_model(tmp_path / "w", 0) / "weights.txt")
    old, new = (pickle.loads(blob)({"weights": weights}) for blob in blobs)
    assert old.predict([[1, "flower"], [1, "grass"]]) == [True]  # 2 > 1.5
    assert new.predict([[1, "flower"], [1, "tree"]]) == [False, False]  # 2 < 3.5
    assert type(old) is not type(new)
