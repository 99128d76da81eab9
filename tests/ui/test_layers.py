"""The diff of two releases of images lists the layers that differ, read from a real registry."""

import io
import json
import re

import pytest

from registry import RegistryServer
from tests.release.conftest import make_run, release_settings
from tests.ui.conftest import app_client
from vci.digests import sha256_bytes
from vci.ledger import Ledger, make_record
from vci.oci.registry import RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push_image(client: RegistryClient, repo: str, layers: list[bytes]) -> str:
    """An image of ``layers`` (any bytes: the registry checks digests, not contents); its digest."""
    rootfs = {"type": "layers", "diff_ids": [sha256_bytes(b"unpacked " + b) for b in layers]}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": rootfs}).encode()
    for blob in [config, *layers]:
        client.put_blob(repo, sha256_bytes(blob), len(blob), lambda blob=blob: io.BytesIO(blob))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_bytes(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_bytes(b),
                    "size": len(b)} for b in layers],
    }  # fmt: skip
    body = json.dumps(manifest).encode()
    return client.put_manifest(repo, body, OCI_MANIFEST, sha256_bytes(body))


@pytest.fixture()
def registry(tmp_path):
    with RegistryServer(tmp_path / "registry") as reg:
        yield reg


def test_diff_of_two_image_releases_lists_the_layers_that_differ(tmp_path, monkeypatch, registry):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    settings = release_settings(tmp_path)
    run = make_run(settings, tmp_path, 2)
    client = RegistryClient(registry.host)
    base, deps = b"base layer" * 100, b"dependencies" * 50
    images = [push_image(client, "ml/iris", [base, deps, weights]) for weights in (b"weights v1", b"weights v2")]
    ledger = Ledger.for_settings(settings)
    for number, digest in enumerate(images):
        ledger.append(make_record(release_id=f"r20261201-12000{number}-abcd", environment="production",
                                  action="promote", outcome="succeeded", digest=digest, run_id=run.id,
                                  image=f"{registry.host}/ml/iris@{digest}"))  # fmt: skip
    page = app_client(settings, actions=False).get(
        "/diff?a=production/r20261201-120000-abcd&b=production/r20261201-120001-abcd"
    )
    layers = re.search(r'id="diff-layers".*?</table>', page.get_data(as_text=True), re.S).group(0)
    kinds = re.findall(r'<tr class="(\w+)"><td>(layer \d)</td>', layers)
    assert kinds == [("same", "layer 1"), ("same", "layer 2"), ("changed", "layer 3")]
    assert sha256_bytes(b"weights v2") in layers
