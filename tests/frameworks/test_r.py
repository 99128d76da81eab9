"""R models saved by R itself (Rscript in the test), served through rpy2 and compared with R's own predictions."""

import os
import subprocess
import sys
import threading

import pytest

import vci
from tests.frameworks.conftest import log_and_load
from vci.errors import ModelError, ModelValidationError

# R fits and saves the models, and writes its own predictions for the rows the tests send (17 digits)
R_FIT = r"""
set.seed(7)
suppressPackageStartupMessages(library(randomForest))
glm_fit <- glm(am ~ wt + hp, data = mtcars, family = binomial)
saveRDS(glm_fit, "glm.rds")
new <- data.frame(wt = c(2.62, 3.44, 1.9), hp = c(110, 175, 66))
writeLines(sprintf("%.17g", predict(glm_fit, new, type = "response")), "glm.txt")
forest <- randomForest(Species ~ ., data = iris, ntree = 25)
saveRDS(forest, "forest.rds")
writeLines(as.character(predict(forest, iris[c(1, 51, 101, 120), ])), "forest.txt")
writeLines("predict <- function(data) data$x * 2 + nchar(data$label)", "double.R")
"""


@pytest.fixture(scope="module")
def r_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("r-models")
    subprocess.run(["Rscript", "-e", R_FIT], cwd=directory, check=True, capture_output=True, timeout=120)
    return directory


def test_a_glm_saved_by_r_predicts_what_r_predicts(store, r_models):
    model, manifest = log_and_load(vci.frameworks.r(r_models / "glm.rds", predict_args={"type": "response"}), store)
    expected = [float(line) for line in (r_models / "glm.txt").read_text().split()]
    rows = [[2.62, 110], [3.44, 175], [1.9, 66]]
    assert model.predict(rows) == pytest.approx(expected, rel=1e-12)
    assert model.predict({"hp": [110, 175, 66], "wt": [2.62, 3.44, 1.9]}) == pytest.approx(expected, rel=1e-12)
    assert model.predict({"wt": 2.62, "hp": 110}) == pytest.approx(expected[0], rel=1e-12)
    assert model.batch_predict([rows[:1], rows[1:]]) == [pytest.approx(expected[:1]), pytest.approx(expected[1:])]
    assert manifest["schemas"]["input"]["anyOf"][0]["items"]["minItems"] == 2  # the glm's terms: wt, hp
    assert not [line for line in manifest["requirements"] if line.lower().startswith("rpy2")]  # the base's


def test_a_random_forest_loads_its_package_and_answers_rs_labels(store, r_models):
    model, _ = log_and_load(vci.frameworks.r(r_models / "forest.rds"), store)
    iris_rows = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5], [6.0, 2.2, 5.0, 1.5]]
    assert model.predict(iris_rows) == (r_models / "forest.txt").read_text().split()
    assert model.meta["packages"] == ["randomForest"] and model.meta["versions"]["randomForest"]


def test_an_r_script_defining_predict_gets_a_data_frame(store, r_models):
    model, _ = log_and_load(vci.frameworks.r(r_models / "double.R"), store)
    assert model.predict([{"x": 1.5, "label": "abc"}, {"x": -1, "label": ""}]) == [6.0, -2.0]


def test_rows_of_the_wrong_width_are_refused_with_the_columns_named(store, r_models):
    model, _ = log_and_load(vci.frameworks.r(r_models / "glm.rds"), store)
    with pytest.raises(ModelError, match=r"rows of 2 \(wt, hp\)") as refused:
        model.predict([[1.0, 2.0, 3.0]])
    assert refused.value.status == 422
    with pytest.raises(ModelError, match="R's predict failed"):  # R's own error, as a 422
        model.predict({"wt": [1.0], "horsepower": [3.0]})


def test_a_file_r_cannot_read_fails_at_log_time(store, tmp_path):
    (tmp_path / "broken.rds").write_bytes(b"not R's serialisation")
    with pytest.raises(ModelValidationError, match="R failed reading the model"):
        log_and_load(vci.frameworks.r(tmp_path / "broken.rds"), store)
    with pytest.raises(ModelValidationError, match="does not exist"):
        log_and_load(vci.frameworks.r(tmp_path / "absent.rds"), store)


def test_loading_r_leaves_child_processes_the_environment_they_had(r_models):
    """rpy2 prepends R's and the system's library paths to LD_LIBRARY_PATH, which broke every child Python
    of this interpreter (pip for `vci package` among them) once an R model was logged."""
    script = (
        "import os, subprocess, sys; from vci.frameworks.rlang import RSession; "
        f"RSession('rds', {str(r_models / 'glm.rds')!r}, None, None); "
        "print(os.environ.get('LD_LIBRARY_PATH')); "
        "sys.exit(subprocess.run([sys.executable, '-c', 'import pip, vci']).returncode)"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None"]


def test_predict_from_another_thread_than_the_one_that_loaded(store, r_models):
    """The server loads a model in one thread and predicts in others; rpy2 keeps its conversion rules in a
    ContextVar that a new thread starts without (NotImplementedError: "Conversion rules ... missing")."""
    model, _ = log_and_load(vci.frameworks.r(r_models / "glm.rds", predict_args={"type": "response"}), store)
    answers: list = []
    worker = threading.Thread(target=lambda: answers.append(model.predict([[2.62, 110]])))
    worker.start()
    worker.join(60)
    expected = float((r_models / "glm.txt").read_text().split()[0])
    assert answers == [pytest.approx([expected], rel=1e-12)]
