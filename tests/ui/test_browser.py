"""`vci ui --actions` in a real Chromium: the board after a promotion, promoting and rolling back through the
pages (checked with `vci history`, `vci status` and a prediction), and refusals that change nothing."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.ui.browser import TOKEN, chromium, scene, screenshots, sign_in, ui_process
from vci.config import load_settings
from vci.deploy import undeploy


def vci_json(root, env, *args):
    done = subprocess.run([sys.executable, "-m", "vci", *args, "--output", "json"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """The scene on the embedded default store, `vci ui --actions` over it, a browser."""
    monkeypatch.chdir(tmp_path)
    env = scene(tmp_path)
    try:
        with ui_process(tmp_path, env) as base, chromium() as browser:
            yield tmp_path, env, base, browser
    finally:
        for name in ("staging", "production"):
            undeploy(load_settings(cwd=tmp_path, environ={}), name)


def digests(root, env):
    return {name: vci_json(root, env, "status", "--env", name).get("digest") for name in ("staging", "production")}


def test_board_promote_and_rollback_in_the_browser(world):
    root, env, base, browser = world
    before = digests(root, env)
    page = browser.new_page()
    page.goto(base)
    assert before["staging"] in page.inner_html("#env-staging") and "ready" in page.inner_text("#env-staging")
    assert before["production"] in page.inner_html("#env-production")
    assert page.locator("form").count() == 0  # not signed in: nothing to click

    sign_in(page, base)
    for path in screenshots(page, base, root / "shots"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    page.goto(base)
    form = page.locator("#promote-staging-production")
    form.locator("input[name=actor]").fill("alice")
    form.locator("input[name=approver]").fill("bob")
    form.locator("button").click()
    assert page.inner_text("h1") == "succeeded"
    assert digests(root, env)["production"] == before["staging"]
    newest = vci_json(root, env, "history", "--env", "production", "--limit", "1")["releases"][0]
    assert (newest["action"], newest["who"], newest["approver"]) == ("promote", "alice", "bob")

    page.goto(f"{base}env/production")
    first = page.locator("tbody tr").last  # the oldest release: v1's promotion
    first.locator("input[name=actor]").fill("dave")
    first.locator("button").click()
    assert page.inner_text("h1") == "succeeded"
    assert digests(root, env)["production"] == before["production"]
    answer = vci_json(root, env, "predict", "--env", "production", "--data", "[1, 2]")
    assert answer["prediction"] == [2, 4]  # v1 multiplies by 2, v2 by 3


class Attacker(BaseHTTPRequestHandler):
    """Another origin's page: a plain form (no script) that posts a promotion to the app."""

    target = ""

    def do_GET(self):
        body = (
            f'<form method="post" action="{self.target}promote"><input name="source" value="staging">'
            '<input name="destination" value="production"><input name="actor" value="mallory">'
            '<input name="approver" value="eve"><button id="go">win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_refused_without_token_with_a_wrong_csrf_token_and_from_another_origin(world):
    root, env, base, browser = world
    before = (digests(root, env), vci_json(root, env, "history", "--env", "production"))
    stranger = browser.new_context()  # no session
    refused = stranger.request.post(f"{base}promote", form={"source": "staging"}, headers={"Origin": base[:-1]})
    assert refused.status == 401 and "sign in" in refused.text()
    wrong = stranger.request.post(f"{base}promote", form={"source": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401

    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base)  # the session cookie is set now
    forged = context.request.post(
        f"{base}promote",
        form={"csrf": "0" * 64, "source": "staging", "destination": "production", "actor": "a", "approver": "b"},
        headers={"Origin": base[:-1]},
    )
    assert forged.status == 403 and "CSRF" in forged.text()

    Attacker.target = base
    evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{evil.server_port}/")
        with page.expect_response(f"{base}promote") as answer:
            page.click("#go")
        assert answer.value.status in (401, 403)  # SameSite=Strict: no cookie; and the Origin is another one
        assert "refused" in page.inner_text("h1")
    finally:
        evil.shutdown()
        evil.server_close()
    assert (digests(root, env), vci_json(root, env, "history", "--env", "production")) == before
    assert TOKEN not in page.content()
