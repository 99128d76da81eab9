"""A local shadow as `vci status` shows it while it runs, and the promote summary's comparison (text and JSON)."""

import re
import subprocess
import sys
import threading
import time

import yaml

from vci.deploy import deploy, status
from vci.release.promote import promote

from .test_shadow import Doubler, LiveTraffic, log, settings  # noqa: F401 - settings: the fixture


def watch(where, timeout: float = 60.0) -> tuple[dict, dict[str, str]] | None:
    """Production's shadow in `vci status` once something was compared, and the web app's board and
    environment page at that moment (None: never, within ``timeout``)."""
    from vci.ui.app import create_app
    from vci.ui.guard import Guard

    web = create_app(where, Guard(token="t" * 32, actions=False)).test_client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shadow = status(where, "production").shadow
        if shadow and shadow["compared"]:
            pages = {path: web.get(path).get_data(as_text=True) for path in ("/", "/env/production")}
            return shadow, pages
        time.sleep(0.2)
    return None


def test_status_shows_a_running_shadow_and_the_summary_its_comparison(settings, tmp_path):  # noqa: F811
    # a tenth of the live requests, 300 of them compared: a few seconds, over several of the servers' stats writes
    # (one a second), so `vci status` sees the comparison under way however fast the live traffic goes
    settings.environments["production"].shadow = {"min_requests": 300, "duration": "60s", "fraction": 0.1}
    live = log(settings, tmp_path, Doubler, 2, "live")
    deploy(settings, live.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    assert status(settings, "production").shadow is None
    same = log(settings, tmp_path, Doubler, 2, "same")
    staged = deploy(settings, same.id, "staging")
    seen = []
    with LiveTraffic(settings):
        watcher = threading.Thread(target=lambda: seen.append(watch(settings)), daemon=True)
        watcher.start()
        done = promote(settings, "staging", "production", strategy="shadow", timeout=60)
        watcher.join(10)
    assert done["outcome"] == "succeeded", done
    running, pages = seen[0]
    assert running["release_id"] == done["release_id"] and running["candidate"] == same.id
    for page in pages.values():  # the web app shows it as status does, and not as a canary
        assert re.search(rf"shadow {same.id}: \d+ compared, 0 disagreed \(0\.0 %\)", page), page
        assert "Canary in progress" not in page
    assert running["compared"] > 0 and running["disagreed"] == 0 and running["disagreement_rate"] == 0.0
    assert running["live_latency_ms"] > 0 and running["shadow_latency_ms"] > 0
    assert status(settings, "production").shadow is None  # over: nothing shown
    summary = done["shadow"]
    assert summary["live_latency_ms"] > 0 and summary["shadow_p90_ms"] > 0 and summary["compared"] >= 300
    assert staged.run_id == same.id


def test_the_promote_commands_summary_shows_the_refusal_and_its_comparison(settings, tmp_path):  # noqa: F811
    (tmp_path / "vci.yaml").write_text(
        yaml.safe_dump(
            {
                "store": str(tmp_path / "store"),
                "project": "demo",
                "environments": {"production": {"shadow": {"min_requests": 5, "duration": "1s"}}},
            }
        )
    )
    deploy(settings, log(settings, tmp_path, Doubler, 2, "live").id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    deploy(settings, log(settings, tmp_path, Doubler, 2, "quiet").id, "staging")
    digest = status(settings, "staging").digest
    command = [sys.executable, "-m", "vci", "promote", "--digest", digest, "--strategy", "shadow"]
    text = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert text.returncode == 13, text.stderr  # DeployError: not promoted
    assert "the candidate was not promoted: shadow refused: only 0 of the 5" in text.stderr
    assert text.stdout.splitlines()[-1] == (
        "shadow: 0 compared, 0 disagreed (-), 0 failed to reach the shadow, 0 dropped; latency live -, shadow -"
    )


def test_the_github_job_summary_shows_a_shadow_promotions_comparison():
    from vci.ci.github import summary_markdown

    shadow = {"compared": 120, "disagreed": 12, "disagreement_rate": 0.1, "live_latency_ms": 1.5, "shadow_p90_ms": None}
    text = summary_markdown("promote", {"outcome": "rolled-back", "strategy": "shadow", "shadow": shadow})
    assert "| compared | 120 |\n| disagreed | 12 |\n| disagreement rate | 0.1 |" in text
    assert "| live latency ms | 1.5 |" in text and "shadow p90" not in text
