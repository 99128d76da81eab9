"""Where a built image goes: pushed to registries, an OCI layout, a docker tarball, a Dockerfile, a refs file."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BuildError
from ..files import write_replacing
from ..oci.layout import write_layout
from ..oci.registry import RegistryClient, RegistryClients
from ..oci.tarball import write_tarball
from ..oci.transfer import push_image
from ..progress import format_bytes, progress_enabled
from ..refs import split_repository
from . import Options
from .dockerfile import write_dockerfile


def write_outputs(
    image, options: Options, run, default_layout: Path, progress=None, clients: RegistryClients | None = None
) -> dict:
    """Write every requested output; with none requested, an OCI layout under the local state directory."""
    outputs: dict[str, object] = {}
    tag = options.tag or run.id
    if options.layout or not (options.push or options.tar or options.dockerfile):
        directory = Path(options.layout) if options.layout else default_layout
        _need_local_layers(image)
        write_layout(directory, image, tag)
        outputs["layout"] = f"{directory}:{tag}"
    if options.tar:
        _need_local_layers(image)
        write_tarball(options.tar, image, [f"vci/{run.project or 'model'}:{tag}"])
        outputs["tar"] = options.tar
    if options.dockerfile:
        outputs["dockerfile"] = str(write_dockerfile(options.dockerfile, run, options))
    clients = RegistryClients() if clients is None else clients
    pushed = [push_to(image, repo, tag, options.insecure, progress, clients) for repo in options.push]
    if pushed:
        outputs["push"] = pushed
    return outputs


def push_to(image, repository: str, tag: str, insecure: bool | None, progress=None, clients=None) -> dict:
    registry, repo = split_repository(repository)
    client = (RegistryClients() if clients is None else clients).get(registry, insecure)
    result = push_image(client, image, repo, tag=tag, progress=progress)
    return {
        "reference": f"{registry}/{repo}@{image.digest}",
        "tag": f"{registry}/{repo}:{tag}",
        **{k: v for k, v in result.to_json().items() if k != "reference"},
    }


def _need_local_layers(image) -> None:
    remote = [layer.digest for layer in image.layers if layer.path is None]
    if remote:
        raise BuildError(
            f"{len(remote)} base layers live only in their registry; --layout and --tar need them",
            hint="use an OCI layout as --base (skopeo copy docker://BASE oci:DIR:tag)",
        )


def push_progress():
    """Per-layer push outcomes on a terminal: uploaded, mounted or skipped (already there)."""
    if not progress_enabled(sys.stderr):
        return None

    def report(outcome: str, digest: str, size: int) -> None:
        print(f"  {outcome:<9} {digest[:19]} {format_bytes(size):>10}", file=sys.stderr)

    return report


def write_refs_file(path: str | Path, image: str) -> Path:
    """``--refs-file``: the image reference on one line, for the next CI step (whole or not at all)."""
    return write_replacing(path, image + "\n")


def mark_in_registry(rows: list[dict], repository: str, insecure: bool | None) -> None:
    """``--dry-run``: mark each planned layer's row with whether ``repository`` already has its blob."""
    registry, repo = split_repository(repository)
    client = RegistryClient(registry, insecure=insecure)
    for row in rows:
        if row["digest"]:
            row.setdefault("in_registry", {})[repository] = client.has_blob(repo, row["digest"])
            if row["state"] != "base" and row["in_registry"][repository]:
                row["state"] = "pushed"
