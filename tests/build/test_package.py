"""Packaging against real components: a distribution registry, skopeo; reproducible and layer-wise pushes."""

import json
import subprocess
import sys

import pytest

from registry import blob_uploads
from vci.build import Options
from vci.build.package import package, plan
from vci.errors import NotFoundError, RegistryError, RequirementError, UsageError

from .conftest import env_without_debug, log_scaler


def skopeo(*args):
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_push_agrees_with_skopeo(settings, tmp_path, scratch_base, registry):
    run = log_scaler(settings, tmp_path, "2")
    result = package(settings, run.id, Options(base=scratch_base, push=[f"{registry.host}/ml/scaler"]))
    ref = f"docker://{registry.host}/ml/scaler@{result['digest']}"
    inspected = skopeo("inspect", "--tls-verify=false", ref)
    assert inspected["Digest"] == result["digest"]
    assert inspected["Layers"] == [layer["digest"] for layer in result["layers"]]
    assert inspected["Labels"]["vci.run-id"] == run.id
    assert inspected["Labels"]["vci.model-digest"] == run.version
    config = skopeo("inspect", "--tls-verify=false", "--config", ref)["config"]
    assert config["User"] == "65532" and config["Entrypoint"] == ["python3", "-m", "vci.serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert json.loads(env["VCI_RUN_MANIFEST"])["id"] == run.id
    tagged = skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/ml/scaler:{run.id}")
    assert tagged["Digest"] == result["digest"]


def test_same_run_same_digest_and_check_reproducible(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "3")
    first = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "a")))
    second = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "b")), check_reproducible=True)
    assert first["digest"] == second["digest"] and second["reproducible"] is True
    assert skopeo("inspect", f"oci:{tmp_path / 'a'}:{run.id}")["Digest"] == first["digest"]


def test_weights_only_change_uploads_exactly_one_layer(settings, tmp_path, scratch_base, registry):
    repo = f"{registry.host}/ml/weights"
    v1 = package(settings, log_scaler(settings, tmp_path, "4").id, Options(base=scratch_base, push=[repo]))
    mark = registry.mark()
    v2 = package(settings, log_scaler(settings, tmp_path, "5").id, Options(base=scratch_base, push=[repo]))
    changed = [
        new["digest"] for new, old in zip(v2["layers"], v1["layers"], strict=True) if new["digest"] != old["digest"]
    ]
    assert [layer["name"] for layer in v2["layers"] if layer["digest"] in changed] == ["artifact factor"]
    config_digest = v2["manifest"]["config"]["digest"]
    uploaded = {
        r.uri.split("digest=")[1].split("&")[0]
        for r in blob_uploads(registry.requests_since(mark))
        if "digest=" in r.uri
    }
    assert uploaded - {config_digest} == set(changed)
    assert v2["outputs"]["push"][0]["uploaded"] == changed + [config_digest]


def test_layout_tar_and_dockerfile_outputs(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "6")
    result = package(
        settings,
        run.id,
        Options(
            base=scratch_base,
            layout=str(tmp_path / "layout"),
            tar=str(tmp_path / "image.tar"),
            dockerfile=str(tmp_path / "ctx"),
        ),
    )
    archived = skopeo("inspect", f"docker-archive:{tmp_path / 'image.tar'}")
    assert archived["Labels"]["vci.run-id"] == run.id  # docker-archive lists diff_ids, not blob digests
    assert len(archived["Layers"]) == len(result["layers"])
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert "USER 65532" in dockerfile and 'ENTRYPOINT ["python3", "-m", "vci.serve"]' in dockerfile
    blobs = [r["digest"].split(":")[1] for r in [run.manifest["model"], run.manifest["artifacts"]["factor"]]]
    for hexd in blobs:
        assert (tmp_path / "ctx" / "model" / "blobs" / "sha256" / hexd).is_file()
        assert f"model/blobs/sha256/{hexd}" in dockerfile
    assert (tmp_path / "ctx" / "runtime" / "vci" / "serve" / "__main__.py").is_file()


def test_dry_run_plan_builds_nothing(settings, tmp_path, scratch_base, registry):
    repo = f"{registry.host}/ml/plan"
    package(settings, log_scaler(settings, tmp_path, "7").id, Options(base=scratch_base, push=[repo]))
    run = log_scaler(settings, tmp_path, "7.5")
    before = plan(settings, run.id, Options(base=scratch_base, push=[repo]))
    states = {row["name"]: row["state"] for row in before["layers"]}
    assert states["artifact factor"] == "to-build"  # new weights: nothing built yet
    assert states["model"] == "pushed" and states["runtime"] == "pushed"  # same class, same vci
    package(settings, run.id, Options(base=scratch_base, push=[repo]))
    after = plan(settings, run.id, Options(base=scratch_base, push=[repo]))
    assert {row["name"]: row["state"] for row in after["layers"]}["artifact factor"] == "pushed"


def test_bad_inputs(settings, tmp_path, scratch_base):
    with pytest.raises(NotFoundError):
        package(settings, "20200101-000000-abcd", Options(base=scratch_base))
    run = log_scaler(settings, tmp_path, "8")
    with pytest.raises(RegistryError, match="127.0.0.1:1"):
        package(settings, run.id, Options(base=scratch_base, push=["127.0.0.1:1/ml/x"]))
    with pytest.raises(UsageError):
        package(settings, run.id, Options(base=scratch_base, push=["Registry:5000/UPPER/Case"]))
    missing = log_scaler(settings, tmp_path, "9", requirements=["vci-test-no-such-package==1.0"])
    with pytest.raises(RequirementError, match="no wheel of vci-test-no-such-package"):
        package(settings, missing.id, Options(base=scratch_base, layout=str(tmp_path / "x")))


def test_cli_package_json_and_refs_file(settings, tmp_path, scratch_base, registry):
    run = log_scaler(settings, tmp_path, "10")
    env = {**env_without_debug(), "VCI_STORE": settings.store, "VCI_CACHE_DIR": str(settings_cache(settings))}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vci",
            "package",
            run.id,
            "--base",
            scratch_base,
            "--push",
            f"{registry.host}/ml/cli",
            "--refs-file",
            str(tmp_path / "ref.txt"),
            "-o",
            "json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["image"] == f"{registry.host}/ml/cli@{result['digest']}"
    assert (tmp_path / "ref.txt").read_text().strip() == result["image"]
    bad = subprocess.run(
        [sys.executable, "-m", "vci", "package", "20200101-000000-abcd", "--base", scratch_base],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 6 and "Traceback" not in bad.stderr


def settings_cache(settings):
    import os

    return os.environ["VCI_CACHE_DIR"]
