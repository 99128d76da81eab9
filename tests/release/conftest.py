"""Fixtures for release tests: settings on a local store, runs of a model whose behaviour an artifact sets."""

import json

import pytest

import vci
from vci.config import load_settings
from vci.deploy import undeploy
from vci.errors import NotFoundError


class Tunable:
    """Multiplies by ``factor``; ``delay`` seconds per call, ``fail`` (500s) and ``fail_after`` N calls come
    from its artifact (so a release can pass the smoke test and still break a canary rule)."""

    def __init__(self, artifacts):
        self.config = json.loads(open(artifacts["config"]).read())

    def predict(self, data):
        import time

        if self.config.get("delay"):
            time.sleep(self.config["delay"])
        self.calls = getattr(self, "calls", 0) + 1
        if self.config.get("fail") or self.calls > self.config.get("fail_after", float("inf")):
            raise RuntimeError("failing on purpose")
        return [x * self.config["factor"] for x in data]

    def model_test(self):
        if self.config.get("broken"):
            raise RuntimeError("self-test failed on purpose")


def release_settings(tmp_path, environments=None, store=None):
    return load_settings(
        {"store": store or str(tmp_path / "store"), "project": "demo", "environments": environments or {}},
        cwd=tmp_path,
        environ={},
    )


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    for name in ("GITHUB_ACTIONS", "GITHUB_RUN_ID", "BUILD_URL", "JENKINS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    s = release_settings(tmp_path)
    yield s
    stop_all(s)


def stop_all(settings):
    for env in ("staging", "production", "staging-canary", "production-canary"):
        try:
            undeploy(settings, env) if "canary" not in env else _stop_canary(settings, env)
        except NotFoundError:
            pass


def _stop_canary(settings, name):
    from vci.deploy.local import LocalTarget

    LocalTarget(settings, settings.environment(name.removesuffix("-canary"))).remove_canary()


def make_run(
    settings,
    tmp_path,
    factor=2,
    *,
    delay=0.0,
    fail=False,
    fail_after=None,
    broken=False,
    examples=True,
    expected=True,
):
    path = tmp_path / f"config-{factor}-{delay}-{fail}-{fail_after}-{broken}.json"
    config = {"factor": factor, "delay": delay, "fail": fail, "broken": broken}
    if fail_after is not None:
        config["fail_after"] = fail_after
    path.write_text(json.dumps(config))
    run = vci.init("demo", settings=settings)
    run.log_artifact("config", path)
    run.log_model(Tunable, artifacts=["config"])
    if examples:
        inputs = [[1, 2], [3], [0.5, 4, 5]]
        run.log_examples(inputs, [[x * factor for x in i] for i in inputs] if expected else None)
    run.commit()
    return run
