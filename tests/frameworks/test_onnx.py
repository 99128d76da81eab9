"""ONNX: scikit-learn models converted by skl2onnx, logged as a ModelProto or a .onnx path, run by
onnxruntime."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402


def test_regressor_proto_round_trip(store):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 3)).astype("float32")
    reg = LinearRegression().fit(X, X @ np.array([1.0, -2.0, 0.5]))
    proto = skl2onnx.to_onnx(reg, X[:1])
    model, manifest = log_and_load(proto, store)
    assert pinned(manifest, "onnxruntime") == metadata.version("onnxruntime")
    assert "onnx" not in [line.split("==")[0] for line in manifest["requirements"]]  # onnxruntime is enough
    got = model.predict(X[:5].tolist())
    assert_close(got, reg.predict(X[:5]).reshape(-1, 1), tol=1e-4)
    batch = model.batch_predict([X[:2].tolist(), X[2:5].tolist()])
    assert_close(batch[1], reg.predict(X[2:5]).reshape(-1, 1), tol=1e-4)


def test_classifier_file_with_two_outputs(store, tmp_path):
    X, y = load_iris(return_X_y=True)
    X = X.astype("float32")
    clf = LogisticRegression(max_iter=300).fit(X, y)
    path = tmp_path / "iris.onnx"
    path.write_bytes(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}).SerializeToString())
    model, manifest = log_and_load(str(path), store)
    assert manifest["artifacts"]["model"]["filename"] == "model.onnx"
    got = model.predict(X[::30].tolist())
    assert set(got) == {"label", "probabilities"}
    assert got["label"] == clf.predict(X[::30]).tolist()
    assert_close(got["probabilities"], clf.predict_proba(X[::30]), tol=1e-4)
    one = model.predict(X[0].tolist())
    assert one["label"] == int(clf.predict(X[:1])[0])


def test_a_missing_onnx_file_is_refused(store, tmp_path):
    from vci.errors import ModelValidationError

    with pytest.raises(ModelValidationError, match="does not exist"):
        log_and_load(str(tmp_path / "absent.onnx"), store)
