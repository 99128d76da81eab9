"""Detection reads types without importing frameworks; run.log_model keeps classes and pins frameworks."""

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import vci
from tests.frameworks.conftest import log_and_load, pinned
from vci.frameworks import detect, frameworks

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "torch",
    "keras",
    "xgboost",
    "lightgbm",
    "onnxruntime",
    "statsmodels",
    "transformers",
    "catboost",
    "spacy",
    "prophet",
    "sentence_transformers",
    "sklearn",
    "numpy",
    "pandas",
]


def test_detecting_and_logging_a_function_imports_no_framework(tmp_path):
    code = (
        "import json, sys, vci\n"
        "def double(x):\n    return [2 * v for v in x]\n"
        "run = vci.init('p', store=sys.argv[1]); run.log_model(double); run.commit()\n"
        "m = vci.get_run(run.id, store=sys.argv[1]).load_model()\n"
        f"heavy = [n for n in {HEAVY!r} if n in sys.modules]\n"
        "print(json.dumps({'out': m.predict([1, 2]), 'heavy': heavy}))"
    )
    env = {"PATH": "/usr/bin:/bin", "VCI_CACHE_DIR": str(tmp_path / "c")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"out": [2, 4], "heavy": []}


def test_detect_by_type_and_mro():
    class Unknown:
        pass

    assert detect(lambda x: x) == "functions"
    assert detect("model.onnx") == "onnx" and detect(Path("m.onnx")) == "onnx"
    assert detect("weights.bin") is None
    assert detect(Unknown()) is None and detect(3) is None
    sklearn = pytest.importorskip("sklearn.linear_model")
    assert detect(sklearn.LinearRegression()) == "sklearn"
    assert "transformers" in frameworks() and "functions" in frameworks()


def test_detect_prefers_the_objects_own_framework_over_its_bases():
    lightgbm = pytest.importorskip("lightgbm")  # LGBMClassifier subclasses sklearn's BaseEstimator
    assert detect(lightgbm.LGBMClassifier()) == "lightgbm"
    torch = pytest.importorskip("torch")

    class UserNet(torch.nn.Module):  # the user's class, torch's base
        pass

    assert detect(UserNet()) == "torch"


def test_classes_are_logged_as_before(store, tmp_path):
    class Echo:
        def __init__(self, artifacts):
            pass

        def predict(self, data):
            return data

    model, manifest = log_and_load(Echo, store)
    assert model.predict([1]) == [1]
    assert manifest["artifacts"] == {}


def test_framework_pins_survive_a_later_log_requirements_and_user_artifacts_pass_through(store, tmp_path):
    sklearn = pytest.importorskip("sklearn.linear_model")
    (tmp_path / "labels.txt").write_text("a\nb\n")
    run = vci.init("p", store=store)
    run.log_artifact("labels", str(tmp_path / "labels.txt"))
    run.log_model(sklearn.LinearRegression().fit([[0], [1]], [0, 1]), artifacts=["labels"])
    run.log_requirements(["pytest"])
    run.commit()
    manifest = vci.get_run(run.id, store=store).manifest
    assert pinned(manifest, "scikit-learn") == metadata.version("scikit-learn")
    assert pinned(manifest, "pytest") == metadata.version("pytest")
    assert manifest["model"]["artifacts"] == ["model", "model.json", "labels"]


def test_a_user_artifact_named_model_is_not_overwritten(store, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"x")
    run = vci.init("p", store=store)
    run.log_artifact("model", str(tmp_path / "w.bin"))
    with pytest.raises(vci.UsageError, match="artifact 'model' is logged already"):
        run.log_model(lambda x: x)
