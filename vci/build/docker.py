"""Build a run's image through a Docker Engine (Docker SDK) and bring it back as a vci Image with local gzip layers.

``vci package --builder docker`` writes the ``--emit-dockerfile`` context, makes the base available to
the daemon (an OCI layout base is ``docker load``-ed as ``vci-base/<hash>``; a registry reference is
pulled by the daemon), builds with the classic builder, and reads the result back with ``docker save``.
Saved layers are plain tars: each is hashed on the way in (its diff_id); a layer vci already holds (the
base layout's, or one gzipped before) keeps that blob, any other is gzipped (mtime 0) once into
``<cache>/oci/docker-layers``. The result is an ordinary OCI image: ``--push``/``--layout``/``--tar``
work on it unchanged, and a pushed image shares its base blobs with the base.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO

from ..digests import HashingWriter, sha256_bytes
from ..errors import BuildError
from ..fetch import cache_root
from ..files import commit, temporary_for, write_replacing
from ..oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, canonical_json
from ..oci.image import Image, image_from_parts
from ..oci.layers import Layer
from ..oci.layout import read_layout
from ..oci.stream import chunk_reader
from ..oci.tarball import write_tarball
from ..progress import progress_enabled
from ..runs import Run
from . import Options
from .dockerfile import write_dockerfile

log = logging.getLogger("vci")

PING_TIMEOUT = 5  # seconds: is a daemon there at all
API_TIMEOUT = 900  # seconds between two bytes of a build, load or save stream
SMALL_MEMBER = 1 << 20  # archive members up to this size are kept in memory (configs, manifests, tiny layers)
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def _errors() -> tuple[type[Exception], ...]:
    """What the Docker SDK raises: its own errors, and requests' when the daemon's socket fails."""
    import docker
    import requests

    return docker.errors.DockerException, requests.exceptions.RequestException


def docker_available(timeout: float = PING_TIMEOUT) -> bool:
    """True when a Docker Engine answers a ping (DOCKER_HOST, else /var/run/docker.sock)."""
    try:
        _client(timeout).close()
        return True
    except BuildError:
        return False


def build_with_docker(run: Run, options: Options, image: Image) -> Image:
    """Build ``run`` through the daemon; ``image`` (the daemonless build) gives labels, platform, base blobs."""
    client = _client(API_TIMEOUT)
    try:
        with tempfile.TemporaryDirectory(prefix="vci-docker-") as tmp:
            write_dockerfile(Path(tmp) / "context", run, options)
            base = _base_for_daemon(client, options, Path(tmp))
            tag = f"vci-build/{re.sub('[^a-z0-9._-]+', '-', (run.project or 'model').lower())}:{run.id}"
            image_id = _build(client, Path(tmp) / "context", tag, {"BASE_IMAGE": base} if base else {})
        sink = LayerSink(cache_root() / "oci" / "docker-layers", options.level, known=image.layers)
        with chunk_reader(
            client.api.get_image(image_id, chunk_size=_CHUNK), errors=_errors(), what="the Docker Engine's save stream"
        ) as saved:
            built = read_saved_image(saved, sink)
    finally:
        client.close()
    _check_platform(built, options.platform)
    log.info("docker build of %s gave image %s (%d layers)", run.id, built.digest, len(built.layers))
    return built


def _client(timeout: float):
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except _errors() as exc:
        raise BuildError(
            f"no Docker Engine is reachable ({exc})",
            hint="start dockerd and set DOCKER_HOST, or use --builder daemonless",
        ) from exc


def _base_for_daemon(client, options, tmp: Path) -> str | None:
    """The BASE_IMAGE build argument: a loaded layout's tag, a registry reference, or None (the default)."""
    spec = options.base or os.environ.get("VCI_BASE_IMAGE")
    if not spec or not (spec.startswith("oci:") or Path(spec).is_dir()):
        return spec
    path, _, layout_tag = spec.removeprefix("oci:").partition(":")
    base = read_layout(path, layout_tag or None, options.platform)
    return load_image(client, base, f"vci-base/{base.digest.split(':')[1][:16]}:latest", tmp)


def load_image(client, image: Image, tag: str, tmp: Path) -> str:
    """``docker load`` ``image`` as ``tag`` unless the daemon already has it under that tag; returns ``tag``."""
    import docker

    try:
        if client.images.get(tag).id == image.config_descriptor.digest:
            return tag
    except docker.errors.ImageNotFound:
        pass
    except _errors() as exc:
        raise BuildError(f"the Docker Engine failed to look up {tag}: {exc}") from exc
    archive = write_tarball(tmp / "base.tar", image, [tag])
    log.info("loading base %s into the Docker Engine as %s", image.digest, tag)
    try:
        with open(archive, "rb") as f:
            client.images.load(f)
    except _errors() as exc:
        raise BuildError(
            f"docker load of the base image failed: {exc}",
            hint="check that the base layout is a complete image for this platform",
        ) from exc
    finally:
        archive.unlink(missing_ok=True)
    return tag


def _build(client, context: Path, tag: str, buildargs: dict[str, str]) -> str:
    """Run the classic builder on ``context``, its log to the ``vci`` logger; return the built image id."""
    last: collections.deque[str] = collections.deque(maxlen=8)
    image_id: str | None = None
    try:
        for chunk in client.api.build(
            path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True
        ):
            if "error" in chunk:
                raise BuildError(
                    f"docker build failed: {chunk['error'].strip()}",
                    hint=("last build output: " + " | ".join(last)) if last else None,
                )
            image_id = (chunk.get("aux") or {}).get("ID") or image_id
            for line in filter(str.strip, (chunk.get("stream") or "").splitlines()):
                log.info("docker: %s", line.rstrip())
                if line.startswith("Step ") and progress_enabled(sys.stderr):
                    print(f"  {line.rstrip()}", file=sys.stderr)
                last.append(line.strip())
        return image_id or client.images.get(tag).id
    except _errors() as exc:
        raise BuildError(
            f"the Docker Engine failed during the build: {exc}",
            hint="see the daemon's log; retry with --builder daemonless",
        ) from exc


def read_saved_image(stream, sink: LayerSink) -> Image:
    """An Image from a ``docker save`` archive read once from ``stream``; its layers go through ``sink``.

    Both formats are read: the legacy one (``<id>/layer.tar``, shared layers as links) and Docker 25+'s
    OCI one (``blobs/sha256/...``). Layers that are already gzip-compressed are kept as they are.
    """
    small, stored, links = {}, {}, {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                if m.issym():
                    links[m.name] = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
                elif m.islnk():
                    links[m.name] = m.linkname
                elif m.isfile() and m.size <= SMALL_MEMBER:
                    small[m.name] = _extract(tar, m).read()
                elif m.isfile():
                    stored[m.name] = sink.store(_extract(tar, m))
    except (tarfile.TarError, OSError) as exc:
        raise BuildError(f"could not read the image the Docker Engine saved: {exc}") from exc
    try:
        entry = json.loads(small["manifest.json"])[0]
        config_bytes = small[_follow(links, entry["Config"])]
    except (KeyError, IndexError, ValueError) as exc:
        raise BuildError(f"the saved image archive has no usable manifest.json ({exc})") from exc
    layers = []
    for name in (_follow(links, n) for n in entry["Layers"]):
        if name not in stored and name not in small:
            raise BuildError(f"the saved image archive lacks layer {name}")
        layers.append(stored[name] if name in stored else sink.store(io.BytesIO(small[name])))
    if json.loads(config_bytes).get("rootfs", {}).get("diff_ids") != [layer.diff_id for layer in layers]:
        raise BuildError(
            "the layers the Docker Engine saved do not match its image config's diff_ids",
            hint="retry; if it persists, the daemon's image store may be corrupt",
        )
    return _oci_image(config_bytes, layers)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """The content of a regular file in the archive."""
    content = tar.extractfile(member)
    if content is None:
        raise BuildError(f"the saved image archive's member {member.name} is not a regular file")
    return content


def _follow(links: dict, name: str) -> str:
    for _ in range(len(links) + 1):  # bounded: a cycle of links ends as a missing layer
        name = links.get(name, name)
    return name


def _oci_image(config_bytes: bytes, layers: list[Layer]) -> Image:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(OCI_CONFIG, sha256_bytes(config_bytes), len(config_bytes)).to_json(),
        "layers": [layer.descriptor.as_oci().to_json() for layer in layers],
    }
    paths = {layer.digest: layer.path for layer in layers}
    return image_from_parts(canonical_json(manifest), config_bytes, paths.get)


class LayerSink:
    """Where a saved image's layers go: reused when their diff_id is known, else gzipped into ``directory``.

    ``known`` layers (the base's, from its OCI layout) keep their original blobs, so a pushed image shares
    them with its base; layers gzipped before are found again by diff_id and compression level.
    """

    def __init__(self, directory: str | Path, level: int = 6, known=()):
        self.blobs, self.records = Path(directory) / "sha256", Path(directory) / "diff_ids"
        self.level = level
        self.known = {layer.diff_id: layer for layer in known if layer.path is not None}

    def store(self, source) -> Layer:
        """Read one layer from ``source`` (a plain or gzipped tar) and return it as a local gzip Layer."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.records.mkdir(parents=True, exist_ok=True)
        head = source.read(2)
        if head == _GZIP_MAGIC:
            return self._write(lambda blob: _copy_gzip(head, source, blob))
        with tempfile.SpooledTemporaryFile(max_size=SMALL_MEMBER, dir=str(self.blobs)) as spool:
            plain, chunk = HashingWriter(spool), head  # the diff_id first: compress only what is new
            while chunk:
                plain.write(chunk)
                chunk = source.read(_CHUNK)
            found = self._reuse(plain.digest)
            if found is not None:
                return found
            spool.seek(0)
            layer = self._write(lambda blob: _gzip_tar(spool, blob, self.level))
        write_replacing(self.records / f"{layer.diff_id.split(':')[1]}-{self.level}", f"{layer.digest} {layer.size}")
        return layer

    def _reuse(self, diff_id: str) -> Layer | None:
        if diff_id in self.known:
            return self.known[diff_id]
        try:
            digest, size = (self.records / f"{diff_id.split(':')[1]}-{self.level}").read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        path = self.blobs / digest.split(":", 1)[1]
        if not path.is_file() or path.stat().st_size != int(size):
            return None
        return Layer(Descriptor(OCI_LAYER_GZIP, digest, int(size)), diff_id, path)

    def _write(self, compress) -> Layer:
        try:
            with temporary_for(self.blobs / "layer") as tmp:
                with open(tmp, "wb") as raw:
                    blob = HashingWriter(raw)
                    diff_id = compress(blob)
                dest = commit(tmp, self.blobs / blob.digest.split(":", 1)[1])
        except (OSError, zlib.error) as exc:
            raise BuildError(f"could not store a layer of the built image in {self.blobs}: {exc}") from exc
        return Layer(Descriptor(OCI_LAYER_GZIP, blob.digest, blob.size), diff_id, dest)


def _gzip_tar(source, blob: HashingWriter, level: int) -> str:
    with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=blob, mtime=0) as gz:
        plain = HashingWriter(gz)
        while chunk := source.read(_CHUNK):
            plain.write(chunk)
    return plain.digest


def _copy_gzip(head: bytes, source, blob: HashingWriter) -> str:
    """Keep an already-compressed layer as it is; its diff_id is the digest of what it decompresses to."""
    plain, inflate, chunk = hashlib.sha256(), zlib.decompressobj(16 + zlib.MAX_WBITS), head
    while chunk:
        blob.write(chunk)
        while chunk:
            plain.update(inflate.decompress(chunk))
            chunk = inflate.unused_data if inflate.eof else b""
            if inflate.eof:
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a multi-member gzip stream
        chunk = source.read(_CHUNK)
    plain.update(inflate.flush())
    return "sha256:" + plain.hexdigest()


def _check_platform(image: Image, platform: str) -> None:
    built = [image.config.get(k) for k in ("os", "architecture", "variant")]
    wanted = platform.split("/")
    if built[:2] != wanted[:2] or (len(wanted) > 2 and built[2] != wanted[2]):
        raise BuildError(
            f"the Docker Engine built a {'/'.join(filter(None, built))} image, not {platform}",
            hint="build on a daemon of that platform, or use --builder daemonless",
        )
