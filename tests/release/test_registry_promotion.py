"""Promotion copies an image by digest: between two repositories of a real registry by blob mounts (a few
kilobytes for a 50 MB image), and between two registries by streaming, the digest preserved both times."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vci  # noqa: E402
from registry import RegistryServer, blob_mounts, blob_uploads  # noqa: E402
from vci.build import Options  # noqa: E402
from vci.build.package import package  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.errors import ConfigError, NotFoundError, UsageError  # noqa: E402
from vci.oci.registry import RegistryClient  # noqa: E402
from vci.release.images import copy_to_environment, tag_in_environment  # noqa: E402

from .conftest import Tunable  # noqa: E402
from .counting_proxy import CountingProxy  # noqa: E402

MB = 1024 * 1024


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    with (
        RegistryServer(tmp_path_factory.mktemp("reg-a")) as a,
        RegistryServer(tmp_path_factory.mktemp("reg-b")) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def staged_image(tmp_path_factory, registries):
    """A 50 MB model image (incompressible artifact, scratch base) pushed to <registry a>/ml/iris-staging."""
    import platform

    from vci.oci.image import ContainerConfig, append_layers, scratch_image
    from vci.oci.layout import write_layout

    root = tmp_path_factory.mktemp("image")
    saved = os.environ.get("VCI_CACHE_DIR")
    os.environ["VCI_CACHE_DIR"] = str(root / "cache")
    py = ".".join(platform.python_version().split(".")[:2])
    base = append_layers(scratch_image(), [], epoch=0, config=ContainerConfig(labels={"vci.python": py}))
    write_layout(root / "base", base, "base")
    settings = load_settings({"store": str(root / "store"), "project": "iris"}, cwd=root, environ={})
    (root / "weights.bin").write_bytes(os.urandom(50 * MB))
    (root / "config.json").write_text(json.dumps({"factor": 2}))
    run = vci.init("iris", settings=settings)
    run.log_artifact("weights", root / "weights.bin")
    run.log_artifact("config", root / "config.json")
    run.log_model(Tunable, artifacts=["config", "weights"])
    run.commit()
    result = package(
        settings,
        run.id,
        Options(level=1, base=f"oci:{root / 'base'}:base", push=[f"{registries[0].host}/ml/iris-staging"]),
    )
    yield result["image"], result["digest"]
    if saved is None:
        os.environ.pop("VCI_CACHE_DIR", None)
    else:
        os.environ["VCI_CACHE_DIR"] = saved


def environment(repository):
    settings = load_settings(
        {"environments": {"production": {"target": "kubernetes", "repository": repository}}}, environ={}
    )
    return settings.environment("production")


def test_promotion_within_one_registry_mounts_blobs_and_moves_kilobytes(registries, staged_image):
    reg, _ = registries
    image, digest = staged_image
    mark = reg.mark()
    with CountingProxy(reg.port) as proxy:  # every byte the registry receives passes through it
        source = image.replace(reg.host, proxy.host)
        copied = copy_to_environment(source, environment(f"{proxy.host}/ml/iris"))
    print(f"promotion of a 50 MB image within one registry: the registry received {proxy.received} bytes")
    assert copied["image"] == f"{proxy.host}/ml/iris@{digest}"
    logged = reg.requests_since(mark)
    assert blob_uploads(logged) == []
    assert len(blob_mounts(logged)) == len(copied["transfer"]["mounted"]) >= 2
    assert all(r.status == 201 for r in blob_mounts(logged))
    assert 0 < proxy.received < 10 * 1024 and copied["transfer"]["bytes_moved"] < 10 * 1024
    client = RegistryClient(reg.host)
    assert client.get_manifest("ml/iris", digest)[2] == digest
    assert client.get_manifest("ml/iris", "production")[2] == digest  # the environment's tag, last
    again = copy_to_environment(image, environment(f"{reg.host}/ml/iris"))
    assert again["transfer"]["uploaded"] == [] and again["transfer"]["mounted"] == []


def test_promotion_between_registries_streams_and_keeps_the_digest(registries, staged_image):
    a, b = registries
    image, digest = staged_image
    mark = b.mark()
    with CountingProxy(b.port) as proxy:
        copied = copy_to_environment(image, environment(f"{proxy.host}/ml/iris"), tag=False)
    assert copied["image"] == f"{proxy.host}/ml/iris@{digest}"
    assert copied["transfer"]["bytes_moved"] > 50 * MB and blob_mounts(b.requests_since(mark)) == []
    assert proxy.received > 50 * MB  # the same measure that stays under 10 KB with mounts
    with pytest.raises(NotFoundError):  # promotion tags only once the release runs
        RegistryClient(b.host).get_manifest("ml/iris", "production")
    tag_in_environment(f"{b.host}/ml/iris@{digest}", environment(f"{b.host}/ml/iris"))
    data, _, got = RegistryClient(b.host).get_manifest("ml/iris", "production")
    assert got == digest and data == RegistryClient(a.host).get_manifest("ml/iris-staging", digest)[0]


def test_promotion_refuses_tags_and_missing_repositories(registries):
    reg, _ = registries
    with pytest.raises(UsageError, match="never tags"):
        copy_to_environment(f"{reg.host}/ml/iris-staging:latest", environment(f"{reg.host}/ml/iris"))
    with pytest.raises(ConfigError, match="no repository"):
        copy_to_environment(
            f"{reg.host}/ml/iris-staging@sha256:" + "a" * 64,
            load_settings({}, environ={}).environment("production"),
        )
