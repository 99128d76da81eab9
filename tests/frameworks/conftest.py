"""Fixtures for the framework adapters: a local store in tmp_path; log, then load as the server does."""

import functools
import importlib.util
from pathlib import Path

import pytest

import vci


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return str(tmp_path / "store")


def log_and_load(obj, store, **log_options):
    """Log ``obj`` with run.log_model, commit, load it back via modeldir.load_model (the server's path)."""
    run = vci.init("frameworks", store=store)
    run.log_model(obj, **log_options)
    run.commit()
    again = vci.get_run(run.id, store=store)
    return again.load_model(), again.manifest


def pinned(manifest, name):
    """The version the run pinned for ``name`` (None if not pinned)."""
    for line in manifest["requirements"]:
        if line.split("==")[0].lower() == name.lower():
            return line.split("==")[1]
    return None


def assert_close(got, expected, tol=1e-5):
    """Nested lists of numbers equal to ``tol`` (and of the same shape)."""
    import numpy as np

    assert np.asarray(got).shape == np.asarray(expected).shape, (got, expected)
    close = np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), atol=tol)
    assert close, (got, expected)


@functools.cache
def example(name: str):
    """examples/NAME/main.py as a module named example_NAME (not ``main``, which every example is), so a
    test trains or builds exactly what the example does."""
    path = Path(__file__).resolve().parents[2] / "examples" / name / "main.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
