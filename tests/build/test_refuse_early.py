"""A tag or repository the registry would refuse stops ``vci package`` before a layer is built or a blob sent."""

import subprocess
import sys

import pytest

from vci.build import Options
from vci.errors import UsageError

from .conftest import ROOT, env_without_debug, log_scaler

BAD_TAGS = ["bad tag", "-x", ".x", "x" * 129, "v1\n", "ü1", "v1/2"]
BAD_REPOSITORIES = [
    "{host}/ML/Iris",
    "{host}/ml//iris",
    "{host}/ml/iris:tag",
    "{host}/-ml/iris",
    "https://{host}/ml/iris",
]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_options_refuse_a_bad_tag(tag):
    with pytest.raises(UsageError, match="bad tag"):
        Options(push=["registry.example/ml/iris"], tag=tag)


def package(run_id, *args, cwd, env):
    command = [sys.executable, "-m", "vci", "package", run_id, *args, "--insecure"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_nothing_is_sent_for_a_bad_tag_or_repository(settings, tmp_path, registry, scratch_base, layer_cache):
    run = log_scaler(settings, tmp_path, "2")
    env = {**env_without_debug(), "VCI_CACHE_DIR": str(layer_cache), "VCI_STORE": str(tmp_path / "store")}
    env["PYTHONPATH"] = str(ROOT)
    cases = [["--tag", tag] for tag in BAD_TAGS] + [["--push", r.format(host=registry.host)] for r in BAD_REPOSITORIES]
    for case in cases:  # a good repository first: nothing may reach it either
        mark = registry.mark()
        out = package(run.id, "--base", scratch_base, "--push", f"{registry.host}/ml/ok", *case, cwd=tmp_path, env=env)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (case, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        sent = [r for r in registry.requests_since(mark) if r.method in ("POST", "PUT", "PATCH")]
        assert not sent, f"{case}: {sent}"


def test_a_password_in_a_push_reference_is_refused_and_never_repeated(settings, tmp_path, registry, scratch_base):
    run = log_scaler(settings, tmp_path, "3")
    env = {**env_without_debug(), "VCI_STORE": str(tmp_path / "store"), "PYTHONPATH": str(ROOT)}
    for reference in [f"alice:S3cretPw@{registry.host}/ml/iris", f"https://alice:S3c/retPw@{registry.host}/ml/x"]:
        for output in ("text", "json"):
            out = package(run.id, "--base", scratch_base, "--push", reference, "-o", output, cwd=tmp_path, env=env)
            assert out.returncode == 2 and "carries credentials" in out.stderr, out.stderr
            assert "S3c" not in out.stderr + out.stdout and f"***@{registry.host}" in out.stderr
