"""The app over an S3 store (moto): the same pages, the same records, as on the embedded default."""

import re
import uuid

import pytest

from s3server import dummy_aws_env, start_moto
from tests.release.conftest import make_run, release_settings, stop_all
from tests.ui.conftest import app_client
from vci.deploy import deploy


@pytest.fixture()
def s3_settings(tmp_path, monkeypatch):
    import boto3

    server, endpoint = start_moto()
    for name, value in {**dummy_aws_env(), "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "ci-bot")
    monkeypatch.chdir(tmp_path)
    bucket = f"ui-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    settings = release_settings(tmp_path, store=f"s3://{bucket}/vci")
    yield settings
    stop_all(settings)
    server.stop()


def test_pages_over_s3(s3_settings, tmp_path):
    settings = s3_settings
    v1 = make_run(settings, tmp_path, 2)
    deploy(settings, v1.id, "staging")
    v2 = make_run(settings, tmp_path, 3)
    deploy(settings, v2.id, "staging")
    client = app_client(settings, actions=False)
    board = client.get("/").get_data(as_text=True)
    assert v2.version in re.search(r'<tr id="env-staging".*?</tr>', board, re.S).group(0)
    assert "s3://" in board
    timeline = client.get("/env/staging").get_data(as_text=True)
    newer, older = re.findall(r'id="release-(r[0-9a-f-]+)"', timeline)
    assert client.get(f"/diff?a=staging/{older}&b=staging/{newer}").status_code == 200
    runs = client.get("/runs?project=demo").get_data(as_text=True)
    assert runs.index(v2.id) < runs.index(v1.id)  # newest first
    assert v1.id in client.get(f"/runs/{v1.id}").get_data(as_text=True)
