"""`vci ui` on the command line: a bad token or a taken port is one clear line; `vci --help` imports no Flask."""

import os
import socket
import subprocess
import sys


def vci(*args, env=None, timeout=30):
    argv = [sys.executable, "-m", "vci", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_short_token_is_refused_before_the_app_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = vci("ui", "--actions", "--port", "0", env={**os.environ, "VCI_UI_TOKEN": "short"})
    assert done.returncode == 3 and "VCI_UI_TOKEN is 5 characters long" in done.stderr
    assert "Traceback" not in done.stderr and "short" not in done.stderr.replace("is 5 characters", "")


def test_a_taken_port_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = vci("ui", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 2 and "cannot listen on 127.0.0.1:" in done.stderr and "Traceback" not in done.stderr


def test_vci_help_imports_no_web_framework():
    code = "import sys, vci.cli.main as m; m.cli.main(['--help'], standalone_mode=False); print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'click'" in loaded and "'flask'" not in loaded and "'jinja2'" not in loaded and "'werkzeug'" not in loaded


def test_a_generated_token_is_printed_once_and_other_host_names_are_refused(tmp_path):
    import requests

    env = {k: v for k, v in os.environ.items() if k != "VCI_UI_TOKEN"}
    argv = [sys.executable, "-m", "vci", "ui", "--actions", "--port", "0"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        serving, sign_in = proc.stderr.readline(), proc.stderr.readline()
        assert "actions on" in serving and "/login?token=" in sign_in
        url = sign_in.split("sign in to act: ", 1)[1].strip()
        assert len(url.rsplit("=", 1)[1]) >= 32
        answer = requests.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and "HttpOnly" in answer.headers["Set-Cookie"]
        wrong = requests.get(url[:-1] + ("A" if url[-1] != "A" else "B"), allow_redirects=False, timeout=10)
        assert wrong.status_code == 401
        port = url.split(":")[2].split("/")[0]
        assert requests.get(f"http://localhost:{port}/", timeout=10).status_code == 200
        rebound = requests.get(f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"}, timeout=10)
        assert rebound.status_code == 403 and "not evil.example" in rebound.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
