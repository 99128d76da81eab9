"""The evidence of a built image: the SBOM lists what its layers hold (the locked wheels with the hashes the
store recorded, vci, the base's Debian packages) and the provenance names the run, base and CI, both for
the image's digest; the base's dpkg status is read from its layers, local or streamed from a registry."""

import dataclasses
import json
import logging

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

from vci import __version__
from vci.build import Options
from vci.build.evidence import base_dpkg_status, image_evidence
from vci.build.image import resolve_base
from vci.build.package import package
from vci.build.plan import DEPS_ROOT, python_of
from vci.build.wheels import Dependencies, install_dependencies
from vci.config import load_settings
from vci.fetch import cache_root
from vci.ledger import ci_context
from vci.oci.image import append_layers, scratch_image
from vci.oci.layers import Entry, LayerCache
from vci.oci.layout import read_layout
from vci.oci.registry import RegistryClient
from vci.oci.transfer import push_image
from vci.sign.statement import SLSA_PROVENANCE, read_statement, subject_digests

from .conftest import log_scaler

STATUS = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n"
GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "acme/iris",
    "GITHUB_RUN_ID": "42",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF": "refs/heads/main",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, scratch_base):
    """A run (its lock: cloudpickle) packaged into a layout, the image read back, its dependency directory
    and the wheel hashes its store recorded. The layer cache is this module's own: a dependency directory
    some other test built already would be reused, and the hashes recorded in that test's store only."""
    tmp_path = tmp_path_factory.mktemp("evidence")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
        patch.delenv("SOURCE_DATE_EPOCH", raising=False)
        settings = load_settings({"store": str(tmp_path / "store"), "project": "scaler"}, cwd=tmp_path, environ={})
        run = log_scaler(settings, tmp_path, "3")
        result = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "image")))
        deps = Dependencies(run.manifest, python_of(run.manifest), "linux/amd64")
        site = install_dependencies(deps, cache_root() / "oci", DEPS_ROOT, run.store)  # the build's, cached
    image = read_layout(tmp_path / "image")
    assert image.digest == result["digest"]
    return run, image, site, json.loads((tmp_path / "store" / deps.hashes_key()).read_text())["wheels"]


def evidence_of(run, image, site, base_spec, base_digest, dpkg_status=STATUS, cache_dir=None):
    return image_evidence(
        run,
        image,
        base_spec=base_spec,
        base_digest=base_digest,
        site_dir=site,
        dpkg_status=dpkg_status,
        ci=ci_context(GITHUB_ENV),
        started="2026-12-01T12:00:00Z",
        finished="2026-12-01T12:00:05Z",
        parameters={"platform": "linux/amd64"},
        subject_name="registry.example.com/ml/scaler",
        cache_dir=cache_dir,
    )


def test_the_sbom_lists_the_locked_wheels_with_the_recorded_hashes(built, scratch_base):
    run, image, site, wheels = built
    base, _ = resolve_base(scratch_base, python_of(run.manifest), "linux/amd64", None)
    evidence = evidence_of(run, image, site, scratch_base, base.digest)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(evidence.sbom.decode()) is None
    sbom = json.loads(evidence.sbom)
    assert sbom["metadata"]["component"]["version"] == image.digest
    assert sbom["metadata"]["timestamp"].startswith(image.config["created"].removesuffix("Z"))  # the image's time
    by_name = {c["name"]: c for c in sbom["components"]}
    [locked] = run.manifest["lock"]
    pickled = by_name[locked["name"]]
    assert pickled["version"] == locked["version"]
    assert pickled["hashes"] == [{"alg": "SHA-256", "content": wheels["cloudpickle"]["sha256"]}]
    assert by_name["vci"]["version"] == __version__ and by_name["libc6"]["purl"].startswith("pkg:deb/debian/libc6@")
    assert evidence == evidence_of(run, image, site, scratch_base, base.digest)  # same image, same bytes


def test_the_provenance_is_about_the_image_and_names_run_base_lock_and_ci(built, scratch_base):
    run, image, site, wheels = built
    base, _ = resolve_base(scratch_base, python_of(run.manifest), "linux/amd64", None)
    doc = read_statement(evidence_of(run, image, site, scratch_base, base.digest).provenance)
    assert subject_digests(doc) == [image.digest] and doc["predicateType"] == SLSA_PROVENANCE
    provenance = json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance(), ignore_unknown_fields=False)
    external = json_format.MessageToDict(provenance.build_definition.external_parameters)
    assert external["run"] == run.id and external["modelDigest"] == run.version
    deps = {d.name: (d.uri, dict(d.digest)) for d in provenance.build_definition.resolved_dependencies}
    assert deps["base-image"] == (scratch_base, {"sha256": base.digest.removeprefix("sha256:")})
    [locked] = run.manifest["lock"]
    assert deps[locked["name"]] == (
        f"pkg:pypi/cloudpickle@{locked['version']}",
        {"sha256": wheels["cloudpickle"]["sha256"]},
    )
    assert deps["source"] == (
        "git+https://github.com/acme/iris@refs/heads/main",
        {"gitCommit": GITHUB_ENV["GITHUB_SHA"]},
    )
    assert provenance.run_details.metadata.invocation_id == "https://github.com/acme/iris/actions/runs/42"
    assert dict(provenance.run_details.builder.version) == {"vci": __version__}


def test_the_sbom_is_reused_for_the_same_image_and_components_only(built, scratch_base, tmp_path):
    run, image, site, _ = built
    fresh = evidence_of(run, image, site, scratch_base, None)
    assert evidence_of(run, image, site, scratch_base, None, cache_dir=tmp_path) == fresh
    [kept] = (tmp_path / "sbom").iterdir()
    assert (
        kept.read_bytes() == fresh.sbom
        and evidence_of(run, image, site, scratch_base, None, cache_dir=tmp_path) == fresh
    )
    other = STATUS.replace("2.36-9+deb12u4", "2.36-9+deb12u7")  # the base's libc6 was patched: another SBOM
    patched = evidence_of(run, image, site, scratch_base, None, dpkg_status=other, cache_dir=tmp_path)
    assert "2.36-9+deb12u7" in patched.sbom.decode() and len(list((tmp_path / "sbom").iterdir())) == 2


def layered_base(tmp_path, *layers: dict[str, bytes]):
    """An image whose layers hold the given ``{path: bytes}`` files, lowest first."""
    cache = LayerCache(tmp_path / "layers")
    built = [
        cache.build(f"l{i}", [Entry.bytes(path, data) for path, data in files.items()], epoch=0)
        for i, files in enumerate(layers)
    ]
    return append_layers(scratch_image(), built, epoch=0)


def test_the_topmost_status_wins_and_a_whiteout_hides_it(tmp_path):
    old, new = b"Package: a\nStatus: install ok installed\nVersion: 1\n", STATUS.encode()
    other = {"etc/hostname": b"base\n"}
    assert base_dpkg_status(layered_base(tmp_path / "a", {"var/lib/dpkg/status": old}, other)) == old.decode()
    two = layered_base(tmp_path / "b", {"var/lib/dpkg/status": old}, {"var/lib/dpkg/status": new}, other)
    assert base_dpkg_status(two) == new.decode()
    hidden = layered_base(tmp_path / "c", {"var/lib/dpkg/status": old}, {"var/lib/dpkg/.wh.status": b""})
    assert base_dpkg_status(hidden) is None
    replaced = layered_base(
        tmp_path / "d", {"var/lib/dpkg/status": old}, {"var/lib/.wh..wh..opq": b"", "var/lib/dpkg/status": new}
    )
    assert base_dpkg_status(replaced) == new.decode()  # an opaque directory, then a status of its own
    assert base_dpkg_status(layered_base(tmp_path / "e", other)) is None
    assert base_dpkg_status(scratch_image()) is None


def test_a_base_in_the_registry_is_streamed_and_cached_by_digest(tmp_path, registry, caplog):
    local = layered_base(tmp_path, {"var/lib/dpkg/status": STATUS.encode()}, {"etc/hostname": b"x\n"})
    client = RegistryClient(registry.host)
    push_image(client, local, "ml/base", tag="v1")
    remote = client.get_image(f"{registry.host}/ml/base:v1")
    assert remote.digest == local.digest and all(layer.path is None for layer in remote.layers)
    assert base_dpkg_status(remote, cache_dir=tmp_path / "cache") == STATUS
    gone = [dataclasses.replace(layer, origin=f"{registry.host}/ml/absent") for layer in remote.layers]
    unreachable = dataclasses.replace(remote, layers=tuple(gone))
    assert base_dpkg_status(unreachable, cache_dir=tmp_path / "cache") == STATUS  # from the cache, not the registry
    with caplog.at_level(logging.WARNING, logger="vci"):
        assert base_dpkg_status(unreachable) is None
    assert "could not read the base image's packages" in caplog.text


def test_the_debian_base_lists_its_packages(tmp_path):
    from images import base_image_layout
    from vci.sign.sbom import deb_components

    base = read_layout(base_image_layout(), "base")
    names = {c.name for c in deb_components(base_dpkg_status(base) or "")}
    assert {"python3", "libc6", "base-files"} <= names
