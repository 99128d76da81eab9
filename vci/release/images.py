"""Moving a cluster release's image into another environment's repository: by digest first, the tag last.

The image's signatures and attestations (cosign's ``.sig``/``.att`` tags) go with it, so the destination
verifies the same evidence the source did.
"""

from __future__ import annotations

from ..errors import ConfigError, IntegrityError, UsageError
from ..oci.evidence import copy_evidence
from ..oci.registry import RegistryClient
from ..oci.transfer import copy_image
from ..refs import parse_reference, split_repository


def _client_and_repo(dst):

    repository = dst.repository
    if not repository:
        raise ConfigError(
            f"environment {dst.name!r} has no repository to promote the image into",
            hint=f"set environments.{dst.name}.repository in vci.yaml",
        )
    registry, repo = split_repository(repository)
    return RegistryClient(registry, insecure=dst.insecure), repository, repo


def copy_to_environment(image: str, dst, *, tag: bool = True, source_insecure=None) -> dict:
    """Copy ``image`` (``repo@sha256:...``) by digest into ``dst``'s repository: blobs mounted within one
    registry, streamed between two; the manifest bytes verbatim, so the digest is preserved. With ``tag``
    the environment's name is then tagged (``tag_in_environment`` does it later otherwise)."""

    ref = parse_reference(image)
    if not ref.digest:
        raise UsageError(f"{image} has no digest: promotion moves digests, never tags")
    client, repository, repo = _client_and_repo(dst)
    source = None if ref.registry == client.registry else RegistryClient(ref.registry, insecure=source_insecure)
    result = copy_image(client, ref, repo, tag=dst.name if tag else None, source_client=source)
    if result.digest != ref.digest:
        raise IntegrityError(f"copying {image} gave {result.digest}", hint="the registry rewrote the manifest")
    evidence = copy_evidence(client, ref.context(), ref.digest, repo, source_client=source)
    transfer = result.to_json()
    transfer["bytes_moved"] += evidence.bytes_moved
    for outcome in ("uploaded", "mounted", "skipped"):
        transfer[outcome] += getattr(evidence, outcome)
    return {"image": f"{repository}@{ref.digest}", "transfer": transfer}


def tag_in_environment(image: str, dst) -> None:
    """Point ``dst``'s environment tag (its name) at ``image``'s digest, already in its repository."""

    client, _, repo = _client_and_repo(dst)
    data, media_type, _ = client.get_manifest(repo, parse_reference(image).digest)
    client.put_manifest(repo, data, media_type, dst.name)
