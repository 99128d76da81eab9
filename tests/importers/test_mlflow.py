"""vci import mlflow with models a real MLflow wrote (tests/importers/peer_mlflow.py): the sklearn flavor in
MLflow's default skops format (registered, models:/NAME/VERSION) and in cloudpickle (runs:/ID/model) served
without MLflow; a pyfunc python model with a context artifact served by a server whose Python has MLflow
(its loader needs it); each answer compared with MLflow's own. And what vci refuses."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

import vci
from registry import free_port
from vci.config import load_settings
from vci.deploy import undeploy
from vci.errors import NotFoundError, RequirementError
from vci.importers import ImportRefused, log_plan
from vci.importers import mlflow as mlflow_import

from .conftest import assert_close, peer_python, pinned, vci_import

ROOT = Path(__file__).resolve().parents[2]


def tracking(out: Path) -> str:
    return f"sqlite:///{out}/mlflow.db"


def imported(source: str, out: Path):
    result = log_plan(load_settings({}), mlflow_import.plan(source, tracking(out)), project="imported")
    return result, vci.get_run(result.run_id)


@contextmanager
def deployed(run):
    try:
        run.deploy(wait=True)
        yield run.get_deployed_model()
    finally:
        undeploy(run.settings, "staging")


def test_registered_skops_model_serves_mlflows_probabilities(mlflow_models, project):
    peer, out = mlflow_models
    result, run = imported("models:/iris/1", out)
    manifest = run.manifest
    assert result.plan.flavor == "sklearn (skops)" and "skops" in result.plan.imports
    assert manifest["schemas"]["from"] == {"input": "declared", "output": "declared"}  # the signature's
    assert pinned(manifest, "skops") and pinned(manifest, "scikit-learn")
    assert pinned(manifest, "mlflow") is None and not any(e["name"] == "mlflow" for e in manifest["lock"])
    assert manifest["examples"]["inputs"][0][1]["sepal width (cm)"] == 3.0  # input_example.json, as records
    with sqlite3.connect(out / "mlflow.db") as db:  # MLflow 3's logged model id names the same model
        (model_id,) = db.execute(
            "SELECT model_id FROM logged_models WHERE source_run_id = ?", (peer["skops_run"],)
        ).fetchone()
    registered = mlflow_import.model_directory("models:/iris/1", tracking(out))
    assert mlflow_import.model_directory(f"models:/{model_id}", tracking(out)) == registered
    meta = json.loads(Path(run.fetch_artifacts()["model.json"]).read_text())
    assert meta["method"] == "predict_proba" and meta["columns"][0] == "sepal length (cm)"
    with deployed(run) as model:
        assert_close(model.predict(peer["rows"]), peer["registered"])
        records = [dict(zip(meta["columns"], row, strict=True)) for row in peer["rows"]]
        assert_close(model.predict(records), peer["registered"])
        with pytest.raises(vci.RemoteError) as refused:  # three columns: the signature's schema answers 422
            model.predict([[5.1, 3.5, 1.4]])
        assert refused.value.status == 422


def test_run_model_in_cloudpickle_from_the_cli(mlflow_models, project):
    peer, out = mlflow_models
    source = f"runs:/{peer['pickle_run']}/model"
    done = vci_import("mlflow", source, "--tracking-uri", tracking(out), "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["flavor"] == "sklearn (cloudpickle)" and doc["source"].startswith(source)
    assert not any("mlflow" in name for name in doc["imports"])
    assert any("mlflow==" in line and "left out" in line for line in doc["mapped"])
    model = vci.get_run(doc["run_id"]).load_model()  # the server's loader (modeldir.load_model), in this Python
    assert model.predict(peer["rows"]) == peer["runs_model"]


def test_pyfunc_python_model_served_where_mlflow_is(mlflow_models, project):
    peer, out = mlflow_models
    result, run = imported(str(out / "pyfunc"), out)
    assert "factor" in run.manifest["artifacts"]  # the context artifact, by its key
    assert pinned(run.manifest, "mlflow")  # its loader needs MLflow: the pin stays
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VCI_WORK_DIR": str(project / "work")}
    command = [peer_python("mlflow"), "-m", "vci.serve", "--model-dir", str(run.model_dir())]
    server = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server)
        answer = requests.post(f"{url}/predict", json=peer["pyfunc_records"], timeout=10)
        assert answer.status_code == 200, answer.text
        assert_close(answer.json(), peer["pyfunc"])
        one = requests.post(f"{url}/predict", json={"a": 1.0, "b": 1.0}, timeout=10)
        assert one.json() == pytest.approx(5.0)  # one record: one answer
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready in {timeout} s")


def edited(out: Path, tmp_path: Path, change) -> Path:
    """A copy of MLflow's sklearn model directory with its MLmodel changed by ``change``."""
    copy = tmp_path / "edited"
    tmp_path.mkdir(exist_ok=True)
    shutil.copytree(out / "sklearn_dir", copy)
    doc = yaml.safe_load((copy / "MLmodel").read_text())
    change(doc["flavors"])
    (copy / "MLmodel").write_text(yaml.safe_dump(doc))
    return copy


def test_what_vci_cannot_serve_is_refused_by_name(mlflow_models, project):
    _, out = mlflow_models
    other = edited(out, project, lambda f: f["python_function"].update(loader_module="mlflow.pytorch"))
    with pytest.raises(ImportRefused, match="loader mlflow.pytorch"):
        mlflow_import.plan(str(other))
    shutil.rmtree(other)
    no_pyfunc = edited(out, project, lambda f: f.pop("python_function"))
    done = vci_import("mlflow", str(no_pyfunc))
    assert done.returncode == 4 and "Traceback" not in done.stderr
    assert "flavors (sklearn) have no python_function" in done.stderr
    other_pin = edited(out, project / "pins", lambda f: None)
    (other_pin / "requirements.txt").write_text("scikit-learn==1.0.2\nnumpy\n")  # trained with another version
    with pytest.raises(RequirementError, match="pins scikit-learn 1.0.2, but .* is installed here"):
        log_plan(load_settings({}), mlflow_import.plan(str(other_pin)))
    with pytest.raises(NotFoundError, match="no registered model version models:/iris/9"):
        mlflow_import.plan("models:/iris/9", tracking(out))
    other_db = project / "other.db"
    sqlite3.connect(other_db).execute("CREATE TABLE notes (text)").connection.commit()
    with pytest.raises(ImportRefused, match="cannot be read as MLflow's tracking database: no such table"):
        mlflow_import.plan("models:/iris/1", f"sqlite:///{other_db}")
    with pytest.raises(ImportRefused, match="sqlite store only"):
        mlflow_import.plan("models:/iris/1", f"file://{out}/mlruns")
