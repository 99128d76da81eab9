"""scikit-learn: a pipeline fit on rows, one fit on a DataFrame, both served as the original predicts."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import log_and_load, pinned

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def test_pipeline_round_trip_rows_one_row_and_batch(store):
    X, y = load_iris(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    model, manifest = log_and_load(clf, store)
    assert type(model).__name__ == "SklearnModel"
    assert manifest["model"]["class"] == "vci.frameworks.sklearn.SklearnModel"
    assert set(manifest["model"]["artifacts"]) == {"model", "model.json"}
    assert manifest["artifacts"]["model"]["filename"] == "model.joblib"
    assert pinned(manifest, "scikit-learn") == metadata.version("scikit-learn")
    assert pinned(manifest, "numpy") == np.__version__
    rows = X[::7]
    assert model.predict(rows.tolist()) == clf.predict(rows).tolist()
    assert model.predict(X[100].tolist()) == int(clf.predict(X[100:101])[0])
    batch = model.batch_predict([X[:3].tolist(), X[140:].tolist()])
    assert batch == [clf.predict(X[:3]).tolist(), clf.predict(X[140:]).tolist()]


def test_dataframe_model_takes_columns_records_and_rows_in_its_order(store):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.0, 1, 2, 3, 4], "b": [1.0, 0, 3, 2, 5]})
    target = 3 * frame["a"] - frame["b"]
    reg = LinearRegression().fit(frame, target)
    model, manifest = log_and_load(reg, store)
    assert pinned(manifest, "pandas") == pd.__version__
    expected = reg.predict(pd.DataFrame({"a": [10.0, 20.0], "b": [1.0, 2.0]})).tolist()
    assert model.predict({"b": [1.0, 2.0], "a": [10.0, 20.0]}) == pytest.approx(expected)  # the fit's order
    assert model.predict([{"b": 1.0, "a": 10.0}, {"a": 20.0, "b": 2.0}]) == pytest.approx(expected)
    assert model.predict([[10.0, 1.0], [20.0, 2.0]]) == pytest.approx(expected)
    assert model.predict({"a": 10.0, "b": 1.0}) == pytest.approx(expected[0])
    from vci.errors import ModelError

    with pytest.raises(ModelError, match="missing input columns: b"):
        model.predict({"a": [1.0]})


def test_text_pipeline_takes_texts(store):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["good film", "great movie", "bad film", "awful movie", "good fun", "awful mess"]
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"]
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    model, _ = log_and_load(clf, store)
    queries = ["a good movie", "an awful film"]
    assert model.predict(queries) == clf.predict(queries).tolist()
    assert model.predict("great fun") == clf.predict(["great fun"])[0]
    expected = [clf.predict(queries).tolist(), clf.predict(["bad"]).tolist()]
    assert model.batch_predict([queries, ["bad"]]) == expected
    assert model.batch_predict([]) == []
