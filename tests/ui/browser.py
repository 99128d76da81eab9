"""A real `vci ui --actions` process and Debian's Chromium driven by Playwright (headless, no download).

``python tests/ui/browser.py docs/`` sets up the tests' scene (v1 promoted to production, v2 on staging,
on the embedded default store) in a temporary directory and saves the README's screenshot there.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "ui-browser-token-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CONFIG = "project: demo\nenvironments:\n  staging: {}\n  production: {requires_approval: true}\n"


@contextlib.contextmanager
def ui_process(cwd: Path, env: dict, actions: bool = True):
    """``vci ui`` on a free port in ``cwd``; yields its base URL; stopped by its pid."""
    argv = [sys.executable, "-m", "vci", "ui", "--port", "0", *(["--actions"] if actions else [])]
    proc = subprocess.Popen(argv, cwd=cwd, env={**env, "VCI_UI_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "vci ui: serving http://127.0.0.1:PORT/ ..."
        found = re.search(r"serving (http://\S+/)", line)
        assert found, f"vci ui did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Debian's binary) browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base: str) -> None:
    page.goto(f"{base}login")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(base)


def screenshots(page, base: str, out: Path) -> list[Path]:
    """The board and the diff of staging's last two releases, as PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1500, "height": 520})
    page.goto(base)
    board = out / "ui-board.png"
    page.screenshot(path=str(board), full_page=True)
    page.goto(f"{base}env/staging")
    page.click("text=vs previous")
    diff = out / "ui-diff.png"
    page.screenshot(path=str(diff), full_page=True)
    return [board, diff]


def scene(root: Path) -> dict:
    """v1 promoted to production (approved by carol), v2 on staging, in ``root``; the environment to use."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.release.conftest import make_run
    from vci.config import load_settings
    from vci.deploy import deploy
    from vci.release.promote import promote

    (root / "vci.yaml").write_text(CONFIG)
    env = {**os.environ, "VCI_CACHE_DIR": str(root / "cache"), "VCI_USER": "ci-bot"}
    os.environ.update(VCI_CACHE_DIR=env["VCI_CACHE_DIR"], VCI_USER="ci-bot")
    settings = load_settings(cwd=root, environ={})
    v1 = make_run(settings, root, 2)
    deploy(settings, v1.id, "staging")
    promote(settings, "staging", "production", approved_by="carol")
    deploy(settings, make_run(settings, root, 3).id, "staging")
    return env


def main(out: str) -> None:
    from vci.config import load_settings
    from vci.deploy import undeploy

    root = Path(tempfile.mkdtemp())
    old = os.getcwd()
    os.chdir(root)
    try:
        env = scene(root)
        with ui_process(root, env) as base, chromium() as browser:
            page = browser.new_page()
            sign_in(page, base)
            time.sleep(0.2)
            shutil.copy(screenshots(page, base, root / "shots")[0], Path(old) / out / "ui-board.png")
    finally:
        for name in ("staging", "production"):
            undeploy(load_settings(cwd=root, environ={}), name)
        os.chdir(old)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
