"""examples/tensorflow_annoy as an image: packaged on the Debian base (TensorFlow's CPU build and annoy's wheel
from the run's lock), run with runc, asked over HTTP; the answer is the one computed here by hand. This is the
one image test of the TensorFlow adapter's issue: a test per framework would pay TensorFlow's layer again."""

import os
import sys
import time
from pathlib import Path

import pytest

import vci
from images import base_image_layout, run_image
from vci.build import Options
from vci.build.package import package

from .test_image_runs import post, wait_ready

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "tensorflow_annoy"))
pytest.importorskip("tensorflow")
from main import QUERIES, log  # noqa: E402

from tests.test_example_tensorflow_annoy import nearest_by_hand, np  # noqa: E402


@pytest.mark.slow
def test_the_tensorflow_annoy_image_answers_what_the_computation_here_answers(settings, tmp_path, monkeypatch):
    wheels = os.environ.get("VCI_TEST_WHEELS")  # annoy's wheel (PyPI has its sdist only): scripts/test.sh builds it
    assert wheels and list(Path(wheels).glob("annoy-*.whl")), "run scripts/test.sh: it builds annoy's wheel"
    monkeypatch.setenv("PIP_FIND_LINKS", wheels)
    run = vci.init("tensorflow-annoy", settings=settings)
    log(run, str(tmp_path / "out"))
    run.commit()
    started = time.monotonic()
    options = Options(base=f"oci:{base_image_layout()}:base", layout=str(tmp_path / "image"), level=1)
    package(settings, run.id, options)  # gzip level 1: TensorFlow's layer is 1.3 GB unpacked
    print(f"packaged in {time.monotonic() - started:.1f} s", file=sys.stderr)
    with run_image(f"oci:{tmp_path / 'image'}:{run.id}") as box:
        wait_ready(box.url, box, timeout=180)  # importing TensorFlow in the container takes a while
        status, answer = post(box.url + "/predict", QUERIES)
    ids, distances = nearest_by_hand(tmp_path / "out" / "saved_model")
    assert status == 200 and [a["nearest"] for a in answer] == ids
    np.testing.assert_allclose([a["distances"] for a in answer], distances, atol=1e-3)  # rounded to 3 places
