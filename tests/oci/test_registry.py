"""Push, pull and copy against a real distribution registry, checked by skopeo and the registry log."""

import email.utils
import json
import subprocess
import sys
import time

import pytest

from registry import RegistryServer, blob_mounts, blob_uploads
from vci.errors import IntegrityError, NotFoundError, RegistryError
from vci.oci import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, canonical_json
from vci.oci.image import ContainerConfig, append_layers, scratch_image
from vci.oci.layers import Entry, write_layer
from vci.oci.layout import write_layout
from vci.oci.registry import RegistryClient
from vci.oci.transfer import copy_image, fetch_layers, push_image

from .conftest import EPOCH, make_app, make_base, random_bytes
from .fault_proxy import FaultProxy


def skopeo_inspect(ref: str, *extra) -> dict:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{ref}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def uploaded_digests(logged) -> set[str]:
    return {
        r.uri.split("digest=")[1].split("&")[0].replace("%3A", ":") for r in blob_uploads(logged) if r.method == "PUT"
    }


def test_pushed_image_is_what_skopeo_sees(registry, repo, tmp_path):
    image = make_app(tmp_path)
    result = push_image(RegistryClient(registry.host), image, repo, tag="v1")
    assert result.digest == image.digest
    assert result.reference == f"{registry.host}/{repo}@{image.digest}"
    info = skopeo_inspect(f"{registry.host}/{repo}@{image.digest}")
    assert info["Digest"] == image.digest and info["Layers"] == [layer.digest for layer in image.layers]
    assert skopeo_inspect(f"{registry.host}/{repo}:v1")["Digest"] == image.digest
    config = skopeo_inspect(f"{registry.host}/{repo}@{image.digest}", "--config")
    assert config["config"]["User"] == "65532" and config["rootfs"]["diff_ids"] == image.config["rootfs"]["diff_ids"]


def test_pushing_again_sends_no_blob(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo, tag="v1")
    mark = registry.mark()
    result = push_image(client, image, repo, tag="v1")
    logged = registry.requests_since(mark)
    assert blob_uploads(logged) == [] and not [r for r in logged if r.method == "POST"]
    assert result.uploaded == [] and len(result.skipped) == len(image.layers) + 1
    assert [r.method for r in logged if "/manifests/" in r.uri] == ["PUT", "PUT"]


def test_changing_weights_uploads_one_layer_and_the_config(registry, repo, tmp_path):
    client = RegistryClient(registry.host)
    one = make_app(tmp_path, weights=b"v1")
    push_image(client, one, repo, tag="v1")
    two = make_app(tmp_path, weights=b"v2")
    mark = registry.mark()
    result = push_image(client, two, repo, tag="v2")
    assert uploaded_digests(registry.requests_since(mark)) == {
        two.layers[-1].digest,
        two.config_descriptor.digest,
    }
    assert set(result.uploaded) == {two.layers[-1].digest, two.config_descriptor.digest}


def test_building_twice_pushes_the_same_digest(registry, repo, tmp_path):
    first = push_image(RegistryClient(registry.host), make_app(tmp_path / "a"), repo, tag="a")
    second = push_image(RegistryClient(registry.host), make_app(tmp_path / "b"), repo, tag="b")
    assert first.digest == second.digest


def test_large_blobs_go_in_chunks_and_small_ones_in_one_put(registry, repo, tmp_path):
    data = random_bytes(300_000, seed=1)
    image = make_app(tmp_path, weights=data)
    mark = registry.mark()
    push_image(RegistryClient(registry.host, chunk_size=64 * 1024), image, repo, tag="v1", parallel=1)
    logged = registry.requests_since(mark)
    patches = [r for r in logged if r.method == "PATCH"]
    weights = image.layers[-1]
    assert weights.size > 64 * 1024
    assert len(patches) == -(-weights.size // (64 * 1024))
    assert len([r for r in blob_uploads(logged) if r.method == "PUT"]) == len(image.layers) + 1
    assert skopeo_inspect(f"{registry.host}/{repo}:v1")["Layers"][-1] == weights.digest


def test_parallel_push_of_many_layers(registry, repo, tmp_path):
    layers = [
        write_layer([Entry.bytes(f"/d/{i}", random_bytes(20_000, i))], tmp_path / f"l{i}", epoch=EPOCH)
        for i in range(8)
    ]
    image = append_layers(make_base(tmp_path), layers, epoch=EPOCH)
    seen = []
    client = RegistryClient(registry.host)
    result = push_image(client, image, repo, tag="v1", parallel=4, progress=lambda *event: seen.append(event))
    assert sorted(d for _, d, _ in seen) == sorted(layer.digest for layer in image.layers)
    assert set(result.uploaded) == {layer.digest for layer in image.layers} | {image.config_descriptor.digest}
    assert skopeo_inspect(f"{registry.host}/{repo}:v1")["Digest"] == image.digest


def test_manifests_and_blobs_come_back_verified(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo, tag="v1")
    data, media_type, digest = client.get_manifest(repo, "v1")
    assert (data, media_type, digest) == (image.manifest_bytes, OCI_MANIFEST, image.digest)
    assert client.get_manifest(repo, image.digest)[0] == image.manifest_bytes
    layer = image.layers[-1]
    assert b"".join(client.get_blob(repo, layer.digest)) == layer.path.read_bytes()
    with pytest.raises(NotFoundError, match="manifest nope"):
        client.get_manifest(repo, "nope")
    with pytest.raises(NotFoundError):
        client.get_manifest("t/never-pushed", "latest")
    assert client.has_blob(repo, layer.digest) and not client.has_blob(repo, "sha256:" + "0" * 64)


def test_get_image_and_mount_base_layers_from_a_docker_format_base(registry, repo, tmp_path):
    base = make_base(tmp_path)
    push_image(RegistryClient(registry.host), base, f"{repo}-tmp", tag="oci")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{registry.host}/{repo}-tmp:oci",
            f"docker://{registry.host}/{repo}-base:v2s2",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    client = RegistryClient(registry.host)
    pulled = client.get_image(f"{registry.host}/{repo}-base:v2s2")
    assert pulled.media_type == DOCKER_MANIFEST and pulled.layers[0].origin == f"{registry.host}/{repo}-base"
    app = write_layer([Entry.bytes("/app", b"app")], tmp_path / "app", epoch=EPOCH)
    image = append_layers(pulled, [app], epoch=EPOCH, config=ContainerConfig(entrypoint=["/app"]))
    mark = registry.mark()
    push_image(client, image, repo, tag="v1")
    logged = registry.requests_since(mark)
    assert len(blob_mounts(logged)) == 1 and all(r.status == 201 for r in blob_mounts(logged))
    assert uploaded_digests(logged) == {app.digest, image.config_descriptor.digest}
    info = skopeo_inspect(f"{registry.host}/{repo}:v1", "--raw")
    assert info["mediaType"] == OCI_MANIFEST and info["layers"][0]["digest"] == base.layers[0].digest


def test_mount_from_a_repository_without_the_blob_falls_back(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    layer = image.layers[-1]
    assert client.mount_blob(f"{repo}-other", layer.digest, repo) is True
    assert client.has_blob(f"{repo}-other", layer.digest)
    missing = "sha256:" + "5" * 64
    assert client.mount_blob(f"{repo}-other", missing, repo) is False
    assert not client.has_blob(f"{repo}-other", missing)


def test_an_index_is_resolved_on_pull_and_copied_whole(registry, repo, tmp_path):
    amd = make_app(tmp_path, weights=b"amd64")
    arm_base = append_layers(scratch_image("linux/arm64/v8"), [], epoch=EPOCH)
    arm = append_layers(arm_base, list(make_app(tmp_path, weights=b"arm64").layers), epoch=EPOCH)
    client = RegistryClient(registry.host)
    for image in (amd, arm):
        push_image(client, image, repo)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                **arm.descriptor().to_json(),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {**amd.descriptor().to_json(), "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    index_digest = client.put_manifest(repo, canonical_json(index), OCI_INDEX, "multi")
    assert client.get_image(f"{registry.host}/{repo}:multi").digest == amd.digest
    assert client.get_image(f"{registry.host}/{repo}:multi", platform="linux/arm64").digest == arm.digest
    result = copy_image(client, f"{registry.host}/{repo}:multi", f"{repo}-copy", tag="multi")
    assert result.digest == index_digest
    assert client.get_manifest(f"{repo}-copy", arm.digest)[2] == arm.digest
    assert skopeo_inspect(f"{registry.host}/{repo}-copy:multi", "--raw")["manifests"][1]["digest"] == amd.digest


def test_copy_within_a_registry_mounts_blobs_and_moves_kilobytes(registry, repo, tmp_path):
    image = make_app(tmp_path, weights=random_bytes(2_000_000, seed=2))
    client = RegistryClient(registry.host)
    push_image(client, image, f"{repo}-staging", tag="v1")
    mark = registry.mark()
    result = copy_image(client, f"{registry.host}/{repo}-staging@{image.digest}", f"{repo}-prod", tag="live")
    logged = registry.requests_since(mark)
    assert result.digest == image.digest and result.bytes_moved < 4096
    assert blob_uploads(logged) == []
    assert len(blob_mounts(logged)) == len(image.layers) + 1 and {r.status for r in blob_mounts(logged)} == {201}
    assert skopeo_inspect(f"{registry.host}/{repo}-prod:live")["Digest"] == image.digest


def test_copy_between_registries_preserves_the_digest(registry, repo, tmp_path):
    image = make_app(tmp_path, weights=random_bytes(200_000, seed=3))
    source = RegistryClient(registry.host)
    push_image(source, image, repo, tag="v1")
    with RegistryServer(tmp_path / "other") as other:
        result = copy_image(RegistryClient(other.host), f"{registry.host}/{repo}:v1", "prod/app", tag="v1")
        assert result.digest == image.digest
        assert result.bytes_moved >= sum(layer.size for layer in image.layers)
        assert skopeo_inspect(f"{other.host}/prod/app:v1")["Digest"] == image.digest
        again = copy_image(RegistryClient(other.host), f"{registry.host}/{repo}:v1", "prod/app")
        assert again.uploaded == [] and again.bytes_moved == len(image.manifest_bytes)
        pulled = source.get_image(f"{registry.host}/{repo}:v1")  # layers stay in the first registry
        extra = write_layer([Entry.bytes("/extra", b"x")], tmp_path / "extra", epoch=EPOCH)
        derived = append_layers(pulled, [extra], epoch=EPOCH)
        pushed = push_image(RegistryClient(other.host), derived, "prod/derived", tag="v1")
        assert set(pushed.uploaded) == {layer.digest for layer in derived.layers} | {derived.config_descriptor.digest}
        assert skopeo_inspect(f"{other.host}/prod/derived:v1")["Layers"] == [layer.digest for layer in derived.layers]


def test_a_failed_manifest_put_leaves_the_old_tag(registry, repo, tmp_path):
    old = make_app(tmp_path, weights=b"old")
    push_image(RegistryClient(registry.host), old, repo, tag="live")
    new = make_app(tmp_path, weights=b"new")
    with FaultProxy(registry.url) as proxy:
        proxy.fail("PUT", r"/manifests/", status=500, times=-1)
        client = RegistryClient(proxy.host, retries=2, backoff=0.01)
        with pytest.raises(RegistryError, match="HTTP 500.*injected fault"):
            push_image(client, new, repo, tag="live")
        assert len([s for s in proxy.seen if s[0] == "PUT" and "/manifests/" in s[1]]) == 3  # 1 + 2 retries
    assert skopeo_inspect(f"{registry.host}/{repo}:live")["Digest"] == old.digest


def test_a_failed_blob_upload_never_writes_the_tag(registry, repo, tmp_path):
    old = make_app(tmp_path, weights=b"old2")
    push_image(RegistryClient(registry.host), old, repo, tag="live")
    new = make_app(tmp_path, weights=b"new2")
    with FaultProxy(registry.url) as proxy:
        proxy.fail("PUT", r"/blobs/uploads/", status=503, times=-1)
        with pytest.raises(RegistryError, match="HTTP 503"):
            push_image(RegistryClient(proxy.host, retries=1, backoff=0.01), new, repo, tag="live")
        assert not [s for s in proxy.seen if "/manifests/" in s[1]]
    assert skopeo_inspect(f"{registry.host}/{repo}:live")["Digest"] == old.digest


def test_a_registry_stopped_mid_push_keeps_the_old_tag(tmp_path):
    server = RegistryServer(tmp_path / "reg").start()
    try:
        old = make_app(tmp_path, weights=b"old3")
        push_image(RegistryClient(server.host), old, "ml/app", tag="live")
        new = make_app(tmp_path, weights=random_bytes(100_000, seed=9))

        def stop_after_first_blob(outcome, digest, size):
            server.stop()

        client = RegistryClient(server.host, retries=1, backoff=0.01)
        with pytest.raises(RegistryError, match=f"cannot reach registry {server.host}"):
            push_image(client, new, "ml/app", tag="live", parallel=1, progress=stop_after_first_blob)
    finally:
        server.stop()
    with RegistryServer(tmp_path / "reg", port=server.port) as again:
        assert skopeo_inspect(f"{again.host}/ml/app:live")["Digest"] == old.digest


def test_transient_errors_are_retried_honouring_retry_after(registry, repo, tmp_path):
    image = make_app(tmp_path)
    with FaultProxy(registry.url) as proxy:
        proxy.fail("PUT", r"/manifests/sha256", status=500, times=2)
        proxy.fail("HEAD", r"/blobs/", status=429, times=1, headers={"Retry-After": "0"})
        proxy.fail("PUT", r"/blobs/uploads/", status=502, times=1)
        result = push_image(RegistryClient(proxy.host, backoff=0.01), image, repo, tag="v1", parallel=1)
        statuses = [s[2] for s in proxy.seen]
        assert statuses.count(500) == 2 and statuses.count(429) == 1 and statuses.count(502) == 1
    assert skopeo_inspect(f"{registry.host}/{repo}:v1")["Digest"] == result.digest == image.digest


def test_a_blob_upload_waits_for_an_http_date_retry_after(registry, repo, tmp_path):
    image = make_app(tmp_path, weights=b"later")
    with FaultProxy(registry.url) as proxy:
        later = email.utils.formatdate(time.time() + 3, usegmt=True)  # whole seconds: 2 to 3 s from now
        proxy.fail("PUT", r"/blobs/uploads/", status=503, times=1, headers={"Retry-After": later})
        start = time.monotonic()
        result = push_image(RegistryClient(proxy.host, backoff=0.01), image, repo, tag="v1", parallel=1)
        assert time.monotonic() - start >= 1.5  # backoff alone would wait about 0.01 s
        assert [s[2] for s in proxy.seen].count(503) == 1
    assert skopeo_inspect(f"{registry.host}/{repo}:v1")["Digest"] == result.digest == image.digest


def test_client_errors_are_not_retried(registry, repo, tmp_path):
    image = make_app(tmp_path)
    with FaultProxy(registry.url) as proxy:
        proxy.fail("PUT", r"/manifests/", status=400, times=-1)
        with pytest.raises(RegistryError, match="HTTP 400"):
            push_image(RegistryClient(proxy.host, backoff=0.01), image, repo, tag="v1")
        assert len([s for s in proxy.seen if s[0] == "PUT" and "/manifests/" in s[1]]) == 1


def test_corrupt_blobs_and_manifests_from_a_registry_are_detected(registry, repo, tmp_path):
    image = make_app(tmp_path)
    push_image(RegistryClient(registry.host), image, repo)
    layer = image.layers[-1]
    with FaultProxy(registry.url) as proxy:
        client = RegistryClient(proxy.host)
        assert b"".join(client.get_blob(repo, layer.digest)) == layer.path.read_bytes()
        proxy.fail("GET", r"/blobs/sha256", status=200, body=b"not the layer")
        with pytest.raises(IntegrityError, match=f"blob {layer.digest}.*does not match"):
            b"".join(client.get_blob(repo, layer.digest))
        proxy.fail(
            "GET",
            r"/manifests/sha256",
            status=200,
            body=image.manifest_bytes + b" ",
            headers={"Content-Type": OCI_MANIFEST},
        )
        with pytest.raises(IntegrityError, match=f"manifest {image.digest}"):
            client.get_manifest(repo, image.digest)


def test_a_stopped_registry_is_a_clear_error(tmp_path):
    server = RegistryServer(tmp_path / "gone").start()
    server.stop()
    with pytest.raises(RegistryError, match=f"cannot reach registry {server.host}") as info:
        push_image(RegistryClient(server.host, retries=1, backoff=0.01), make_app(tmp_path), "a/b")
    assert "running" in info.value.hint
    with pytest.raises(RegistryError) as info:
        RegistryClient(server.host, insecure=False, retries=0).ping()
    assert "--insecure" in info.value.hint


class CountingSession:
    """A transport that records every request and delegates to a real requests.Session."""

    def __init__(self):
        import requests

        self._session = requests.Session()
        self.calls: list[tuple[str, str]] = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url))
        return self._session.request(method, url, **kwargs)


def test_an_injected_session_carries_every_request(registry, repo, tmp_path):
    session = CountingSession()
    image = make_app(tmp_path, weights=b"counted")
    mark = registry.mark()
    push_image(RegistryClient(registry.host, session=session), image, repo, tag="v1")
    logged = registry.requests_since(mark)
    to_registry = [c for c in session.calls if c[1].startswith(f"http://{registry.host}/")]
    assert len(to_registry) == len(logged)
    assert sum(1 for m, u in session.calls if m == "PUT" and "/blobs/uploads/" in u) == len(image.layers) + 1


def test_importing_the_client_does_not_import_requests():
    code = "import sys, vci.oci.registry, vci.oci.transfer; assert 'requests' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_a_registry_base_fetched_into_a_layout_and_an_archive(registry, repo, tmp_path):
    image = make_app(tmp_path / "cache")
    client = RegistryClient(registry.host)
    push_image(client, image, repo, tag="v1")
    pulled = client.get_image(f"{registry.host}/{repo}:v1")
    assert all(layer.path is None for layer in pulled.layers)
    local = fetch_layers(client, pulled, tmp_path / "layout")
    assert [layer.path.read_bytes() for layer in local.layers] == [layer.path.read_bytes() for layer in image.layers]
    write_layout(tmp_path / "layout", local, "v1")
    done = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path / 'layout'}:v1"], capture_output=True, text=True)
    assert json.loads(done.stdout)["Digest"] == image.digest
    mark = registry.mark()
    again = fetch_layers(client, pulled, tmp_path / "layout")  # already there: nothing downloaded
    assert [r for r in registry.requests_since(mark) if r.method == "GET"] == []
    assert again.layers == local.layers


def test_the_first_contact_is_retried_when_the_registry_is_busy(registry):
    with FaultProxy(registry.url) as proxy:
        proxy.fail("GET", r"^/v2/$", status=503, times=2)
        client = RegistryClient(proxy.host, insecure=True, backoff=0.01)
        assert client.ping() == f"http://{proxy.host}"
        assert [s[2] for s in proxy.seen if s[1] == "/v2/"] == [503, 503, 200]
