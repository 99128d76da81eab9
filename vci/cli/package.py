"""``vci package``: build a run's OCI image without a Docker daemon and publish it."""

from __future__ import annotations

import click

from ..build import Options
from ..build.package import package, plan
from .output import emit, output_option
from .params import DIR_OUT, FILE_OUT
from .runs import settings_for, store_option


@click.command("package")
@click.argument("run_id")
@click.option(
    "--push", "push", multiple=True, metavar="REPO", help="Push to this repository (registry/path/name); repeatable."
)
@click.option("--layout", type=DIR_OUT, metavar="DIR", help="Write an OCI image layout.")
@click.option("--tar", type=FILE_OUT, metavar="FILE", help="Write a tarball that `docker load` accepts.")
@click.option(
    "--emit-dockerfile",
    "dockerfile",
    type=DIR_OUT,
    metavar="DIR",
    help="Write a Dockerfile and its context (alone: no image is built).",
)
@click.option(
    "--base",
    metavar="REF|oci:DIR[:TAG]",
    help="Base image with Python (default python:X.Y-slim for the run's Python, or VCI_BASE_IMAGE).",
)
@click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    metavar="OS/ARCH[,OS/ARCH...]",
    help="Target platform of the image; several, comma-separated, give an image index (one image each).",
)
@click.option("--tag", metavar="TAG", help="Tag to write after the push (default: the run id).")
@click.option("--insecure", is_flag=True, default=None, help="Allow plain HTTP / unverified TLS (local registries).")
@click.option(
    "--builder",
    type=click.Choice(["daemonless", "docker", "auto"]),
    default="daemonless",
    show_default=True,
    help="Build without a daemon, through the Docker Engine, or docker when reachable.",
)
@click.option(
    "--compression-level",
    "level",
    type=click.IntRange(1, 9),
    default=6,
    show_default=True,
    help="gzip level of new layers.",
)
@click.option("--refs-file", type=FILE_OUT, help="Also write REPO@sha256:... to this file.")
@click.option(
    "--dry-run", is_flag=True, help="Print the layer plan (and what the registry already has); build nothing."
)
@click.option(
    "--check-reproducible",
    is_flag=True,
    help="Build twice from scratch (without a daemon) and fail unless the digests match.",
)
@store_option
@output_option
def package_cmd(
    run_id,
    push,
    layout,
    tar,
    dockerfile,
    base,
    platform,
    tag,
    insecure,
    builder,
    level,
    refs_file,
    dry_run,
    check_reproducible,
    store,
    output,
):
    """Package a run as an OCI image: base + dependencies + vci runtime + model + artifacts.

    \b
    vci package RUN_ID --push registry.example.com/ml/iris     # prints registry.example.com/ml/iris@sha256:...
    vci package RUN_ID --layout out/iris --tar out/iris.tar --dry-run
    vci package RUN_ID --platform linux/amd64,linux/arm64 --push REPO   # an image index (REPO@sha256: of the index)

    With no output named, it writes an OCI layout under the local state directory.
    """
    options = Options(
        base=base,
        push=list(push),
        layout=layout,
        tar=tar,
        dockerfile=dockerfile,
        insecure=insecure,
        platform=platform,
        level=level,
        tag=tag,
        builder=builder,
    )
    settings = settings_for(store)
    if dry_run:
        result = plan(settings, run_id, options)
        rows = [
            f"  {layer['name']:<22} {layer['state']:<10} {layer['describe']}"
            + (f" [{', '.join(layer['platforms'])}]" if "platforms" in layer else "")
            for layer in result["layers"]
        ]
        emit(output, result, "\n".join([f"layer plan for run {run_id} (base {result['base']}):", *rows]))
        return
    result = package(settings, run_id, options, check_reproducible=check_reproducible, refs_file=refs_file)
    text = result["image"] or f"{result['outputs']['dockerfile']} (no image built)"
    if result.get("signed") and result["signed"]["images"]:
        text += f"\nsigned by {result['signed']['key_id']} (signature, SBOM and provenance attached)"
    emit(output, {k: v for k, v in result.items() if k != "manifest"}, text)
