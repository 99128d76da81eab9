"""examples/tensorflow_annoy runs as its README says on the embedded default, and answers what the same
computation done here (the saved encoder, brute-force nearest neighbours in numpy) answers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tensorflow_annoy"
sys.path.insert(0, str(EXAMPLE))

np = pytest.importorskip("numpy")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("annoy")
from main import QUERIES  # noqa: E402
from model import NEIGHBOURS  # noqa: E402
from train import points  # noqa: E402


def nearest_by_hand(saved_model: Path, queries=QUERIES) -> tuple[list, list]:
    """(ids, distances) of each query's nearest training points: the saved encoder, then every distance."""
    encoder = tf.saved_model.load(str(saved_model))
    X, _ = points()
    embedded, asked = encoder.embed(X).numpy(), encoder.embed(np.asarray(queries, dtype="float32")).numpy()
    ids, distances = [], []
    for query in asked:
        d = np.linalg.norm(embedded - query, axis=1)
        order = np.argsort(d, kind="stable")[:NEIGHBOURS]
        ids.append(order.tolist())
        distances.append(d[order].tolist())
    return ids, distances


def readme_output() -> dict:
    line = next(x for x in (EXAMPLE / "README.md").read_text().splitlines() if x.strip().startswith('{"run_id"'))
    return json.loads(line)


def test_the_example_runs_on_the_embedded_default_and_answers_the_computation_done_here(tmp_path):
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("VCI_STORE", None)
    try:
        command = [sys.executable, str(EXAMPLE / "main.py")]
        out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert (tmp_path / ".vci" / "runs" / f"{result['run_id']}.json").is_file()
        ids, distances = nearest_by_hand(tmp_path / "out" / "saved_model")
        assert result["nearest"] == ids
        np.testing.assert_allclose(result["distances"], distances, atol=1e-3)  # the model rounds to 3 places
        assert result["requirements"] == ["annoy", "cloudpickle", "tensorflow-cpu", "vci"]  # the CPU build here
        promised = readme_output()
        assert result["nearest"] == promised["nearest"] and result["requirements"] == promised["requirements"]
        np.testing.assert_allclose(result["distances"], promised["distances"], atol=2e-3)
    finally:
        subprocess.run([sys.executable, "-m", "vci", "undeploy", "--env", "staging"], cwd=tmp_path, env=env, timeout=60)
