"""A framework model through a real local server process: /predict, /batch-predict, a 422 for bad columns."""

import pytest

import vci
from vci.deploy import undeploy

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")


def test_sklearn_dataframe_model_served(store, tmp_path, monkeypatch):
    from sklearn.linear_model import LinearRegression

    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 2, 1]})
    reg = LinearRegression().fit(frame, 2 * frame["a"] + frame["b"])
    run = vci.init("served", store=store)
    run.log_model(reg)
    try:
        run.deploy(wait=True)
        served = run.get_deployed_model()
        assert served.predict({"b": [1.0], "a": [5.0]}) == pytest.approx([11.0])
        assert served.predict([{"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 0.0}]) == pytest.approx([3.0, 0.0])
        batch = served.batch_predict([[[1.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]]])
        assert [len(b) for b in batch] == [1, 2]
        assert batch[1] == pytest.approx([4.0, 2.0])
        with pytest.raises(vci.RemoteError, match='missing required key "b"') as refused:  # the input schema's
            served.predict({"a": [1.0]})  # check, from the estimator's feature_names_in_, before the model
        assert refused.value.status == 422
    finally:
        undeploy(run.settings, "staging")
