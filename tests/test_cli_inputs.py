"""Bad values on the command line are refused at entry: a one-line usage error naming the option, exit 2.

Each case here once ended in a traceback, hung, or was accepted and did the wrong thing (a negative
``--limit`` dropped the newest run, a NaN ``--timeout`` failed a deploy at once, a file given as
``--layout`` crashed after the image was built).
"""

import json
import os
import subprocess
import sys

import pytest

RUN = "20200101-000000-abcd"
MODEL = """
class Model:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data
"""
JENKINS = ["--url", "http://127.0.0.1:9", "--job", "j"]
SETUP = ["jenkins", "setup", *JENKINS, "--jenkinsfile", "a-file"]
TRIGGER = ["jenkins", "trigger", *JENKINS]
NUMBERS = [
    (["serve", RUN, "--port", "99999"], "--port"),
    (["serve", RUN, "--port", "-1"], "--port"),
    (["serve", RUN, "--port", "65536"], "--port"),
    (["serve", RUN, "--grpc-port", "70000"], "--grpc-port"),
    (["serve", RUN, "--workers", "0"], "--workers"),
    (["serve", RUN, "--workers", "-3"], "--workers"),
    (["runs", "list", "--limit", "-1"], "--limit"),
    (["runs", "list", "--limit", "0"], "--limit"),
    (["history", "--limit", "-1"], "--limit"),
    (["history", "--limit", "0"], "--limit"),
    (["deploy", RUN, "--timeout", "-5"], "--timeout"),
    (["deploy", RUN, "--timeout", "nan"], "--timeout"),
    (["deploy", RUN, "--timeout", "inf", "--dry-run"], "--timeout"),
    (["promote", "--digest", "sha256:" + "a" * 64, "--timeout", "nan"], "--timeout"),
    (["promote", "--digest", "sha256:" + "a" * 64, "--timeout", "-inf"], "--timeout"),
    ([*SETUP, "--timeout", "-5"], "--timeout"),
    ([*SETUP, "--timeout", "0"], "--timeout"),
    ([*TRIGGER, "--timeout", "nan"], "--timeout"),
    ([*TRIGGER, "--build-timeout", "-1"], "--build-timeout"),
    ([*TRIGGER, "--poll-interval", "0"], "--poll-interval"),
    ([*TRIGGER, "--poll-interval", "-1"], "--poll-interval"),
    (["package", RUN, "--compression-level", "0"], "--compression-level"),
    (["predict", "--url", "http://127.0.0.1:9/", "--data", "[1]", "--deadline", "nan"], "--deadline"),
    (["predict", "--url", "http://127.0.0.1:9/", "--data", "[1]", "--deadline", "0"], "--deadline"),
]
PATHS = [
    (["package", RUN, "--layout", "a-file"], "--layout"),
    (["package", RUN, "--emit-dockerfile", "a-file"], "--emit-dockerfile"),
    (["package", RUN, "--tar", "a-dir"], "--tar"),
    (["package", RUN, "--refs-file", "a-dir"], "--refs-file"),
    (["log", "--requirements", "a-dir"], "--requirements"),
    (["log", "--examples", "a-dir"], "--examples"),
    (["test", "--examples", "a-dir"], "--examples"),
    (["log", "--examples", "missing.json"], "--examples"),
    (["promote", "--digest", "sha256:" + "a" * 64, "--examples", "missing.json"], "--examples"),
    ([*SETUP[:-1], "a-dir", "--dry-run"], "--jenkinsfile"),
]
OTHERS = [
    (["jenkins", "setup", "--url", "notaurl", "--job", "j", "--jenkinsfile", "a-file"], "--url"),
    (["jenkins", "trigger", "--url", "ftp://jenkins", "--job", "j"], "--url"),
    (["predict", "--url", "ftp://127.0.0.1:1/", "--data", "[1]"], "--url"),
    (["predict", "--url", "http://127.0.0.1:99999/", "--data", "[1]"], "--url"),
    (["predict", "--url", "http://127.0.0.1:9/", "--data", "[NaN]"], "NaN is not JSON"),
    (["predict", "--url", "http://127.0.0.1:9/", "--data", "[Infinity]"], "Infinity is not JSON"),
]


def vci(args, cwd, **extra):
    env = {**os.environ, "VCI_CACHE_DIR": str(cwd / "cache"), "JENKINS_USER": "u", "JENKINS_TOKEN": "t0k3n-0123"}
    env.pop("VCI_DEBUG", None)
    env.update(extra)
    command = [sys.executable, "-m", "vci", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


CASES = NUMBERS + PATHS + OTHERS


@pytest.mark.parametrize("args, named", CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_bad_value_is_refused_at_entry(tmp_path, args, named):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    try:
        out = vci(args, tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vci {' '.join(args)} was accepted and kept running")
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, out.stderr
    assert named in out.stderr and out.stdout == ""
    assert not list(tmp_path.glob("a-file/*")) and not (tmp_path / "store").exists()  # nothing was done


def test_the_help_shows_each_bound():
    out = subprocess.run(
        [sys.executable, "-m", "vci", "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "0<=x<=65535" in out.stdout and "x>=1" in out.stdout


def test_a_file_where_a_store_or_cache_directory_belongs_is_a_configuration_error(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "model.py").write_text(MODEL)
    out = vci(["runs", "list", "--store", "a-file"], tmp_path)
    assert out.returncode == 3 and "is a file, not a directory" in out.stderr and "Traceback" not in out.stderr
    run_id = json.loads(vci(["log", "--model", "model.py:Model", "-o", "json"], tmp_path).stdout)["run_id"]
    out = vci(["serve", run_id, "--port", "1"], tmp_path, VCI_CACHE_DIR=str(tmp_path / "a-file"))
    assert out.returncode == 3 and "VCI_CACHE_DIR" in out.stderr and "Traceback" not in out.stderr, out.stderr
