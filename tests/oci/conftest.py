"""Fixtures for the OCI tests: a real registry per session, and tiny images built from a few files."""

from __future__ import annotations

import os
import random

import pytest

from registry import RegistryServer
from vci.oci.image import ContainerConfig, append_layers, scratch_image
from vci.oci.layers import Entry, LayerCache

EPOCH = 1_700_000_000


def make_base(cache_dir, epoch: int = EPOCH):
    """A base image made of one layer of a few files (no real OS needed by these tests)."""
    cache = LayerCache(cache_dir)
    layer = cache.build(
        "base",
        [
            Entry.bytes("/etc/os-release", b"ID=vci-test\n"),
            Entry.bytes("/bin/true", b"#!/bin/sh\nexit 0\n", 0o755),
            Entry.symlink("/usr/bin/true", "/bin/true"),
        ],
        epoch=epoch,
    )
    return append_layers(
        scratch_image(), [layer], epoch=epoch, config=ContainerConfig(user="0"), history=["base files"]
    )


def make_app(
    cache_dir,
    *,
    weights: bytes = b"weights-v1",
    code: bytes = b"print('hi')\n",
    epoch: int = EPOCH,
    base=None,
):
    """An app image on ``base``: a code layer and a weights layer, keyed in a layer cache."""
    cache = LayerCache(cache_dir)
    base = base or make_base(cache_dir, epoch)
    code_layer = cache.build("code-" + _key(code), [Entry.bytes("/opt/app/main.py", code)], epoch=epoch)
    weights_layer = cache.build("weights-" + _key(weights), [Entry.bytes("/opt/app/weights.bin", weights)], epoch=epoch)
    config = ContainerConfig(
        entrypoint=["/bin/true"],
        env={"VCI_PORT": "8080"},
        exposed_ports=["8080"],
        workdir="/opt/app",
        labels={"vci.run": "test"},
    )
    return append_layers(base, [code_layer, weights_layer], epoch=epoch, config=config, history=["code", "weights"])


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _key(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture
def repo(request) -> str:
    """A repository name unique to the test."""
    name = request.node.name.lower().replace("[", "-").replace("]", "").replace("_", "-")
    return f"t/{name}-{os.getpid()}"
