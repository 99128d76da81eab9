"""XGBoost: a classifier (sklearn API) and a Booster, saved as UBJSON, served as the originals predict."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import log_and_load, pinned

xgboost = pytest.importorskip("xgboost")


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_classifier_round_trip(store):
    X, y = data()
    clf = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    model, manifest = log_and_load(clf, store)
    assert manifest["artifacts"]["model"]["filename"] == "model.ubj"
    dist = "xgboost-cpu" if pinned(manifest, "xgboost-cpu") else "xgboost"
    assert pinned(manifest, dist) == metadata.version(dist)
    assert model.predict(X[:10].tolist()) == clf.predict(X[:10]).tolist()
    expected = [clf.predict(X[:2]).tolist(), clf.predict(X[2:5]).tolist()]
    assert model.batch_predict([X[:2].tolist(), X[2:5].tolist()]) == expected


def test_booster_round_trip(store):
    X, y = data()
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2}, xgboost.DMatrix(X, label=y), num_boost_round=4
    )
    model, _ = log_and_load(booster, store)
    assert model.predict(X[:5].tolist()) == pytest.approx(booster.predict(xgboost.DMatrix(X[:5])).tolist())
