"""OCI image layouts and docker archives, checked by independent tools: skopeo and umoci."""

import json
import os
import subprocess
import tarfile

import pytest

from vci.errors import IntegrityError, NotFoundError
from vci.oci import REF_NAME
from vci.oci.image import append_layers
from vci.oci.layers import Entry, write_layer
from vci.oci.layout import blob_path, layout_tags, read_layout, write_layout
from vci.oci.tarball import write_tarball

from .conftest import EPOCH, make_app


def tool(*args) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
    return done.stdout


def test_skopeo_reads_the_layout_as_written(tmp_path):
    image = make_app(tmp_path / "cache")
    write_layout(tmp_path / "layout", image, "v1")
    info = json.loads(tool("skopeo", "inspect", f"oci:{tmp_path / 'layout'}:v1"))
    assert info["Digest"] == image.digest
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert "VCI_PORT=8080" in info["Env"]
    raw_config = json.loads(tool("skopeo", "inspect", "--config", f"oci:{tmp_path / 'layout'}:v1"))
    assert raw_config["config"]["User"] == "65532"
    assert raw_config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]


def test_umoci_unpacks_files_modes_and_links(tmp_path):
    image = make_app(tmp_path / "cache", weights=b"W" * 100)
    write_layout(tmp_path / "layout", image, "v1")
    tool("umoci", "unpack", "--image", f"{tmp_path / 'layout'}:v1", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "opt/app/weights.bin").read_bytes() == b"W" * 100
    assert (rootfs / "bin/true").stat().st_mode & 0o777 == 0o755
    assert os.readlink(rootfs / "usr/bin/true") == "/bin/true"
    runtime = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert runtime["process"]["args"] == ["/bin/true"] and runtime["process"]["cwd"] == "/opt/app"
    assert runtime["process"]["user"]["uid"] == 65532


def test_layout_round_trip_and_several_tags(tmp_path):
    one = make_app(tmp_path / "cache", weights=b"1")
    two = make_app(tmp_path / "cache", weights=b"2")
    write_layout(tmp_path / "layout", one, "one")
    write_layout(tmp_path / "layout", two, "two")
    write_layout(tmp_path / "layout", two, "one")  # retag replaces the entry
    assert layout_tags(tmp_path / "layout") == {"one": two.digest, "two": two.digest}
    back = read_layout(tmp_path / "layout", "two")
    assert back.digest == two.digest and back.config_bytes == two.config_bytes
    assert all(layer.path == blob_path(tmp_path / "layout", layer.digest) for layer in back.layers)
    assert tool("skopeo", "inspect", "--format", "{{.Digest}}", f"oci:{tmp_path / 'layout'}:one").strip() == two.digest


def test_a_layout_read_back_is_a_usable_base(tmp_path):
    base = make_app(tmp_path / "cache")
    write_layout(tmp_path / "base", base, "latest")
    extra = write_layer([Entry.bytes("/extra", b"x")], tmp_path / "extra", epoch=EPOCH)
    image = append_layers(read_layout(tmp_path / "base"), [extra], epoch=EPOCH)
    write_layout(tmp_path / "out", image, "v1")
    assert json.loads(tool("skopeo", "inspect", f"oci:{tmp_path / 'out'}:v1"))["Layers"][-1] == extra.digest


def test_reading_a_skopeo_written_layout(tmp_path):
    image = make_app(tmp_path / "cache")
    write_layout(tmp_path / "ours", image, "v1")
    tool("skopeo", "copy", f"oci:{tmp_path / 'ours'}:v1", f"oci:{tmp_path / 'theirs'}:copied")
    back = read_layout(tmp_path / "theirs", "copied")
    assert [layer.diff_id for layer in back.layers] == [layer.diff_id for layer in image.layers]


def test_missing_tags_and_tampered_blobs_are_errors(tmp_path):
    image = make_app(tmp_path / "cache")
    write_layout(tmp_path / "layout", image, "v1")
    with pytest.raises(NotFoundError, match="no image tagged 'v2'.*v1"):
        read_layout(tmp_path / "layout", "v2")
    with pytest.raises(NotFoundError, match="not an OCI image layout"):
        read_layout(tmp_path / "nothing")
    blob_path(tmp_path / "layout", image.digest).write_bytes(b"{}")
    with pytest.raises(IntegrityError):
        read_layout(tmp_path / "layout", "v1")


def test_docker_archive_is_read_by_skopeo(tmp_path):
    image = make_app(tmp_path / "cache")
    path = write_tarball(tmp_path / "image.tar", image, ["127.0.0.1:5000/ml/iris:v1", "iris"])
    info = json.loads(tool("skopeo", "inspect", f"docker-archive:{path}"))
    assert info["Layers"] == [layer.diff_id for layer in image.layers]  # skopeo names docker-archive layers by diff_id
    config = json.loads(tool("skopeo", "inspect", "--config", f"docker-archive:{path}"))
    assert config["rootfs"]["diff_ids"] == image.config["rootfs"]["diff_ids"]
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
    assert manifest[0]["RepoTags"] == ["127.0.0.1:5000/ml/iris:v1", "iris:latest"]
    assert index["manifests"][0]["digest"] == image.digest
    assert index["manifests"][0]["annotations"][REF_NAME] == "127.0.0.1:5000/ml/iris:v1"
    tool("skopeo", "copy", f"docker-archive:{path}", f"oci:{tmp_path / 'copied'}:v1")
    assert [layer.diff_id for layer in read_layout(tmp_path / "copied", "v1").layers] == image.config["rootfs"][
        "diff_ids"
    ]


def test_docker_archive_is_reproducible(tmp_path):
    image = make_app(tmp_path / "cache")
    one = write_tarball(tmp_path / "one.tar", image, ["x/y:1"]).read_bytes()
    two = write_tarball(tmp_path / "two.tar", image, ["x/y:1"]).read_bytes()
    assert one == two
