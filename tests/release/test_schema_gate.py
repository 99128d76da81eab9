"""A promotion that changes the input schema says so, and a destination with allow_schema_change: false
refuses it before anything changes."""

import json

import pytest

import vci
from vci.deploy import deploy, status
from vci.errors import ConflictError
from vci.release.promote import promote
from vci.release.rollback import history

from .conftest import Tunable, make_run, release_settings, stop_all

SHORT_ROWS = {"type": "array", "items": {"type": "number"}, "maxItems": 3}  # the examples' shape, bounded


def declared_run(settings, tmp_path, schema):
    path = tmp_path / "config-declared.json"
    path.write_text(json.dumps({"factor": 2}))
    run = vci.init("demo", settings=settings)
    run.log_artifact("config", path)
    run.log_model(Tunable, artifacts=["config"])
    run.log_examples([[1, 2], [3]], [[2, 4], [6]])
    run.log_schema(input=schema)
    run.commit()
    return run


@pytest.fixture()
def strict(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    settings = release_settings(tmp_path, {"production": {"allow_schema_change": False}})
    yield settings
    stop_all(settings)


def test_a_schema_change_is_refused_before_anything_changes(strict, tmp_path):
    v1 = make_run(strict, tmp_path, 2)
    assert v1.manifest["schemas"]["from"]["input"] == "examples"
    deploy(strict, v1.id, "staging")
    assert promote(strict, "staging", "production")["schema_changes"] == []  # nothing ran there: no contract yet
    same = make_run(strict, tmp_path, 3)  # other weights, the same inferred schema
    deploy(strict, same.id, "staging")
    assert promote(strict, "staging", "production")["outcome"] == "succeeded"

    v2 = declared_run(strict, tmp_path, SHORT_ROWS)
    deploy(strict, v2.id, "staging")
    records = len(history(strict, "production")["releases"])
    with pytest.raises(ConflictError, match="changes its input schema .* allow_schema_change: false") as err:
        promote(strict, "staging", "production", dry_run=True)
    assert err.value.exit_code == 7
    with pytest.raises(ConflictError):
        promote(strict, "staging", "production")
    assert status(strict, "production").digest == same.version
    assert len(history(strict, "production")["releases"]) == records


def test_an_allowed_schema_change_is_said(settings, tmp_path):
    v1 = make_run(settings, tmp_path, 2)
    deploy(settings, v1.id, "staging")
    promote(settings, "staging", "production")
    v2 = declared_run(settings, tmp_path, SHORT_ROWS)
    deploy(settings, v2.id, "staging")
    result = promote(settings, "staging", "production")
    assert result["outcome"] == "succeeded" and status(settings, "production").digest == v2.version
    [change] = result["schema_changes"]
    assert change.startswith("input schema: ") and change in result["reason"]
