"""A run's page shows whether each environment's verify: policy holds for it; "try it" follows the schema."""

import json
import re

import yaml

from tests.test_signed_runs import log_run
from tests.ui.conftest import app_client
from vci.config import load_settings
from vci.sign.keys import generate_key_pair
from vci.ui.app import _form_input, form_fields


def test_the_run_page_says_which_policies_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    signer, signer_pub = generate_key_pair(tmp_path / "keys", "signer")
    _, other_pub = generate_key_pair(tmp_path / "keys", "other")
    config = {
        "project": "demo",
        "store": "store",
        "signing_key": "keys/signer.key",
        "environments": {
            "staging": {"verify": {"keys": [str(signer_pub.relative_to(tmp_path))]}},
            "production": {"verify": {"keys": [str(other_pub.relative_to(tmp_path))]}},
        },
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(cwd=tmp_path, environ={})
    run = log_run(settings, tmp_path)
    page = app_client(settings, actions=False).get(f"/runs/{run.id}").get_data(as_text=True)
    staging = re.search(r'id="evidence-staging">(.*?)</p>', page, re.S).group(1)
    production = re.search(r'id="evidence-production">(.*?)</p>', page, re.S).group(1)
    assert "holds" in staging and "signed by key" in staging
    assert "does not hold" in production


def test_try_it_fields_follow_an_object_schema_and_fall_back_to_json():
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "string"}}}
    fields = form_fields(schema, {"a": 1.5, "b": "x"})
    assert [(f["name"], f["type"], f["value"]) for f in fields] == [("a", "number", "1.5"), ("b", "string", '"x"')]
    assert json.loads(_form_input({"field.a": "2", "field.b": "plain words"})) == {"a": 2, "b": "plain words"}
    assert form_fields({"type": "array", "items": {"type": "number"}}, [1, 2]) == []  # a JSON box instead
    assert form_fields(None, None) == []
    assert _form_input({"data": "[1, 2]"}) == "[1, 2]"
