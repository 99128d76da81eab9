"""The whole CLI with known secrets set: no output of any command, failing ones and ``--debug`` included,
repeats one of them.

Real components: a moto S3 server for the store (boto3 signs every request with the session token),
a registry with htpasswd auth for the pushes, a local deployment for serve/predict.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from images import scratch_base_layout  # noqa: E402
from registry import RegistryServer  # noqa: E402
from s3server import create_bucket, start_moto  # noqa: E402

SECRETS = {
    "AWS_ACCESS_KEY_ID": "ASIAVCITESTKEYID0001",
    "AWS_SECRET_ACCESS_KEY": "vci-test-aws-secret-access-key-5f1c0e",
    "AWS_SESSION_TOKEN": "vci-test-session-token/IQoJb3JpZ2luX2VjEJr+Zz==",
    "VCI_REGISTRY_PASSWORD": "vci-test-registry-password-9d2b",
    "VCI_TOKEN": "vci-test-model-token-4a7e",
    "JENKINS_TOKEN": "vci-test-jenkins-token-77aa",
}
PUSH_PASSWORD = "vci-test-push-password-31c8"
URL_PASSWORD = "vci-test-url-password-c0de"
WRONG_PASSWORD = "vci-test-wrong-password-e4f2"
RUN_SECRET = "vci-test-run-env-secret-b7b7"
FILE_SECRETS = {"aws_secret_access_key": "vci-test-file-secret-a1a1", "aws_session_token": "vci-test-file-token-b2b2"}
MODEL = """
class Model:
    def __init__(self, artifacts):
        self.factor = float(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A moto S3 store, an authenticating registry and a base layout; the environment every command gets."""
    root = tmp_path_factory.mktemp("secrets")
    server, endpoint = start_moto()
    with RegistryServer(root / "registry", users={"ci": SECRETS["VCI_REGISTRY_PASSWORD"]}) as registry:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VCI_", "GITHUB_"))}
        env.update(SECRETS)
        env.update(
            PYTHONPATH=str(ROOT),
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_ENDPOINT_URL=endpoint,
            VCI_STORE=f"s3://{create_bucket(endpoint, 'secrets')}/vci",
            VCI_CACHE_DIR=str(root / "cache"),
            VCI_REGISTRY_USER="ci",
            JENKINS_USER="ci",
            SETTING=f"postgres://app:{RUN_SECRET}@db:5432/app",
            DB_PASS=RUN_SECRET,
        )
        (root / "model.py").write_text(MODEL)
        (root / "factor.txt").write_text("2")
        yield {"root": root, "env": env, "registry": registry.host, "base": scratch_base_layout(root / "base")}
    server.stop()


def vci(world, *args, env=None):
    command = [sys.executable, "-m", "vci", *args]
    return subprocess.run(
        command, cwd=world["root"], env={**world["env"], **(env or {})}, capture_output=True, text=True, timeout=300
    )


def test_no_output_of_any_command_repeats_a_secret(world):
    reg, base, outputs = world["registry"], world["base"], []

    def run(*args, env=None, ok=True, twice=True):
        for debug in ([], ["--debug"]) if twice else (["--debug"],):
            out = vci(world, *debug, *args, env=env)
            outputs.append((" ".join([*debug, *args]), out))
            assert (out.returncode == 0) == ok, f"vci {' '.join(args)}: {out.stderr[-2000:]}"
        return out

    logged = run("log", "--model", "model.py:Model", "--artifact", "factor=factor.txt", "-o", "json")
    run_id = json.loads(logged.stdout)["run_id"]
    run("runs", "list", "-o", "json")
    run("runs", "show", run_id, "-o", "json")
    run("runs", "show", "20200101-000000-abcd", ok=False)
    run("package", run_id, "--base", base, "--push", f"{reg}/ml/iris", "--insecure", "-o", "json")
    run("package", run_id, "--base", base, "--push", f"ci:{PUSH_PASSWORD}@{reg}/ml/iris", "--insecure", ok=False)
    run("package", run_id, "--base", base, "--push", f"{reg}/ml/iris", "--insecure", "-o", "json", ok=False,
        env={"VCI_REGISTRY_PASSWORD": WRONG_PASSWORD})  # fmt: skip
    run("deploy", run_id, "-o", "json")
    run("status", "-o", "json")
    run("predict", "--data", "[1, 2]", "-o", "json")
    run("predict", "--url", f"http://ci:{URL_PASSWORD}@{reg}/", "--data", "[1]", ok=False)
    run("jenkins", "trigger", "--url", f"http://ci:{URL_PASSWORD}@127.0.0.1:9/", "--job", "j", ok=False)
    run("log", "--model", "model.py:Model", "--artifact", "factor=factor.txt", "--env-var", "DB_PASS", ok=False)
    run("log", "--model", "model.py:Model", "--artifact", "factor=factor.txt", "--env-var", "SETTING", ok=False)
    run("undeploy", "-o", "json", twice=False)
    credentials = world["root"] / "aws-credentials"  # not in the environment: known only to boto3
    credentials.write_text("[default]\naws_access_key_id = ASIAVCITESTKEYID0002\n" + "".join(
        f"{k} = {v}\n" for k, v in FILE_SECRETS.items()
    ))  # fmt: skip
    from_file = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_ACCESS_KEY_ID": "", "AWS_SESSION_TOKEN": ""}
    run("runs", "list", env={**from_file, "AWS_SECRET_ACCESS_KEY": ""})

    secrets = [*SECRETS.values(), PUSH_PASSWORD, URL_PASSWORD, WRONG_PASSWORD, RUN_SECRET, *FILE_SECRETS.values()]
    leaks = [(cmd, s) for cmd, out in outputs for s in secrets if s in out.stdout or s in out.stderr]
    assert not leaks, leaks
    debug_err = "".join(out.stderr for cmd, out in outputs if cmd.startswith("--debug"))
    assert "x-amz-security-token" in debug_err.lower() and "DEBUG" in debug_err  # botocore's dumps were there
    assert "ASIAVCITESTKEYID0002" not in debug_err  # the key id of the file's credentials: it signed requests
    assert "carries credentials" in "".join(out.stderr for _, out in outputs)
