"""H2O MOJOs scored on the JVM by H2O's genmodel: models trained by H2O itself (tests/frameworks/h2o_mojos.py)
answer, through vci's server path, what H2O's own ``model.predict`` answered."""

import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import vci
from tests.frameworks.conftest import log_and_load, pinned
from tests.frameworks.h2o_mojos import MODELS, scoring_records, trained
from vci.errors import ModelError, ModelValidationError
from vci.frameworks import genmodel


@pytest.fixture(scope="module")
def mojos():
    return trained()


@pytest.fixture(scope="module")
def h2o_answers(mojos):
    """H2O's predictions per model, as records of its prediction frame's columns (strings, as H2O wrote them)."""
    found = json.loads((mojos / "predictions.json").read_text())
    return {name: [dict(zip(rows[0], row, strict=True)) for row in rows[1:]] for name, rows in found.items()}


def as_rows(records: list[dict], columns: list[str]) -> list[list]:
    return [[record[c] for c in columns] for record in records]


def test_the_training_left_no_jvm_running(mojos):
    jvm = json.loads((mojos / "jvm.json").read_text())
    assert jvm["returncode"] is not None  # the child saw H2O's JVM exit
    command = Path(f"/proc/{jvm['pid']}/cmdline")
    assert not command.exists() or b"h2o.jar" not in command.read_bytes()  # (a pid may be reused since)


@pytest.mark.parametrize("name", ["multinomial", "binomial"])
def test_a_classifier_answers_h2os_labels_and_probabilities(store, mojos, h2o_answers, name):
    model, manifest = log_and_load(vci.frameworks.h2o(mojos / f"{name}.zip"), store)
    answers = model.predict(scoring_records())
    expected = h2o_answers[name]
    assert [a["label"] for a in answers] == [e["predict"] for e in expected]
    levels = model.meta["response"]["levels"]
    for answer, wanted in zip(answers, expected, strict=True):
        assert list(answer["probabilities"]) == levels
        expected_probabilities = [float(wanted[k]) for k in levels]
        assert [answer["probabilities"][k] for k in levels] == pytest.approx(expected_probabilities, rel=1e-12)
    assert model.meta["response"]["name"] == MODELS[name][3]
    assert pinned(manifest, "jpype1") and not pinned(manifest, "h2o")  # the 279 MB server jar stays out


def test_a_regression_answers_h2os_values_from_rows_records_and_columns(store, mojos, h2o_answers):
    model, manifest = log_and_load(vci.frameworks.h2o(mojos / "regression.zip"), store)
    records, expected = scoring_records(), [float(e["predict"]) for e in h2o_answers["regression"]]
    columns = model.meta["columns"]
    assert columns == MODELS["regression"][2]
    assert model.predict(as_rows(records, columns)) == pytest.approx(expected, rel=1e-12)
    assert model.predict({c: [r[c] for r in records] for c in columns}) == pytest.approx(expected, rel=1e-12)
    assert model.predict(records[0]) == pytest.approx(expected[0], rel=1e-12)
    assert model.batch_predict([as_rows(records[:2], columns), as_rows(records[2:3], columns)]) == [
        pytest.approx(expected[:2], rel=1e-12),
        pytest.approx(expected[2:3], rel=1e-12),
    ]
    import numpy

    tensors = {c: numpy.array([r[c] if r[c] is not None else numpy.nan for r in records[:3]]) for c in columns[:3]}
    tensors["species"] = numpy.array([r["species"].encode() for r in records[:3]], dtype=object)
    assert model.predict_tensors(tensors) == pytest.approx(expected[:3], rel=1e-12)  # V2's named tensors
    schema = manifest["schemas"]["input"]
    assert schema["anyOf"][0]["items"]["minItems"] == 4 and schema["anyOf"][3]["required"] == columns


def test_the_metadata_names_columns_levels_response_and_version(store, mojos):
    model, _ = log_and_load(vci.frameworks.h2o(mojos / "binomial.zip"), store)
    meta = model.meta
    assert meta["category"] == "Binomial" and meta["algo"] == "glm"
    assert meta["columns"] == ["species", "sl", "sw"]  # H2O's GLM puts categorical columns first
    assert meta["inputs"][0] == {
        "name": "species",
        "type": "categorical",
        "levels": ["setosa", "versicolor", "virginica"],
    }
    assert meta["inputs"][1] == {"name": "sl", "type": "numeric", "levels": None}
    assert meta["response"] == {"name": "long", "levels": ["no", "yes"]}
    assert meta["h2o_version"] == metadata.version("h2o")


def test_bad_values_and_shapes_are_refused_with_422(store, mojos):
    model, _ = log_and_load(vci.frameworks.h2o(mojos / "regression.zip"), store)
    for bad, said in [
        ([["wide", 1.0, 0.2, "setosa"]], "H2O could not score this input"),
        ([[3.0, 1.0, True, "setosa"]], "column 'pw' takes a number or a string"),
        ([[3.0, 1.0]], "takes rows of 4 cells"),
        ([{"sw": 3.0, "pl": 1.0, "species": "setosa"}], "missing input columns: pw"),
    ]:
        with pytest.raises(ModelError, match=said) as refused:
            model.predict(bad)
        assert refused.value.status == 422


def test_the_genmodel_jar_is_small_and_the_same_bytes_each_time(store, mojos, tmp_path):
    first = genmodel.genmodel_jar()
    with zipfile.ZipFile(first) as jar:
        names = jar.namelist()
        assert names == sorted(names) and "hex/genmodel/easy/EasyPredictModelWrapper.class" in names
        assert {i.date_time for i in jar.infolist()} == {genmodel.FIXED_TIME}
    assert not any(n.startswith(("water/api/", "hex/tree/")) for n in names)  # none of the server
    assert first.stat().st_size < 3_000_000
    with open(tmp_path / "again.jar", "wb") as out:
        genmodel.extract(genmodel.server_jar(), out)
    assert (tmp_path / "again.jar").read_bytes() == first.read_bytes()
    digests = set()
    for _ in range(2):
        run = vci.init("frameworks", store=store)
        run.log_model(vci.frameworks.h2o(mojos / "multinomial.zip"))
        run.commit()
        digests.add(vci.get_run(run.id, store=store).manifest["artifacts"]["model"]["digest"])
    assert len(digests) == 1


def test_a_genmodel_jar_named_by_the_user_is_shipped_as_it_is(store, mojos, tmp_path):
    jar = tmp_path / "h2o-genmodel.jar"
    with open(jar, "wb") as out:
        genmodel.extract(genmodel.server_jar(), out)
    with zipfile.ZipFile(jar, "a") as maven:
        maven.writestr("META-INF/maven/ai.h2o/h2o-genmodel/pom.properties", "version=3.46.0.11\n")
    model, _ = log_and_load(vci.frameworks.h2o(mojos / "multinomial.zip", genmodel_jar=jar), store)
    assert (tmp_path / "h2o-genmodel.jar").read_bytes() == (Path(model.path) / "h2o-genmodel.jar").read_bytes()
    assert model.predict([5.1, 3.5, 1.4, 0.2])["label"] == "setosa"


def test_a_pmml_document_scores_after_a_mojo_started_the_jvm(mojos, tmp_path):
    """One JVM per process: the adapter that starts it must leave the next one's jars loadable (JPMML's JAXB
    finds its implementation through the system class loader)."""
    script = f"""
import vci
from tests.frameworks.conftest import log_and_load
from tests.frameworks.test_pmml import pmml_of
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
open({str(tmp_path / "iris.pmml")!r}, "w").write(pmml_of(clf, outputs=False))
mojo, _ = log_and_load(vci.frameworks.h2o({str(mojos / "multinomial.zip")!r}), {str(tmp_path / "s1")!r})
pmml, _ = log_and_load(vci.frameworks.pmml({str(tmp_path / "iris.pmml")!r}), {str(tmp_path / "s2")!r})
print(mojo.predict([5.1, 3.5, 1.4, 0.2])["label"], pmml.predict([5.1, 3.5, 1.4, 0.2]))
"""
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["setosa", "0"]


def test_what_is_not_a_mojo_is_refused_at_log_time(store, tmp_path):
    (tmp_path / "binary-model").write_bytes(b"\x00H2O binary model, not a zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as other:
        other.writestr("README.md", "no model.ini")
    for path in (tmp_path / "binary-model", tmp_path / "other.zip"):
        with pytest.raises(ModelValidationError, match=f"{path.name} is not an H2O MOJO") as refused:
            log_and_load(vci.frameworks.h2o(path), store)
        assert "download_mojo" in refused.value.hint
    with pytest.raises(ModelValidationError, match="does not exist"):
        log_and_load(vci.frameworks.h2o(tmp_path / "missing.zip"), store)


def test_a_category_vci_does_not_serve_is_refused_at_log_time(store, mojos):
    said = r"clustering.zip is a Clustering model \(kmeans\): vci serves Regression, Binomial, Multinomial MOJOs"
    with pytest.raises(ModelValidationError, match=said):
        log_and_load(vci.frameworks.h2o(mojos / "clustering.zip"), store)
