"""A framework missing where a model loads names the package to install; model.json records versions."""

import json
import sys
from importlib import metadata

import pytest

import vci
from vci.errors import ModelValidationError
from vci.frameworks.base import require


def test_require_names_the_pip_package():
    with pytest.raises(ModelValidationError) as info:
        require("vci_no_such_framework", "no-such-framework==1.0")
    assert info.value.hint == "pip install no-such-framework==1.0"
    assert "needs no-such-framework==1.0" in info.value.message


def test_loading_a_model_whose_framework_is_missing(store, monkeypatch):
    xgboost = pytest.importorskip("xgboost")
    import numpy as np

    X = np.arange(20, dtype=float).reshape(10, 2)
    booster = xgboost.train({"max_depth": 1}, xgboost.DMatrix(X, label=X[:, 0]), num_boost_round=1)
    run = vci.init("p", store=store)
    run.log_model(booster)
    run.commit()
    meta = json.loads(open(run.fetch_artifacts()["model.json"]).read())
    dist = meta["package"]
    assert meta["framework"] == "xgboost" and meta["versions"][dist] == metadata.version(dist)
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if not installed: import raises ImportError
    with pytest.raises(ModelValidationError) as info:
        vci.get_run(run.id, store=store).load_model()
    assert info.value.hint == f"pip install {dist}=={meta['versions'][dist]}"
    assert info.value.exit_code == 4
