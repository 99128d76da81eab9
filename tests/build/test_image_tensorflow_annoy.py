"""examples/tensorflow_annoy, the example the documentation leads with: run as its README says (the embedded
default: a local store and a local server), then the same run packaged on the Debian base (TensorFlow's CPU
build and annoy's wheel from the run's lock) and run with runc. Both answers must be the one computed here
(the saved encoder, then every distance in numpy). One test, one image: a test per framework would pay
TensorFlow's 1.3 GB layer again."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from images import base_image_layout, cache_root, run_image
from vci.build import Options
from vci.build.package import package
from vci.config import load_settings

from .test_image_runs import post, wait_ready

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tensorflow_annoy"
sys.path.insert(0, str(EXAMPLE))
np = pytest.importorskip("numpy")
# importing tensorflow imports keras, whose backend is then fixed for the process: the one test_keras.py expects
os.environ.setdefault("KERAS_BACKEND", "torch")
tf = pytest.importorskip("tensorflow")
from main import QUERIES  # noqa: E402
from model import NEIGHBOURS  # noqa: E402
from train import points  # noqa: E402


def nearest_by_hand(saved_model: Path) -> tuple[list, list]:
    """(ids, distances) of each query's nearest training points: the saved encoder, then every distance."""
    encoder = tf.saved_model.load(str(saved_model))
    X, _ = points()
    embedded, asked = encoder.embed(X).numpy(), encoder.embed(np.asarray(QUERIES, dtype="float32")).numpy()
    ids, distances = [], []
    for query in asked:
        d = np.linalg.norm(embedded - query, axis=1)
        order = np.argsort(d, kind="stable")[:NEIGHBOURS]
        ids.append(order.tolist())
        distances.append(d[order].tolist())
    return ids, distances


def run_example(tmp_path: Path) -> dict:
    """``python examples/tensorflow_annoy/main.py`` in ``tmp_path``: its last line (the README's promise)."""
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("VCI_STORE", None)
    try:
        command = [sys.executable, str(EXAMPLE / "main.py")]
        out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        undeploy = [sys.executable, "-m", "vci", "undeploy", "--env", "staging"]
        subprocess.run(undeploy, cwd=tmp_path, env=env, capture_output=True, timeout=60)


def readme_output() -> dict:
    line = next(x for x in (EXAMPLE / "README.md").read_text().splitlines() if x.strip().startswith('{"run_id"'))
    return json.loads(line)


@pytest.mark.slow
def test_the_tensorflow_annoy_example_answers_the_computation_done_here_locally_and_as_an_image(tmp_path, monkeypatch):
    result = run_example(tmp_path)
    ids, distances = nearest_by_hand(tmp_path / "out" / "saved_model")
    assert result["nearest"] == ids
    np.testing.assert_allclose(result["distances"], distances, atol=1e-3)  # the model rounds to 3 places
    assert result["requirements"] == ["annoy", "cloudpickle", "tensorflow-cpu", "vci"]  # the CPU build here
    promised = readme_output()
    assert result["nearest"] == promised["nearest"] and result["requirements"] == promised["requirements"]
    np.testing.assert_allclose(result["distances"], promised["distances"], atol=2e-3)

    wheels = os.environ.get("VCI_TEST_WHEELS")  # annoy's wheel (PyPI has its sdist only): scripts/test.sh builds it
    assert wheels and list(Path(wheels).glob("annoy-*.whl")), "run scripts/test.sh: it builds annoy's wheel"
    monkeypatch.setenv("PIP_FIND_LINKS", wheels)
    # the dependency layer (1.3 GB: installing and compiling it is most of this test) is kept with the test cache
    monkeypatch.setenv("VCI_CACHE_DIR", str(cache_root() / "tensorflow-annoy-layers"))
    settings = load_settings({"store": str(tmp_path / ".vci"), "project": "tensorflow-annoy"}, cwd=tmp_path, environ={})
    options = Options(base=f"oci:{base_image_layout()}:base", layout=str(tmp_path / "image"), level=0)
    package(settings, result["run_id"], options)  # level 0: gzip of that layer costs more than it saves here
    with run_image(f"oci:{tmp_path / 'image'}:{result['run_id']}") as box:
        wait_ready(box.url, box, timeout=180)  # importing TensorFlow in the container takes a while
        status, answer = post(box.url + "/predict", QUERIES)
    assert status == 200 and [a["nearest"] for a in answer] == ids
    np.testing.assert_allclose([a["distances"] for a in answer], distances, atol=1e-3)
