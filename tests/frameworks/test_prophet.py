"""Prophet: a forecaster fit in the test (Prophet's bundled Stan model, nothing compiled), saved with
model_to_json, served as the original forecasts: a horizon, dates, records with a regressor, batches."""

import logging
from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned
from vci.errors import ModelError, ModelValidationError
from vci.validator import Validator

prophet = pytest.importorskip("prophet")
pd = pytest.importorskip("pandas")
logging.getLogger("cmdstanpy").setLevel(logging.WARNING)


def history(days=56):
    t = np.arange(days)
    rng = np.random.default_rng(0)
    y = 10 + 0.3 * t + 2 * np.sin(2 * np.pi * t / 7) + rng.normal(scale=0.5, size=days)
    return pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=days, freq="D"), "y": y})


def fitted(frame, **options):
    model = prophet.Prophet(yearly_seasonality=False, daily_seasonality=False, uncertainty_samples=40, **options)
    for name in [c for c in frame.columns if c not in ("ds", "y")]:
        model.add_regressor(name)
    return model.fit(frame)


def seeded_forecast(model, future):
    np.random.seed(0)  # the served model seeds numpy's generator for its bounds' samples the same way
    return model.predict(future)


def test_horizon_and_dates_round_trip(store):
    original = fitted(history())
    model, manifest = log_and_load(original, store)
    assert manifest["artifacts"]["model"]["filename"] == "prophet.json"
    assert pinned(manifest, "prophet") == metadata.version("prophet")
    expected = seeded_forecast(original, original.make_future_dataframe(periods=5, include_history=False))
    got = model.predict(5)
    assert [g["ds"] for g in got] == [f"2024-02-{d:02d}T00:00:00" for d in range(26, 30)] + ["2024-03-01T00:00:00"]
    assert_close([g["yhat"] for g in got], expected["yhat"])
    assert_close([[g["yhat_lower"], g["yhat_upper"]] for g in got], expected[["yhat_lower", "yhat_upper"]])
    assert got[0]["yhat_lower"] < got[0]["yhat"] < got[0]["yhat_upper"]
    dates = ["2024-03-10", "2024-04-01"]
    assert_close([g["yhat"] for g in model.predict(dates)], original.predict(pd.DataFrame({"ds": dates}))["yhat"])
    batch = model.batch_predict([2, dates])
    assert [len(b) for b in batch] == [2, 2]
    assert_close([b["yhat"] for b in batch[1]], original.predict(pd.DataFrame({"ds": dates}))["yhat"])


def test_input_schema_and_refusals(store):
    model, manifest = log_and_load(fitted(history()), store)
    check = Validator(manifest["schemas"]["input"])
    assert manifest["schemas"]["from"]["input"] == "prophet"
    assert check.problem(7) is None and check.problem(["2024-03-01"]) is None
    assert check.problem([{"ds": "2024-03-01"}]) is None
    assert check.problem(0) is not None and check.problem("2024-03-01") is not None
    with pytest.raises(ModelError, match="not a date") as refused:
        model.predict(["tomorrow-ish"])
    assert refused.value.status == 422


def test_an_extra_regressor_takes_records_not_a_horizon(store):
    frame = history()
    frame["promo"] = (np.arange(len(frame)) % 5 == 0).astype(float)
    frame["y"] += 4 * frame["promo"]
    original = fitted(frame)
    model, manifest = log_and_load(original, store)
    records = [{"ds": "2024-03-01", "promo": 1.0}, {"ds": "2024-03-02", "promo": 0.0}]
    future = pd.DataFrame({"ds": pd.to_datetime(["2024-03-01", "2024-03-02"]), "promo": [1.0, 0.0]})
    assert_close([g["yhat"] for g in model.predict(records)], original.predict(future)["yhat"])
    check = Validator(manifest["schemas"]["input"])
    assert check.problem([{"ds": "2024-03-01"}]) == '$[0]: missing required key "promo"'
    with pytest.raises(ModelError, match="takes dates, not a horizon: it has extra regressors"):
        model.predict(3)
    with pytest.raises(ModelError, match="Prophet cannot forecast this input: .*promo") as refused:
        model.predict([{"ds": "2024-03-01", "promo": None}])
    assert refused.value.status == 422


def test_an_unfitted_model_is_refused_with_the_fix(store):
    with pytest.raises(ModelValidationError, match="not fitted"):
        log_and_load(prophet.Prophet(), store)
