"""One image test per language: an R model (saved by R), a PMML document and an H2O MOJO (both scored on the
JVM), packaged on the "other languages" base (scripts/build-base-image.sh --languages), pushed, run with runc as
65532 on a read-only root, answering what R, scikit-learn and H2O answer."""

import json
import subprocess
import urllib.error

import pytest

import vci
from images import base_image_layout, run_image
from tests.frameworks.h2o_mojos import NAMES, scoring_records, trained
from tests.frameworks.test_pmml import pmml_of
from vci.build import Options
from vci.build.package import package

from .test_image_runs import post, wait_ready


@pytest.fixture(scope="module")
def languages_base():
    return f"oci:{base_image_layout(languages=True)}:base"


def served(settings, registry, base, saved, repository: str, rows):
    """Log ``saved`` (a vci.frameworks.r/pmml/h2o file), package it on ``base``, run the image, POST ``rows``."""
    run = vci.init("languages", settings=settings)
    run.log_model(saved)
    run.commit()
    result = package(settings, run.id, Options(base=base, push=[f"{registry.host}/ml/{repository}"]))
    with run_image(result["image"]) as box:
        wait_ready(box.url, box, timeout=120)
        try:
            return post(box.url + "/predict", rows)[1]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc}: {exc.read()!r}; container log: {box.logs()}") from exc


@pytest.mark.slow
def test_an_r_glm_in_the_languages_image_answers_what_r_answers(settings, tmp_path, registry, languages_base):
    fit = (
        'm <- glm(am ~ wt + hp, data = mtcars, family = binomial); saveRDS(m, "glm.rds"); '
        'writeLines(sprintf("%.17g", predict(m, data.frame(wt = c(2.62, 1.9), hp = c(110, 66)), type = "response")))'
    )
    proc = subprocess.run(["Rscript", "-e", fit], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    saved = vci.frameworks.r(tmp_path / "glm.rds", predict_args={"type": "response"})
    answer = served(settings, registry, languages_base, saved, "r-glm", [[2.62, 110], [1.9, 66]])
    assert answer == pytest.approx([float(v) for v in proc.stdout.split()], rel=1e-12)


@pytest.mark.slow
def test_a_pmml_document_in_the_languages_image_answers_what_scikit_learn_answers(
    settings, tmp_path, registry, languages_base
):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    (tmp_path / "iris.pmml").write_text(pmml_of(clf, outputs=True))
    rows = X[::50].tolist()
    answer = served(settings, registry, languages_base, vci.frameworks.pmml(tmp_path / "iris.pmml"), "pmml", rows)
    assert [a["species"] for a in answer] == clf.predict(rows).tolist()
    got = [a[f"probability({k})"] for a in answer for k in range(3)]
    assert got == pytest.approx(clf.predict_proba(rows).ravel().tolist(), rel=1e-9)


@pytest.mark.slow
def test_an_h2o_mojo_in_the_languages_image_answers_what_h2o_answers(settings, registry, languages_base):
    mojos = trained()  # by H2O itself, once per machine (tests/frameworks/h2o_mojos.py)
    rows = [[r[c] for c in NAMES] for r in scoring_records()]
    answer = served(settings, registry, languages_base, vci.frameworks.h2o(mojos / "multinomial.zip"), "h2o", rows)
    header, *expected = json.loads((mojos / "predictions.json").read_text())["multinomial"]
    assert [a["label"] for a in answer] == [e[0] for e in expected]
    got = [a["probabilities"][k] for a in answer for k in header[1:]]
    assert got == pytest.approx([float(p) for e in expected for p in e[1:]], rel=1e-12)
