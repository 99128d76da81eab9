"""Packaging against real components: a distribution registry, skopeo; reproducible and layer-wise pushes."""

import gzip
import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from registry import blob_uploads
from vci.build import Options
from vci.build.package import package, plan
from vci.build.plan import python_of
from vci.errors import NotFoundError, RegistryError, RequirementError, UsageError
from vci.oci.layout import read_layout

from .conftest import env_without_debug, log_scaler
from .models import YamlScaler


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


def test_each_compression_level_keeps_its_own_cached_layers(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "11")
    six = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "six"), level=6))
    one = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "one"), level=1))
    assert six["digest"] != one["digest"]
    for level, built in ((6, six), (1, one)):
        rows = plan(settings, run.id, Options(base=scratch_base, level=level))["layers"]  # the scratch base has none
        assert [(r["state"], r["digest"]) for r in rows] == [("cached", layer["digest"]) for layer in built["layers"]]


def test_emit_dockerfile_alone_builds_no_layer_and_names_only_vcis_labels(
    settings, tmp_path, scratch_base, monkeypatch
):
    run = log_scaler(settings, tmp_path, "12")
    result = package(settings, run.id, Options(base=scratch_base, dockerfile=str(tmp_path / "ctx")))
    assert result["digest"] is None and result["outputs"] == {"dockerfile": str(tmp_path / "ctx" / "Dockerfile")}
    built = {row["name"]: row["state"] for row in plan(settings, run.id, Options(base=scratch_base))["layers"]}
    assert built["artifact factor"] == "to-build"  # nothing was compressed (the model layer: other tests')
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=python:{python_of(run.manifest)}-slim" in dockerfile  # a layout cannot be named
    assert '"vci.python"' not in dockerfile  # the scratch base's own label: another base brings its own
    assert f'"vci.run-id"="{run.id}"' in dockerfile
    monkeypatch.setenv("VCI_BASE_IMAGE", "registry.example/ml/python:3-custom")
    package(settings, run.id, Options(dockerfile=str(tmp_path / "ctx2")))
    assert "ARG BASE_IMAGE=registry.example/ml/python:3-custom" in (tmp_path / "ctx2" / "Dockerfile").read_text()


def test_check_reproducible_checks_the_builder_it_can_check(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "13")
    with pytest.raises(UsageError, match="--check-reproducible checks the daemonless build"):
        package(settings, run.id, Options(base=scratch_base, builder="docker"), check_reproducible=True)
    auto = package(
        settings,
        run.id,
        Options(base=scratch_base, builder="auto", layout=str(tmp_path / "a")),
        check_reproducible=True,
    )
    daemonless = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "b")))
    assert auto["reproducible"] is True and auto["digest"] == daemonless["digest"]


def vci_cli(args: list[str], settings, cache, seed: int, cwd) -> dict:
    env = {**env_without_debug(), "VCI_STORE": settings.store, "VCI_CACHE_DIR": str(cache), "PYTHONHASHSEED": str(seed)}
    out = subprocess.run(
        [sys.executable, "-m", "vci", *args, "-o", "json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_two_builds_from_scratch_in_two_processes_give_one_digest_with_bytecode(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "factor: 2", cls=YamlScaler, requirements=["PyYAML"])
    digests = []
    for seed in (1, 2):
        layout = tmp_path / f"image-{seed}"
        args = ["package", run.id, "--base", scratch_base, "--layout", str(layout)]
        digests.append(vci_cli(args, settings, tmp_path / f"cache-{seed}", seed, tmp_path)["digest"])
    assert digests[0] == digests[1]
    image = read_layout(tmp_path / "image-1", run.id)
    names = {}
    for layer in image.layers:
        with gzip.open(layer.path) as raw, tarfile.open(fileobj=raw) as tar:
            names.update({m.name: tar.extractfile(m).read(16) for m in tar if m.name.endswith(".pyc")})
    tag = sys.implementation.cache_tag
    for module in (
        f"opt/vci/site-packages/yaml/__pycache__/__init__.{tag}.pyc",
        f"opt/vci/runtime/vci/serve/__pycache__/__main__.{tag}.pyc",
    ):
        header = names[module]
        assert (
            header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") == 0b01
        )  # unchecked hash


def test_code_and_weights_logged_again_from_new_processes_change_one_layer(settings, tmp_path, scratch_base, registry):
    models = Path(__file__).with_name("models.py")
    (tmp_path / "a.txt").write_text("2")
    (tmp_path / "b.txt").write_text("3")
    repo, images = f"{registry.host}/ml/relogged", []
    for seed, weights in ((1, "a.txt"), (2, "a.txt"), (3, "b.txt")):
        args = [
            "log",
            "--model",
            f"{models}:Scaler",
            "--artifact",
            f"factor={tmp_path / weights}",
            "--project",
            "scaler",
        ]
        run_id = vci_cli(args, settings, tmp_path / "cache", seed, tmp_path)["run_id"]
        images.append(package(settings, run_id, Options(base=scratch_base, push=[repo])))
    same, weights_only = images[1]["layers"], images[2]["layers"]
    assert [layer["digest"] for layer in same] == [layer["digest"] for layer in images[0]["layers"]]
    assert [new["name"] for new, old in zip(weights_only, same, strict=True) if new["digest"] != old["digest"]] == [
        "artifact factor"
    ]
    pushed = images[2]["outputs"]["push"][0]["uploaded"]
    assert pushed == [weights_only[-1]["digest"], images[2]["manifest"]["config"]["digest"]]
