"""``vci package --builder docker`` against a real dockerd: build, push, run; ``docker load`` of the daemonless tar.

One dockerd serves the session (tests/dockerd.py); images run on the host network with their own VCI_PORT.
The base is the Debian+python3 layout of scripts/build-base-image.sh, so the images really serve.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request

import pytest

from dockerd import dockerd  # noqa: F401  (the session fixture)
from images import base_image_layout
from registry import free_port
from vci.build import Options
from vci.build.docker import LayerSink, docker_available, read_saved_image
from vci.build.package import package
from vci.oci.layout import read_layout

from .conftest import env_without_debug, log_scaler
from .models import YamlScaler

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def debian_base():
    return f"oci:{base_image_layout()}:base"


def vci_cli(*args, env: dict, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def cli_env(settings, docker_host: str) -> dict:
    return {
        **env_without_debug(),
        "VCI_STORE": settings.store,
        "VCI_CACHE_DIR": os.environ["VCI_CACHE_DIR"],
        "DOCKER_HOST": docker_host,
    }


def skopeo_inspect(ref: str) -> dict:
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", ref], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def serve_and_predict(daemon, image: str) -> dict:
    """Run ``image`` in dockerd (host network, own port); wait for /readyz 200; the answer to [1, 2]."""
    port = free_port()
    box = daemon.run(image, port)
    try:
        wait_ready(box, f"http://127.0.0.1:{port}/readyz")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=b"[1, 2]", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            return json.loads(resp.read())
    finally:
        box.remove(force=True)


def wait_ready(box, url: str, timeout: float = 60) -> None:
    """Poll ``url`` until 200; fail at once, with the container's log, if the container exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        box.reload()
        if box.status == "exited":
            break
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready ({box.status}): {box.logs().decode(errors='replace')[-2000:]}")


def test_docker_builder_pushes_an_image_that_runs(settings, tmp_path, registry, dockerd, debian_base):  # noqa: F811
    run = log_scaler(settings, tmp_path, "factor: 3", cls=YamlScaler, requirements=["PyYAML"])
    repo = f"{registry.host}/ml/docker"
    out = vci_cli(
        "package",
        run.id,
        "--builder",
        "docker",
        "--base",
        debian_base,
        "--push",
        repo,
        "-o",
        "json",
        env=cli_env(settings, dockerd.host),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["image"] == f"{repo}@{result['digest']}"
    inspected = skopeo_inspect(f"docker://{result['image']}")
    assert inspected["Digest"] == result["digest"]
    assert inspected["DockerVersion"], "built by the daemon, so its config names the engine"
    assert inspected["Labels"]["vci.run-id"] == run.id and inspected["Labels"]["vci.model-digest"] == run.version
    base = read_layout(base_image_layout(), "base")
    assert inspected["Layers"][0] == base.layers[0].digest  # the base blob is reused, not recompressed
    assert len(inspected["Layers"]) > len(base.layers) + 2  # deps, runtime, model, artifact, manifest
    with dockerd.client() as client:
        client.images.pull(result["image"])  # 127.0.0.0/8 registries are plain-HTTP for dockerd by default
    assert serve_and_predict(dockerd, result["image"]) == {"scaled": [3, 6], "uid": 65532}


def test_daemonless_tar_loads_into_docker_and_runs(settings, tmp_path, dockerd, debian_base):  # noqa: F811
    run = log_scaler(settings, tmp_path, "factor: 5", cls=YamlScaler, requirements=["PyYAML"])
    result = package(settings, run.id, Options(base=debian_base, tar=str(tmp_path / "image.tar")))
    load = subprocess.run(
        ["docker", "load", "-i", str(tmp_path / "image.tar")],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": dockerd.host},
        timeout=300,
    )
    assert load.returncode == 0, load.stderr
    assert f"Loaded image: vci/scaler:{run.id}" in load.stdout
    with dockerd.client() as client:
        loaded = client.images.get(f"vci/scaler:{run.id}")
    assert loaded.id == result["manifest"]["config"]["digest"]  # the very config vci wrote
    assert serve_and_predict(dockerd, f"vci/scaler:{run.id}") == {"scaled": [5, 10], "uid": 65532}


def test_without_a_daemon_docker_fails_cleanly_and_auto_falls_back(settings, tmp_path, debian_base, monkeypatch):
    nowhere = f"unix://{tmp_path / 'no-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", nowhere)
    assert docker_available() is False
    run = log_scaler(settings, tmp_path, "factor: 7")
    env = cli_env(settings, nowhere)
    failed = vci_cli("package", run.id, "--builder", "docker", "--base", debian_base, env=env, cwd=tmp_path)
    assert failed.returncode == 12, failed.stderr
    assert "no Docker Engine is reachable" in failed.stderr and "Traceback" not in failed.stderr
    auto = vci_cli(
        "package",
        run.id,
        "--builder",
        "auto",
        "--base",
        debian_base,
        "--layout",
        str(tmp_path / "a"),
        "-o",
        "json",
        env=env,
        cwd=tmp_path,
    )
    assert auto.returncode == 0, auto.stderr
    assert "building without a daemon" in auto.stderr
    daemonless = package(settings, run.id, Options(base=debian_base, layout=str(tmp_path / "b")))
    assert json.loads(auto.stdout)["digest"] == daemonless["digest"]


def test_docker_available_sees_the_daemon(dockerd, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    assert docker_available() is True


def _tar_bytes(files: dict[str, bytes], links: dict[str, str] = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def test_legacy_save_archive_reuses_known_layers_and_gzips_the_rest(tmp_path):
    """The ``docker save`` format of Docker < 25: plain ``<id>/layer.tar`` members, a shared layer as a link."""
    big = _tar_bytes({"big.bin": os.urandom(3 << 20)})  # over SMALL_MEMBER: streamed, not held in memory
    small = _tar_bytes({"etc/greeting": b"hello"})
    known_sink = LayerSink(tmp_path / "known", level=1)
    known = known_sink.store(io.BytesIO(small))  # as if it came from the base layout
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": [known.diff_id, "sha256:" + hashlib.sha256(big).hexdigest(), known.diff_id],
            },
        }
    ).encode()
    archive = _tar_bytes(
        {
            "a/layer.tar": small,
            "b/layer.tar": big,
            "cfg.json": config,
            "manifest.json": json.dumps(
                [{"Config": "cfg.json", "Layers": ["a/layer.tar", "b/layer.tar", "c/layer.tar"]}]
            ).encode(),
        },
        links={"c/layer.tar": "../a/layer.tar"},
    )
    image = read_saved_image(io.BytesIO(archive), LayerSink(tmp_path / "cache", known=[known]))
    assert [layer.diff_id for layer in image.layers] == json.loads(config)["rootfs"]["diff_ids"]
    assert image.layers[0] == known and image.layers[2] == known
    with gzip.open(image.layers[1].path) as f:
        assert f.read() == big
    again = read_saved_image(io.BytesIO(archive), LayerSink(tmp_path / "cache"))  # found by diff_id now
    assert again.layers[1].digest == image.layers[1].digest and again.layers[1].path == image.layers[1].path
    assert image.manifest["layers"][1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_oci_save_archive_keeps_gzip_layers(settings, tmp_path, debian_base):
    """The ``docker save`` format of Docker 25+ is an OCI layout with manifest.json, as vci's --tar writes it."""
    run = log_scaler(settings, tmp_path, "factor: 9")
    result = package(settings, run.id, Options(base=debian_base, tar=str(tmp_path / "image.tar")))
    with open(tmp_path / "image.tar", "rb") as f:
        image = read_saved_image(f, LayerSink(tmp_path / "cache"))
    assert image.digest == result["digest"]  # gzip blobs kept byte for byte: the same manifest


def test_a_failing_docker_build_is_a_build_error_with_its_log(dockerd, tmp_path):  # noqa: F811
    from vci.build.docker import _build
    from vci.errors import BuildError

    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY not-in-the-context /x\n")
    with dockerd.client() as client, pytest.raises(BuildError) as caught:
        _build(client, tmp_path, "vci-test/failing:1", {})
    assert caught.value.exit_code == 12 and "docker build failed" in caught.value.message
    assert "not-in-the-context" in str(caught.value)
    assert "Step 2/2 : COPY not-in-the-context /x" in caught.value.hint  # the last lines of the build log
