"""Suite-wide rule: in CI (CI set) a skipped test is a failure, so a missing install step cannot pass as green."""

import os

import pytest

# Keras fixes its backend at its first import, for the whole process, and `import tensorflow` imports it: every
# test module that imports either gets the backend the Keras tests are written for, whatever the collection order
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("VCI_STRICT_SKIPS", os.environ.get("CI", ""))
    if report.skipped and strict and strict != "0" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {report.longrepr}"
