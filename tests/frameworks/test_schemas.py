"""Framework adapters tell the input schema: what a fitted model knows of its input, read when it is logged."""

import numpy as np
import pytest

from tests.frameworks.conftest import log_and_load
from vci.validator import Validator

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402


def problem(manifest, value):
    return Validator(manifest["schemas"]["input"]).problem(value)


def test_sklearn_rows_have_n_features_in(store):
    X, y = load_iris(return_X_y=True)
    model, manifest = log_and_load(LogisticRegression(max_iter=300).fit(X, y), store)
    assert manifest["schemas"]["from"]["input"] == "sklearn"
    assert problem(manifest, X[:3].tolist()) is None and problem(manifest, X[0].tolist()) is None
    assert problem(manifest, [[5.1, 3.5, 1.4]]) == "$[0]: expected 4 items, got 3"
    assert problem(manifest, [[5.1, 3.5, 1.4, "wide"]]) == "$[0][3]: expected number, got string"


def test_sklearn_fit_on_a_dataframe_takes_records_with_its_columns(store):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 3, 2]})
    _, manifest = log_and_load(LinearRegression().fit(frame, frame["a"] - frame["b"]), store)
    assert problem(manifest, [{"a": 1, "b": 2}]) is None and problem(manifest, {"a": [1, 2], "b": [3, 4]}) is None
    assert problem(manifest, [{"a": 1}]) == '$[0]: missing required key "b"'


def test_onnx_graph_inputs_give_width_and_type(store):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    X = np.random.default_rng(1).normal(size=(10, 3)).astype("float32")
    proto = skl2onnx.to_onnx(LinearRegression().fit(X, X.sum(axis=1)), X[:1])
    _, manifest = log_and_load(proto, store)
    assert manifest["schemas"]["from"]["input"] == "onnx"
    assert problem(manifest, X[:2].tolist()) is None
    assert problem(manifest, [[1.0, 2.0]]) == "$[0]: expected 3 items, got 2"


def test_a_torch_sequential_starting_with_linear_gives_its_in_features(store):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.ReLU())
    _, manifest = log_and_load(net, store)
    assert manifest["schemas"]["from"]["input"] == "torch"
    assert problem(manifest, [[0.0] * 5]) is None and problem(manifest, [[0.0] * 4]) == "$[0]: expected 5 items, got 4"
