"""What cannot work later is refused (or warned about) when it is logged, with the fix."""

import logging
import os
import subprocess
import sys
from importlib import metadata

import pytest

import vci
from vci.config import load_settings
from vci.deploy import deploy, undeploy
from vci.errors import ModelValidationError, NotFoundError, RequirementError, UsageError
from vci.model import validate_model_class
from vci.requirements import differences, pin_requirements

CLICK = metadata.version("click")


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return load_settings({"store": str(tmp_path / "store"), "project": "demo"}, cwd=tmp_path, environ={})


class Good:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data


def model(predict):
    return type("M", (Good,), {"predict": predict})


@pytest.mark.parametrize(
    "predict",
    [lambda self: 1, lambda self, data, other: 1, lambda self, *, data: 1, lambda self, data, *, k: 1],
    ids=["no-data", "two-required", "keyword-only", "required-keyword"],
)
def test_a_predict_that_cannot_take_one_input_is_refused(predict):
    with pytest.raises(ModelValidationError, match=r"cannot be called with one input") as refused:
        validate_model_class(model(predict))
    assert "predict(self, data)" in refused.value.hint


@pytest.mark.parametrize(
    "predict",
    [lambda self, data: 1, lambda self, *args: 1, lambda self, data, k=3: 1, staticmethod(lambda data: 1)],
    ids=["data", "varargs", "defaulted", "static"],
)
def test_a_predict_that_takes_one_input_is_accepted(predict):
    validate_model_class(model(predict))


def test_an_artifact_key_is_logged_once(settings, tmp_path):
    run = vci.init("demo", settings=settings)
    run.log_artifact("weights", {"w": 1})
    with pytest.raises(UsageError, match="'weights' is logged already"):
        run.log_artifact("weights", {"w": 2})
    assert len(run._artifacts) == 1


def test_an_empty_run_is_not_committed_and_one_without_a_model_is_warned_about(settings, caplog):
    with pytest.raises(UsageError, match="is empty: nothing to commit"):
        vci.init("demo", settings=settings).commit()
    run = vci.init("demo", settings=settings)
    run.log_artifact("data", {"rows": 3})
    with caplog.at_level(logging.WARNING, logger="vci"):
        run.commit()
    assert "has artifacts but no model" in caplog.text


def test_a_pin_other_than_the_installed_version_is_refused():
    with pytest.raises(RequirementError, match=f"pins click 0.1, but {CLICK} is installed") as refused:
        pin_requirements(["click==0.1"])
    assert f"click=={CLICK}" in refused.value.hint
    assert f"click=={CLICK}" in pin_requirements([f"click=={CLICK}"])
    assert "vci-absent-package==1.0" in pin_requirements(["vci-absent-package==1.0"])  # not here: kept


def test_differences_name_each_pin_this_python_does_not_match():
    pins = ["click==0.1", f"click=={CLICK}", "vci-absent-package==1.0", 'click==0.1; python_version < "3"', "x>=1"]
    assert differences(pins) == [
        "click: 0.1 pinned, " + CLICK + " here",
        "vci-absent-package: 1.0 pinned, not installed here",
    ]


def test_a_local_deploy_says_when_the_runs_pins_differ_from_this_python(settings, caplog):
    run = vci.init("demo", settings=settings)
    run.log_model(Good)
    run.log_requirements(["vci-absent-package==1.0"])
    try:
        with caplog.at_level(logging.WARNING, logger="vci"):
            deploy(settings, run, "staging")
        assert "staging runs in this Python environment" in caplog.text
        assert "vci-absent-package: 1.0 pinned, not installed here" in caplog.text
    finally:
        undeploy(settings, "staging")


def test_get_run_of_a_run_logged_but_not_committed_says_so(settings):
    run = vci.init("demo", settings=settings)
    run.log_model(Good)
    with pytest.raises(NotFoundError, match="logged but is not committed") as missing:
        vci.get_run(run.id, settings=settings)
    assert "run.commit()" in missing.value.hint
    run.commit()
    assert vci.get_run(run.id, settings=settings).id == run.id


def test_vci_log_without_a_model_is_refused(tmp_path):
    env = {**os.environ, "VCI_STORE": str(tmp_path / "store")}
    out = subprocess.run([sys.executable, "-m", "vci", "log"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == UsageError.exit_code and "needs the model class: --model FILE.py:Class" in out.stderr
    assert not (tmp_path / "store" / "runs").exists()


def test_a_local_deploy_refuses_no_wait_instead_of_ignoring_it(settings):
    run = vci.init("demo", settings=settings)
    run.log_model(Good)
    with pytest.raises(UsageError, match="a local deployment always waits"):
        deploy(settings, run, "staging", wait=False)
