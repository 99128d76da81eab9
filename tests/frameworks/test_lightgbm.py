"""LightGBM: a classifier (labels back, not probabilities) and a Booster, saved as LightGBM's text model."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import log_and_load, pinned

lightgbm = pytest.importorskip("lightgbm")
PARAMS = {"n_estimators": 5, "num_leaves": 4, "min_child_samples": 2, "verbose": -1}


def data(n_classes):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 3))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5][: n_classes - 1])
    return X, np.array(["low", "mid", "high"])[y]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_round_trip_gives_labels(store, n_classes):
    X, y = data(n_classes)
    clf = lightgbm.LGBMClassifier(**PARAMS).fit(X, y)
    model, manifest = log_and_load(clf, store)
    assert manifest["artifacts"]["model"]["filename"] == "model.txt"
    assert pinned(manifest, "lightgbm") == metadata.version("lightgbm")
    assert model.predict(X[:12].tolist()) == clf.predict(X[:12]).tolist()


def test_booster_round_trip(store):
    X, _ = data(2)
    params = {"objective": "regression", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 2}
    booster = lightgbm.train(params, lightgbm.Dataset(X, label=X[:, 0] * 2), num_boost_round=5)
    model, _ = log_and_load(booster, store)
    assert model.predict(X[:6].tolist()) == pytest.approx(booster.predict(X[:6]).tolist())
