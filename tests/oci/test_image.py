"""Pure image assembly: config and manifest contents, determinism, Docker schema2 bases, image indexes."""

import hashlib
import json

import pytest

from vci.digests import sha256_bytes
from vci.errors import BuildError
from vci.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
)
from vci.oci.image import ContainerConfig, append_layers, image_from_parts, scratch_image, select_manifest
from vci.oci.layers import Entry, write_layer

from .conftest import EPOCH, make_app, make_base


def test_config_records_layers_history_and_runtime(tmp_path):
    image = make_app(tmp_path)
    config, manifest = image.config, image.manifest
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
    assert [h.get("comment") for h in config["history"]] == ["base files", "code", "weights"]
    inner = config["config"]
    assert inner["Entrypoint"] == ["/bin/true"] and inner["User"] == "65532"
    assert inner["WorkingDir"] == "/opt/app" and inner["ExposedPorts"] == {"8080/tcp": {}}
    assert "VCI_PORT=8080" in inner["Env"]
    assert inner["Labels"] == {"vci.run": "test", "org.opencontainers.image.created": "2023-11-14T22:13:20Z"}
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["config"]["digest"] == sha256_bytes(image.config_bytes)
    assert [d["digest"] for d in manifest["layers"]] == [layer.digest for layer in image.layers]
    assert image.manifest_bytes == canonical_json(manifest)


def test_same_inputs_give_the_same_digest_and_a_new_epoch_does_not(tmp_path):
    one = make_app(tmp_path / "a")
    two = make_app(tmp_path / "b")
    later = make_app(tmp_path / "c", epoch=EPOCH + 60)
    assert one.digest == two.digest and one.manifest_bytes == two.manifest_bytes
    assert later.digest != one.digest


def test_changing_weights_changes_only_the_weights_layer(tmp_path):
    one = make_app(tmp_path, weights=b"v1")
    two = make_app(tmp_path, weights=b"v2")
    changed = [a.digest != b.digest for a, b in zip(one.layers, two.layers, strict=True)]
    assert changed == [False, False, True]


def test_env_from_the_base_is_kept_and_overridden_by_key(tmp_path):
    base = append_layers(scratch_image(), [], epoch=EPOCH, config=ContainerConfig(env={"PATH": "/bin", "A": "1"}))
    image = append_layers(base, [], epoch=EPOCH, config=ContainerConfig(env={"A": "2", "B": "3"}))
    assert image.config["config"]["Env"] == ["PATH=/bin", "A=2", "B=3"]


def _docker_base(tmp_path):
    layer = write_layer([Entry.bytes("/etc/base", b"b")], tmp_path / "base-layer", epoch=EPOCH)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "docker_version": "20.10",
        "container": "abc",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["sh"], "User": "root"},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "ADD base"}],
    }
    config_bytes = json.dumps(config, indent=3).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "digest": sha256_bytes(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
    }
    manifest_bytes = json.dumps(manifest, indent=3).encode()
    return image_from_parts(manifest_bytes, config_bytes, lambda d: layer.path if d == layer.digest else None)


def test_docker_schema2_base_is_converted_to_oci_media_types(tmp_path):
    base = _docker_base(tmp_path)
    assert base.layers[0].path is not None and base.media_type == DOCKER_MANIFEST
    app = write_layer([Entry.bytes("/app", b"a")], tmp_path / "app", epoch=EPOCH)
    image = append_layers(base, [app], epoch=EPOCH, config=ContainerConfig(entrypoint=["/app"]))
    manifest = image.manifest
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    assert [d["mediaType"] for d in manifest["layers"]] == [OCI_LAYER_GZIP, OCI_LAYER_GZIP]
    assert manifest["layers"][0]["digest"] == base.layers[0].digest  # same blob, new name
    config = image.config
    assert "docker_version" not in config and "container" not in config
    assert config["config"]["Env"] == ["PATH=/usr/bin"] and "Cmd" not in config["config"]
    assert len(config["history"]) == 2


def test_base_config_must_match_its_manifest(tmp_path):
    base = make_base(tmp_path)
    with pytest.raises(BuildError, match="does not match"):
        image_from_parts(base.manifest_bytes, base.config_bytes + b" ")


def test_an_index_resolves_to_the_requested_platform():
    def entry(arch, variant=None):
        platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        digest = "sha256:" + hashlib.sha256(arch.encode() + (variant or "").encode()).hexdigest()
        return {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": 10, "platform": platform}

    index = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [entry("arm64", "v8"), entry("amd64"), entry("arm", "v7")],
    }
    assert select_manifest(index) == Descriptor.from_json(entry("amd64"))
    assert select_manifest(index, "linux/arm64").digest == entry("arm64", "v8")["digest"]
    assert select_manifest(index, "linux/arm/v7").digest == entry("arm", "v7")["digest"]
    with pytest.raises(BuildError, match="no linux/s390x manifest.*linux/amd64"):
        select_manifest(index, "linux/s390x")
    with pytest.raises(BuildError, match="bad platform"):
        select_manifest(index, "amd64")


def test_history_must_match_the_layers(tmp_path):
    with pytest.raises(BuildError, match="history"):
        append_layers(scratch_image(), [], epoch=EPOCH, history=["extra"])
