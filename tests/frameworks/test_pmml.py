"""PMML scored on the JVM by JPMML: a logistic regression fit by scikit-learn, written as PMML in the test,
answers what scikit-learn answers."""

import pytest

import vci
from tests.frameworks.conftest import log_and_load, pinned
from vci.errors import ModelError, ModelValidationError

NAMES = ["sl", "sw", "pl", "pw"]


def pmml_of(clf, outputs: bool) -> str:
    """A PMML 4.4 RegressionModel (softmax) with the classifier's coefficients, as any PMML writer makes one."""
    fields = "".join(f'<DataField name="{n}" optype="continuous" dataType="double"/>' for n in NAMES)
    classes = "".join(f'<Value value="{k}"/>' for k in clf.classes_)
    mining = "".join(f'<MiningField name="{n}"/>' for n in NAMES) + '<MiningField name="species" usageType="target"/>'
    probabilities = "".join(
        f'<OutputField name="probability({k})" optype="continuous" dataType="double" '
        f'feature="probability" value="{k}"/>'
        for k in clf.classes_
    )
    tables = "".join(
        f'<RegressionTable intercept="{float(b)!r}" targetCategory="{k}">'
        + "".join(f'<NumericPredictor name="{n}" coefficient="{float(c)!r}"/>' for n, c in zip(NAMES, w, strict=True))
        + "</RegressionTable>"
        for k, w, b in zip(clf.classes_, clf.coef_, clf.intercept_, strict=True)
    )
    return (
        '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>'
        f'<DataDictionary>{fields}<DataField name="species" optype="categorical" dataType="integer">{classes}'
        '</DataField></DataDictionary><RegressionModel functionName="classification" normalizationMethod="softmax">'
        f"<MiningSchema>{mining}</MiningSchema>{'<Output>' + probabilities + '</Output>' if outputs else ''}"
        f"{tables}</RegressionModel></PMML>"
    )


@pytest.fixture(scope="module")
def iris_fit():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y), X[::25].tolist()


def test_jpmml_answers_what_scikit_learn_answers(store, tmp_path, iris_fit):
    clf, rows = iris_fit
    (tmp_path / "iris.pmml").write_text(pmml_of(clf, outputs=True))
    model, manifest = log_and_load(vci.frameworks.pmml(tmp_path / "iris.pmml"), store)
    answers = model.predict(rows)
    assert [a["species"] for a in answers] == clf.predict(rows).tolist()
    for answer, expected in zip(answers, clf.predict_proba(rows).tolist(), strict=True):
        assert [answer[f"probability({k})"] for k in range(3)] == pytest.approx(expected, rel=1e-9)
    assert model.predict(dict(zip(NAMES, rows[0], strict=True)))["species"] == clf.predict(rows[:1])[0]
    assert pinned(manifest, "jpmml-evaluator")
    assert "jpype1" in {entry["name"].lower() for entry in manifest["lock"]}  # the scorer's closure is locked
    assert manifest["schemas"]["input"]["anyOf"][0]["items"]["minItems"] == 4


def test_one_target_without_output_fields_answers_its_values(store, tmp_path, iris_fit):
    clf, rows = iris_fit
    (tmp_path / "bare.pmml").write_text(pmml_of(clf, outputs=False))
    model, _ = log_and_load(vci.frameworks.pmml(tmp_path / "bare.pmml"), store)
    assert model.predict(rows) == clf.predict(rows).tolist()
    with pytest.raises(ModelError, match="missing input columns: pw") as refused:
        model.predict([{"sl": 1.0, "sw": 1.0, "pl": 1.0}])
    assert refused.value.status == 422


def test_a_document_jpmml_refuses_fails_at_log_time(store, tmp_path):
    (tmp_path / "bad.pmml").write_text('<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>')
    with pytest.raises(ModelValidationError, match="JPMML cannot load bad.pmml"):
        log_and_load(vci.frameworks.pmml(tmp_path / "bad.pmml"), store)
