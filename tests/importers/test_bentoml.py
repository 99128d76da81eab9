"""vci import bentoml with models a real BentoML saved in its model store (tests/importers/peer_bentoml.py):
by tag (latest, and an exact version) and by directory, served without BentoML and compared with BentoML's
own predictions; a model saved by a module vci has no loader for is refused by name."""

from __future__ import annotations

import json

import pytest

import vci
from vci.config import load_settings
from vci.importers import ImportRefused, log_plan
from vci.importers import bentoml as bentoml_import

from .conftest import assert_close, pinned, vci_import
from .test_mlflow import deployed


def test_latest_by_name_serves_bentomls_probabilities(bentoml_models, project):
    peer, home = bentoml_models
    plan = bentoml_import.plan("iris_forest", home)  # no version: the store's latest
    assert plan.source.startswith(peer["latest"]) and plan.meta["method"] == "predict_proba"
    run = vci.get_run(log_plan(load_settings({}), plan, project="bento").run_id)
    assert pinned(run.manifest, "scikit-learn") and not pinned(run.manifest, "bentoml")
    with deployed(run) as model:
        assert_close(model.predict(peer["rows"]), peer["latest_probabilities"])
        batch = model.batch_predict([peer["rows"][:1], peer["rows"][1:]])  # batchable: one call for all rows
        assert_close([*batch[0], *batch[1]], peer["latest_probabilities"])


def test_exact_tag_and_directory_from_the_cli(bentoml_models, project):
    peer, home = bentoml_models
    directory = home / "models" / "iris_forest" / peer["first"].split(":")[1]
    for source in (peer["first"], str(directory / "model.yaml")):
        done = vci_import("bentoml", source, "--bentoml-home", str(home), "-o", "json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["imports"] == ["sklearn", "joblib", "numpy"] and doc["source"].startswith(peer["first"])
        assert any("BentoML records none" in line for line in doc["unmapped"])
    model = vci.get_run(doc["run_id"]).load_model()  # the server's loader (modeldir.load_model)
    assert model.predict(peer["rows"]) == peer["first_predictions"]


def test_a_module_without_a_vci_loader_is_refused(bentoml_models, project):
    peer, home = bentoml_models
    with pytest.raises(ImportRefused, match="saved by bentoml.picklable_model, which vci has no loader for"):
        bentoml_import.plan(peer["pickled"], home)
    done = vci_import("bentoml", "nothing:here", "--bentoml-home", str(home))
    assert done.returncode == 4 and "no model nothing:here in the BentoML store" in done.stderr
    assert "Traceback" not in done.stderr
