"""spaCy: a blank English pipeline with a text classifier trained by the example's own code, saved with
to_disk, served as the original classifies; an entity recogniser's pipeline answers entities; a pipeline of
neither is refused."""

from importlib import metadata

import numpy as np
import pytest

import vci
from tests.frameworks.conftest import example, log_and_load, pinned
from vci.deploy import undeploy
from vci.errors import ModelError, ModelValidationError
from vci.validator import Validator

spacy = pytest.importorskip("spacy")
TEXTS = ["good film", "an awful movie", "great", "bad"]
trained_classifier = example("spacy").trained_classifier  # the example's own training: one copy


def test_text_classifier_round_trip(store):
    nlp = trained_classifier()
    assert nlp("good film").cats["POS"] > 0.5 > nlp("awful movie").cats["POS"]  # it learnt something
    model, manifest = log_and_load(nlp, store)
    assert manifest["artifacts"]["model"]["kind"] == "directory"
    assert pinned(manifest, "spacy") == metadata.version("spacy")
    expected = [nlp(text).cats for text in TEXTS]
    got = model.predict(TEXTS)
    assert [sorted(g) for g in got] == [["NEG", "POS"]] * len(TEXTS)
    assert [g["POS"] for g in got] == pytest.approx([e["POS"] for e in expected], abs=1e-6)
    assert model.predict("good film")["POS"] == pytest.approx(expected[0]["POS"], abs=1e-6)
    batch = model.batch_predict([TEXTS[:2], "great", TEXTS[3:]])
    assert [b["POS"] for b in batch[0]] == pytest.approx([e["POS"] for e in expected[:2]], abs=1e-6)
    assert batch[1]["POS"] == pytest.approx(expected[2]["POS"], abs=1e-6) and len(batch[2]) == 1
    scores = model.predict_tensors(np.array([t.encode() for t in TEXTS], dtype=object))
    assert scores.shape == (4, 2) and scores[:, 0] == pytest.approx([e["POS"] for e in expected], abs=1e-6)


def test_input_schema_is_texts_and_other_inputs_are_refused(store):
    model, manifest = log_and_load(trained_classifier(), store)
    check = Validator(manifest["schemas"]["input"])
    assert manifest["schemas"]["from"]["input"] == "spacy"
    assert check.problem("a text") is None and check.problem(["two", "texts"]) is None
    assert check.problem([[1.0, 2.0]]) == "$[0]: expected string, got array"
    with pytest.raises(ModelError, match="takes a text or a list of texts") as refused:
        model.predict({"text": "x"})
    assert refused.value.status == 422


def test_served_by_a_local_server_which_refuses_rows_with_422(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nlp = trained_classifier()
    run = vci.init("served-spacy", store=store)
    run.log_model(nlp)
    try:
        run.deploy(wait=True)
        served = run.get_deployed_model()
        assert served.predict("good film")["POS"] == pytest.approx(nlp("good film").cats["POS"], abs=1e-6)
        batch = served.batch_predict([TEXTS[:2], "great"])
        assert [b["POS"] for b in batch[0]] == pytest.approx([nlp(t).cats["POS"] for t in TEXTS[:2]], abs=1e-6)
        assert batch[1]["POS"] == pytest.approx(nlp("great").cats["POS"], abs=1e-6)
        with pytest.raises(vci.RemoteError, match="expected string, got array") as refused:  # the input schema
            served.predict([[1.0, 2.0]])
        assert refused.value.status == 422
    finally:
        undeploy(run.settings, "staging")


def test_an_entity_ruler_pipeline_answers_entities(store):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "CITY", "pattern": "Oslo"}])
    model, _ = log_and_load(nlp, store)
    assert model.predict("from Oslo to Rome") == [{"text": "Oslo", "label": "CITY", "start": 5, "end": 9}]


def test_a_pipeline_that_answers_nothing_is_refused_with_the_fix(store):
    with pytest.raises(ModelValidationError, match="no text classifier or entity recogniser"):
        log_and_load(spacy.blank("en"), store)
