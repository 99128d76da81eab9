"""CatBoost: a classifier (string labels), a regressor, and a categorical feature by name, saved as .cbm and
served as the originals predict; the input schema comes from the model's features."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned
from vci.errors import ModelValidationError
from vci.validator import Validator

catboost = pytest.importorskip("catboost")
pd = pytest.importorskip("pandas")

SMALL = {"iterations": 8, "depth": 2, "random_seed": 0, "thread_count": 1, "verbose": False}
SMALL["allow_writing_files"] = False  # no catboost_info/ in the working directory


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def labels(clf, rows):
    return clf.predict(rows).ravel().tolist()  # a multiclass CatBoostClassifier answers (n, 1)


@pytest.mark.parametrize("names", [["no", "yes"], ["low", "mid", "high"]])
def test_classifier_round_trip_with_labels_batches_and_schema(store, names):
    X, _ = data()
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5]) if len(names) == 3 else (X[:, 0] > 0).astype(int)
    clf = catboost.CatBoostClassifier(**SMALL).fit(X, np.array(names)[y])
    model, manifest = log_and_load(clf, store)
    assert manifest["artifacts"]["model"]["filename"] == "model.cbm"
    assert pinned(manifest, "catboost") == metadata.version("catboost")
    assert model.predict(X[:10].tolist()) == labels(clf, X[:10])
    assert set(model.predict(X.tolist())) == set(names)
    assert model.predict(X[3].tolist()) == labels(clf, X[3:4])[0]
    expected = [labels(clf, X[:2]), labels(clf, X[2:5])]
    assert model.batch_predict([X[:2].tolist(), X[2:5].tolist()]) == expected
    check = Validator(manifest["schemas"]["input"])
    assert manifest["schemas"]["from"]["input"] == "catboost"
    assert check.problem(X[:2].tolist()) is None
    assert check.problem([[1.0, 2.0]]) == "$[0]: expected 3 items, got 2"


def test_regressor_round_trip_and_tensors(store):
    X, _ = data()
    reg = catboost.CatBoostRegressor(**SMALL).fit(X, X @ [1.0, -2.0, 0.5])
    model, _ = log_and_load(reg, store)
    assert_close(model.predict(X[:7].tolist()), reg.predict(X[:7]))
    assert_close(model.predict_tensors(X[:4]), reg.predict(X[:4]))


def test_a_categorical_feature_by_name_takes_records_and_strings(store):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"size": rng.normal(size=80), "city": rng.choice(["oslo", "rome"], 80)})
    target = ((frame["city"] == "rome") ^ (frame["size"] > 0)).astype(int)
    clf = catboost.CatBoostClassifier(**SMALL, cat_features=["city"]).fit(frame, target)
    model, manifest = log_and_load(clf, store)
    records = frame[:6].to_dict("records")
    assert model.predict(records) == labels(clf, frame[:6])
    assert model.predict([[0.3, "rome"]]) == labels(clf, pd.DataFrame({"size": [0.3], "city": ["rome"]}))
    check = Validator(manifest["schemas"]["input"])
    assert check.problem(records) is None and check.problem([[0.3, "rome"]]) is None
    assert check.problem([{"size": 0.3}]) == '$[0]: missing required key "city"'


def test_an_unfitted_model_is_refused_with_the_fix(store):
    with pytest.raises(ModelValidationError, match="not a fitted CatBoost model"):
        log_and_load(catboost.CatBoostClassifier(), store)
