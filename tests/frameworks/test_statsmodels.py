"""statsmodels: a formula OLS (named columns) and an array GLM with a constant, served as the originals."""

from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import log_and_load, pinned

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
pd = pytest.importorskip("pandas")


def test_formula_ols_round_trip(store):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=30), "z": rng.normal(size=30)})
    frame["y"] = 2 * frame.x - frame.z + rng.normal(scale=0.1, size=30)
    results = smf.ols("y ~ x + z", data=frame).fit()
    model, manifest = log_and_load(results, store)
    assert pinned(manifest, "statsmodels") == metadata.version("statsmodels")
    new = {"x": [0.5, -1.0], "z": [1.0, 2.0]}
    assert model.predict(new) == pytest.approx(results.predict(pd.DataFrame(new)).tolist())


def test_array_glm_adds_the_constant_when_rows_lack_it(store):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] + rng.normal(size=40) > 0).astype(float)
    results = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit()
    model, _ = log_and_load(results, store)
    expected = results.predict(sm.add_constant(X[:4])).tolist()
    assert model.predict(X[:4].tolist()) == pytest.approx(expected)
    assert model.predict(sm.add_constant(X[:4]).tolist()) == pytest.approx(expected)


def test_an_unfitted_model_is_refused(store):
    from vci.errors import ModelValidationError

    with pytest.raises(ModelValidationError, match="not a fitted statsmodels result"):
        log_and_load(sm.OLS(np.ones(3), np.ones((3, 1))), store)
