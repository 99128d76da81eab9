"""Fixtures for the build tests: a store with runs, a shared layer cache, a tiny base layout, a real registry."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import vci  # noqa: E402
from registry import RegistryServer  # noqa: E402
from vci.config import load_settings  # noqa: E402

from .models import Scaler  # noqa: E402


@pytest.fixture(scope="session")
def layer_cache(tmp_path_factory):
    """One VCI_CACHE_DIR for the session, so the dependency layer is resolved once."""
    return tmp_path_factory.mktemp("vci-cache")


@pytest.fixture()
def settings(tmp_path, monkeypatch, layer_cache):
    monkeypatch.setenv("VCI_CACHE_DIR", str(layer_cache))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return load_settings({"store": str(tmp_path / "store"), "project": "scaler"}, cwd=tmp_path, environ={})


def log_scaler(settings, tmp_path, factor: str, cls=Scaler, requirements=None):
    path = tmp_path / f"factor-{abs(hash(factor))}.txt"
    path.write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", path)
    run.log_model(cls, artifacts=["factor"])
    run.log_requirements(requirements or [])
    run.commit()
    return run


@pytest.fixture(scope="session")
def scratch_base(tmp_path_factory):
    """An empty base layout labelled with this Python: enough to build and inspect, not to run."""
    from images import scratch_base_layout

    return scratch_base_layout(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    with RegistryServer(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def env_without_debug():
    env = dict(os.environ)
    env.pop("VCI_DEBUG", None)
    return env
