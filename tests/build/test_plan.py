"""The pure parts of the layer plan: which --base is a layout, the run's Python, where blobs go."""

from vci.build.plan import MODEL_ROOT, layout_base, minor_version, plan_layers

DIGEST = "sha256:" + "cd" * 32


def test_a_base_is_a_layout_when_it_says_oci_or_is_a_directory(tmp_path):
    assert layout_base(f"oci:{tmp_path}/base:v1") == (f"{tmp_path}/base", "v1")
    assert layout_base("oci:/no/such/dir") == ("/no/such/dir", None)
    assert layout_base(str(tmp_path)) == (str(tmp_path), None)
    assert layout_base("python:3.11-slim") is None and layout_base(None) is None


def test_minor_version():
    assert minor_version("3.11.7") == "3.11" and minor_version("3.12") == "3.12"


def test_each_blob_is_one_layer_at_its_content_address(tmp_path):
    manifest = {
        "model": {"digest": DIGEST, "size": 3},
        "artifacts": {},
        "requirements": [],
        "environment": {"python": "3.11.7"},
    }
    specs = plan_layers(manifest, tmp_path, python="3.11", platform="linux/amd64", cache_dir=tmp_path)
    assert [s.name for s in specs] == ["dependencies", "runtime", "model"]
    model = specs[-1]
    assert model.key == "blob-" + "cd" * 32
    [entry] = model.entries()
    assert entry.path == f"{MODEL_ROOT.lstrip('/')}/blobs/sha256/{'cd' * 32}"  # tar paths are relative
    assert entry.source == tmp_path / "blobs" / "sha256" / ("cd" * 32) and entry.mode == 0o444
