"""The app over real local deployments: pages show what `vci status`/`history` show; actions go through
the token, CSRF and same-origin checks, the library's gates and the ledger."""

import dataclasses
import re

from tests.ui.conftest import TOKEN, app_client, signed_in
from vci.deploy import deployed_model, status
from vci.ledger import Ledger
from vci.release.rollback import history
from vci.ui.guard import CSP
from vci.ui.pages import PAGE

ORIGIN = "http://localhost"  # the test client's host


def promote_form(settings, csrf, **changes):
    live = status(settings, "production")
    form = {
        "csrf": csrf,
        "source": "staging",
        "destination": "production",
        "digest": status(settings, "staging").digest,
        "strategy": "direct",
        "actor": "alice",
        "approver": "bob",
        "seen": live.release_id or "",
    }
    return {**form, **changes}


def test_board_shows_every_environment_with_its_digests_and_release(released):
    settings, v1, v2 = released
    page = app_client(settings).get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CSP
    staging = re.search(r'<tr id="env-staging".*?</tr>', text, re.S).group(0)
    production = re.search(r'<tr id="env-production".*?</tr>', text, re.S).group(0)
    assert v2.version in staging and v2.id in staging and "ready" in staging
    assert v1.version in production and v1.id in production and "carol" in production  # the approver
    assert "<script" not in text and " style=" not in text


def test_timeline_pages_and_diff(released):
    settings, v1, v2 = released
    client = app_client(settings)
    text = client.get("/env/staging").get_data(as_text=True)
    newer, older = re.findall(r'id="release-(r[0-9-a-f]+)"', text)
    diff = client.get(f"/diff?a=staging/{older}&b=staging/{newer}").get_data(as_text=True)
    artifacts = re.search(r'id="diff-artifacts".*?</table>', diff, re.S).group(0)
    assert re.search(r'<tr class="changed"><td>config</td>', artifacts)
    assert re.search(r'<tr class="same"><td>\(model class\)</td>', artifacts)
    assert client.get("/diff?a=staging/r1&b=staging/" + newer).status_code == 404
    run_page = client.get(f"/runs/{v1.id}").get_data(as_text=True)
    assert "production" in run_page and "staging" in run_page and "config" in run_page


def test_read_only_app_refuses_actions_and_has_no_forms(released):
    settings, _, v2 = released
    client = app_client(settings, actions=False)
    assert 'action="/promote"' not in client.get("/").get_data(as_text=True)
    refused = client.post("/promote", data=promote_form(settings, "x"), headers={"Origin": ORIGIN})
    assert refused.status_code == 403 and "read-only" in refused.get_data(as_text=True)
    assert client.get(f"/login?token={TOKEN}").status_code == 403
    assert status(settings, "production").digest != v2.version


def test_promotion_through_the_app_is_recorded_with_actor_and_approver(released):
    settings, _, v2 = released
    client = app_client(settings)
    csrf = signed_in(client)
    assert client.get("/env/production").get_data(as_text=True).count('id="release-') == 1  # listed now
    done = client.post("/promote", data=promote_form(settings, csrf), headers={"Origin": ORIGIN})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert status(settings, "production").digest == v2.version
    newest = history(settings, "production", 1)["releases"][0]
    assert (newest["who"], newest["approver"], newest["outcome"]) == ("alice", "bob", "succeeded")
    timeline = client.get("/env/production").get_data(as_text=True)  # at once, not after the listing's TTL
    assert f'id="release-{newest["release_id"]}"' in timeline


def test_refused_actions_change_nothing(released):
    settings, v1, _ = released
    client = app_client(settings)
    csrf = signed_in(client)
    before = history(settings, "production")["releases"]
    cases = [
        (app_client(settings), promote_form(settings, csrf), {"Origin": ORIGIN}, 401, "sign in"),  # no session
        (client, promote_form(settings, "0" * 64), {"Origin": ORIGIN}, 403, "CSRF"),
        (client, promote_form(settings, csrf), {"Origin": "http://evil.example"}, 403, "another origin"),
        (client, promote_form(settings, csrf), {"Referer": "http://evil.example/x"}, 403, "another origin"),
        (client, promote_form(settings, csrf), {}, 403, "another origin"),  # neither Origin nor Referer
        (client, promote_form(settings, csrf, approver="Alice"), {"Origin": ORIGIN}, 400, "someone else"),
        (client, promote_form(settings, csrf, approver=""), {"Origin": ORIGIN}, 400, "requires an approval"),
        (client, promote_form(settings, csrf, actor=""), {"Origin": ORIGIN}, 400, "say who you are"),
    ]
    for who, form, headers, code, message in cases:
        answer = who.post("/promote", data=form, headers=headers)
        assert (answer.status_code, message in answer.get_data(as_text=True)) == (code, True), (headers, form)
    wrong_bearer = app_client(settings).post(
        "/promote", data=promote_form(settings, ""), headers={"Authorization": "Bearer nope-nope-nope"}
    )
    assert wrong_bearer.status_code == 401
    assert status(settings, "production").digest == v1.version
    assert history(settings, "production")["releases"] == before


def test_the_second_of_two_promotions_from_the_same_page_is_told_what_changed(released):
    settings, _, v2 = released
    first, second = app_client(settings), app_client(settings)  # two tabs, two people
    forms = [promote_form(settings, signed_in(c)) for c in (first, second)]  # both loaded the same page
    assert first.post("/promote", data=forms[0], headers={"Origin": ORIGIN}).status_code == 200
    loser = second.post("/promote", data=forms[1], headers={"Origin": ORIGIN})
    text = loser.get_data(as_text=True)
    assert loser.status_code == 409 and "changed since this page was loaded" in text and "nothing was done" in text
    assert [r["outcome"] for r in history(settings, "production")["releases"]] == ["succeeded", "succeeded"]
    assert status(settings, "production").digest == v2.version


def test_rollback_through_the_app_brings_back_the_earlier_model(released):
    settings, v1, _ = released
    client = app_client(settings)
    csrf = signed_in(client)
    assert client.post("/promote", data=promote_form(settings, csrf), headers={"Origin": ORIGIN}).status_code == 200
    assert deployed_model(settings, "production").predict([1, 2]) == [3, 6]
    first_release = history(settings, "production")["releases"][-1]["release_id"]
    form = {"csrf": csrf, "env": "production", "to": first_release, "actor": "dave"}
    form["seen"] = status(settings, "production").release_id
    back = client.post("/rollback", data=form, headers={"Origin": ORIGIN})
    assert back.status_code == 200, back.get_data(as_text=True)
    assert deployed_model(settings, "production").predict([1, 2]) == [2, 4]  # v1 multiplies by 2
    newest = history(settings, "production", 1)["releases"][0]
    assert (newest["action"], newest["who"], newest["digest"]) == ("rollback", "dave", v1.version)


def test_try_it_predicts_on_staging_only(released):
    settings, _, _ = released
    client = app_client(settings)
    csrf = signed_in(client)
    form = client.get("/env/staging/try").get_data(as_text=True)
    assert "[1, 2]" in form  # the first logged example fills the form
    answer = client.post("/env/staging/predict", data={"csrf": csrf, "data": "[1, 2]"}, headers={"Origin": ORIGIN})
    assert answer.status_code == 200 and "[3, 6]" in answer.get_data(as_text=True)
    bad = client.post("/env/staging/predict", data={"csrf": csrf, "data": "[NaN]"}, headers={"Origin": ORIGIN})
    assert bad.status_code == 400 and "not strict JSON" in bad.get_data(as_text=True)
    assert client.get("/env/production/try").status_code == 403
    assert client.post("/env/production/predict", data={"csrf": csrf, "data": "[1]"}).status_code == 403


def test_live_charts_are_svg_from_the_servers_metrics(released):
    settings, _, _ = released
    client = app_client(settings)
    client.get("/env/staging/live")
    deployed_model(settings, "staging").predict([1])
    deployed_model(settings, "staging").predict([3])
    import time

    time.sleep(1.1)  # the sampler scrapes an environment at most once a second
    page = client.get("/env/staging/live").get_data(as_text=True)
    assert page.count("<svg") == 5 + 3 and "<polyline" in page and "no data yet" in page  # batching is off
    assert re.search(r'class="chart-now">now [0-9.e+-]+</text>', page)
    drift = re.search(r'<div class="charts" id="drift">(.*?)</div>', page, re.S).group(1)
    first = re.search(r'<svg[^>]*aria-label="drift: 0 \(.*?</svg>', drift).group(0)  # the examples' features
    assert 'class="band"' in first and "now 2</text>" in first  # the mean of 1 and 3, between them
    assert drift.count('aria-label="drift: ') == 3 and drift.count("no data yet") == 2  # features 1, 2: unseen


def test_a_promotion_racing_another_release_shows_the_ledger_s_conflict(released):
    settings, v1, _ = released
    client = app_client(settings)
    form = promote_form(settings, signed_in(client))
    Ledger.for_settings(settings).claim("production", holder="promote by a CI job")  # in progress elsewhere
    lost = client.post("/promote", data=form, headers={"Origin": ORIGIN})
    text = lost.get_data(as_text=True)
    assert lost.status_code == 409 and "another release of &#39;production&#39; is in progress" in text
    assert "promote by a CI job" in text and status(settings, "production").digest == v1.version


def test_warm_reads_every_first_timeline_page_so_the_first_view_lists_nothing(released, monkeypatch):
    settings, _, _ = released
    app = app_client(settings).application
    store = Ledger.for_settings(settings).store
    listed = []
    original = store.list_keys
    monkeypatch.setattr(
        store, "list_keys", lambda prefix, **bounds: listed.append(prefix) or original(prefix, **bounds)
    )
    app.config["catalog"].warm().join(10)
    assert sorted(set(listed)) == [
        "ledger/production/",
        "ledger/production/newest-first/",
        "ledger/staging/",
        "ledger/staging/newest-first/",
    ]
    count = len(listed)
    page = app.test_client().get("/env/staging").get_data(as_text=True)
    assert page.count('id="release-') == 2 and len(listed) == count  # served from the warm listing


def test_older_pages_follow_the_second_the_page_before_ended_at(released):
    settings, _, _ = released
    ledger = Ledger.for_settings(settings)
    newest = ledger.newest("staging", None)
    template = newest[-1]
    for n in range(PAGE + 5):  # older than the real releases: a full page, then the rest
        ledger.append(dataclasses.replace(template, release_id=f"r20250101-1000{n:02d}-aaaa", timestamp=float(n)))
    client = app_client(settings)
    first = client.get("/env/staging").get_data(as_text=True)
    shown = re.findall(r'id="release-(r[0-9a-f-]+)"', first)
    assert shown[:2] == [r.release_id for r in newest] and len(shown) == PAGE
    older = re.search(r'href="(/env/staging\?[^"]+)" rel="next">older', first).group(1).replace("&amp;", "&")
    assert "before=r20250101-100007" in older and "page=2" in older
    second = client.get(older).get_data(as_text=True)
    rest = re.findall(r'id="release-(r[0-9a-f-]+)"', second)
    assert rest == [f"r20250101-1000{n:02d}-aaaa" for n in range(6, -1, -1)] and 'rel="next"' not in second
    assert "page 2" in second and client.get("/env/staging?before=r1%27").status_code == 400
