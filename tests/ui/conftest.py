"""Fixtures for the web app: local staging and production on the embedded default store, an app over them."""

import re

import pytest

from tests.release.conftest import make_run, release_settings, stop_all
from vci.deploy import deploy
from vci.release.promote import promote
from vci.ui.app import create_app
from vci.ui.guard import COOKIE, Guard

TOKEN = "ui-token-for-tests-0123456789"


@pytest.fixture()
def released(tmp_path, monkeypatch):
    """``(settings, v1, v2)``: v1 promoted to production, v2 deployed to staging (not promoted)."""
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "ci-bot")
    for name in ("GITHUB_ACTIONS", "GITHUB_RUN_ID", "BUILD_URL", "JENKINS_URL", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = release_settings(tmp_path, {"production": {"requires_approval": True}})
    try:
        v1 = make_run(settings, tmp_path, 2)
        deploy(settings, v1.id, "staging")
        promote(settings, "staging", "production", approved_by="carol")
        v2 = make_run(settings, tmp_path, 3)
        deploy(settings, v2.id, "staging")
        yield settings, v1, v2
    finally:
        stop_all(settings)


def app_client(settings, actions=True):
    app = create_app(settings, Guard(token=TOKEN, actions=actions))
    return app.test_client()


def signed_in(client) -> str:
    """Sign ``client`` in with the token; the CSRF token its forms carry."""
    response = client.get(f"/login?token={TOKEN}")
    assert response.status_code == 302 and COOKIE in response.headers["Set-Cookie"]
    return csrf_of(client.get("/").get_data(as_text=True))


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
