"""Two CPU architectures from one build: ``--platform linux/amd64,linux/arm64`` gives an OCI image index.

Against real components: the distribution registry (pushes, blob mounts, its request log), skopeo
(``inspect --raw``, ``copy --all``), pip (each platform's wheels) and the ELF headers of what it installed.
The base is an index whose arm64 image is empty (tests/images.py ``index_base_layout`` says why); what is
checked is what vci adds: the dependency layers, the shared layers, the index, its promotion.
"""

import gzip
import io
import json
import subprocess
import tarfile

import pytest

from images import index_base_layout
from registry import blob_mounts, blob_uploads
from release.counting_proxy import CountingProxy
from vci.build import Options
from vci.build.package import package, plan
from vci.config import load_settings
from vci.deploy.kube import KubeTarget
from vci.errors import BuildError, RequirementError, UsageError
from vci.oci import OCI_INDEX
from vci.oci.registry import RegistryClient
from vci.release.images import copy_to_environment

from .conftest import log_scaler
from .dists import install, publish
from .models import YamlScaler
from .test_lock import fakes  # noqa: F401 (a fixture)

PLATFORMS = "linux/amd64,linux/arm64"
EM_X86_64, EM_AARCH64 = 62, 183  # e_machine values of the ELF specification


def skopeo(*args) -> str:
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def index_base(tmp_path_factory):
    return index_base_layout(tmp_path_factory.mktemp("index-base"))


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, layer_cache, registry, index_base):
    """A YamlScaler run (PyYAML: a C extension per platform) packaged for both platforms and pushed, with
    the registry's log of that push."""
    tmp = tmp_path_factory.mktemp("index-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VCI_CACHE_DIR", str(layer_cache))
        patch.delenv("SOURCE_DATE_EPOCH", raising=False)
        settings = load_settings({"store": str(tmp / "store"), "project": "scaler"}, cwd=tmp, environ={})
        run = log_scaler(settings, tmp, "factor: 3", cls=YamlScaler, requirements=["PyYAML"])
        mark = registry.mark()
        repo = f"{registry.host}/ml/multi"
        result = package(settings, run.id, Options(base=index_base, platform=PLATFORMS, push=[repo]))
        yield result, registry.requests_since(mark), settings, run


def children(registry, digest: str) -> dict[str, dict]:
    """``{platform: image manifest}`` of the index ``digest`` in ml/multi."""
    client = RegistryClient(registry.host)
    index = json.loads(client.get_manifest("ml/multi", digest)[0])
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": json.loads(
            client.get_manifest("ml/multi", m["digest"])[0]
        )
        for m in index["manifests"]
    }


def test_the_pushed_index_passes_skopeo_inspect_raw_and_copy_all(pushed, registry, tmp_path):
    result, _, _, _ = pushed
    ref = f"docker://{registry.host}/ml/multi@{result['digest']}"
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", ref))
    assert raw["mediaType"] == OCI_INDEX and result["manifest"] == raw
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in raw["manifests"]}
    assert listed == result["platforms"] and list(listed) == PLATFORMS.split(",")
    skopeo("copy", "--all", "--quiet", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'all'}:copy")
    copied = skopeo("inspect", "--raw", f"oci:{tmp_path / 'all'}:copy").encode()
    assert json.loads(copied) == raw  # the same index, each platform's image with it
    for platform, digest in listed.items():
        arch = skopeo("inspect", "--tls-verify=false", "--config", f"{ref.rsplit('@', 1)[0]}@{digest}")
        assert json.loads(arch)["architecture"] == platform.split("/")[1]


def test_runtime_model_and_artifact_layers_are_one_blob_sent_once(pushed, registry):
    result, logged, _, _ = pushed
    images = children(registry, result["digest"])
    amd, arm = (images[p]["layers"] for p in PLATFORMS.split(","))
    named = {layer["digest"]: layer["name"] for layer in result["layers"]}
    assert [named[d["digest"]] for d in amd] == ["dependencies", "runtime", "model", "artifact factor"]
    assert [d["digest"] for d in amd[1:]] == [d["digest"] for d in arm[1:]]  # shared: the same blobs
    assert amd[0]["digest"] != arm[0]["digest"]  # each platform's own wheels
    sent = [r.uri.split("digest=")[1].split("&")[0] for r in blob_uploads(logged) if "digest=" in r.uri]
    assert sorted(sent) == sorted(set(sent))  # nothing sent twice
    assert {d["digest"] for d in amd + arm} <= set(sent)
    shared = [r for r in result["layers"] if r["name"] in ("runtime", "model", "artifact factor")]
    assert all(r["platforms"] == PLATFORMS.split(",") for r in shared) and len(result["layers"]) == 5


def elf_machines(layer_bytes: bytes) -> dict[str, int]:
    """``{path: e_machine}`` of every ELF object in a gzip layer (the ELF header: e_machine at byte 18)."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer_bytes))) as tar:
        for member in tar:
            head = tar.extractfile(member).read(20) if member.isfile() else b""
            if head[:4] == b"\x7fELF":
                found[member.name] = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return found


def test_each_dependency_layer_holds_only_objects_of_its_machine(pushed, registry):
    result, _, _, _ = pushed
    client = RegistryClient(registry.host)
    for platform, machine in (("linux/amd64", EM_X86_64), ("linux/arm64", EM_AARCH64)):
        deps = children(registry, result["digest"])[platform]["layers"][0]["digest"]
        objects = elf_machines(b"".join(client.get_blob("ml/multi", deps)))
        assert any("/yaml/_yaml." in path for path in objects), objects  # PyYAML's C extension is there
        assert set(objects.values()) == {machine}, (platform, objects)


def test_promoting_an_index_moves_about_what_one_image_does(pushed, registry):
    result, _, _, _ = pushed
    moved, mark = {}, registry.mark()
    with CountingProxy(registry.port) as proxy:
        for name, digest in (("single", result["platforms"]["linux/amd64"]), ("index", result["digest"])):
            before = proxy.received
            env = load_settings(
                {"environments": {"prod": {"target": "kubernetes", "repository": f"{proxy.host}/ml/prod-{name}"}}},
                environ={},
            ).environment("prod")
            copied = copy_to_environment(f"{proxy.host}/ml/multi@{digest}", env)
            assert copied["transfer"]["uploaded"] == [] and copied["transfer"]["digest"] == digest
            moved[name] = proxy.received - before
    print(f"promotion within one registry: one image {moved['single']} bytes, the index {moved['index']} bytes")
    assert moved["index"] < 2 * moved["single"] and moved["index"] < 12 * 1024  # per platform: manifests, not layers
    assert set(children_in(registry, "ml/prod-index", result["digest"])) == set(result["platforms"].values())
    logged = registry.requests_since(mark)
    assert blob_uploads(logged) == [] and blob_mounts(logged) and all(r.status == 201 for r in blob_mounts(logged))


def children_in(registry, repo: str, digest: str) -> list[str]:
    """The image digests the index ``digest`` lists, each checked to be readable in ``repo``."""
    client = RegistryClient(registry.host)
    index = json.loads(client.get_manifest(repo, digest)[0])
    return [client.get_manifest(repo, m["digest"])[2] for m in index["manifests"]]


def test_layout_and_tar_of_an_index(pushed, tmp_path, index_base):
    result, _, settings, run = pushed
    options = Options(base=index_base, platform=PLATFORMS, layout=str(tmp_path / "out"), tar=str(tmp_path / "x.tar"))
    again = package(settings, run.id, options, check_reproducible=True)  # every platform rebuilt from scratch
    assert again["digest"] == result["digest"] and again["reproducible"]  # the same inputs, the same index
    assert json.loads(skopeo("inspect", "--raw", f"oci:{tmp_path / 'out'}:{run.id}")) == result["manifest"]
    with tarfile.open(tmp_path / "x.tar") as tar:
        index = json.loads(tar.extractfile("index.json").read())
        [loaded] = json.loads(tar.extractfile("manifest.json").read())
        names = set(tar.getnames())
    assert index["manifests"][0]["digest"] == result["digest"]
    amd64 = json.loads(skopeo("inspect", "--config", f"docker-archive:{tmp_path / 'x.tar'}"))
    assert amd64["architecture"] == "amd64" and loaded["Config"] in names  # docker load: the first platform
    for digest in result["platforms"].values():
        assert f"blobs/sha256/{digest.split(':')[1]}" in names  # every platform's image is in the archive


def test_the_dry_run_lists_shared_layers_once(pushed, index_base):
    _, _, settings, run = pushed
    rows = plan(settings, run.id, Options(base=index_base, platform=PLATFORMS))["layers"]
    by_name = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row["platforms"])
    assert by_name["dependencies"] == [["linux/amd64"], ["linux/arm64"]]
    assert by_name["runtime"] == [PLATFORMS.split(",")] and by_name["model"] == [PLATFORMS.split(",")]
    assert all(row["state"] == "cached" for row in rows)


def test_render_of_a_run_for_two_platforms_pins_the_index(pushed, tmp_path, index_base):
    result, _, settings, run = pushed
    env = {"target": "kubernetes", "repository": "registry.example/ml/scaler", "platform": PLATFORMS}
    cluster = load_settings(
        {"store": settings.store, "project": "scaler", "environments": {"staging": {**env, "base_image": index_base}}},
        cwd=tmp_path,
        environ={},
    )
    rendering = KubeTarget(cluster, cluster.environment("staging")).render(run.id)
    [deployment] = [o for o in rendering.objects if o["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example/ml/scaler@{result['digest']}"


def test_a_requirement_without_a_wheel_for_one_platform_is_named(settings, tmp_path, fakes, index_base):  # noqa: F811
    site, index = fakes
    install(site, "vci-fake-x86-only", "1.0")
    publish(index, "vci-fake-x86-only", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    run = log_scaler(settings, tmp_path, "4", requirements=["vci-fake-x86-only"])
    options = Options(base=index_base, platform=PLATFORMS, layout=str(tmp_path / "x"))
    named = r"no wheel of vci-fake-x86-only==1\.0 for CPython 3\.\d+ on linux/arm64"
    with pytest.raises(RequirementError, match=named):
        package(settings, run.id, options)


def test_a_single_platform_base_is_no_base_for_another(settings, tmp_path, scratch_base):
    run = log_scaler(settings, tmp_path, "5")
    with pytest.raises(BuildError, match=r"is a linux/amd64 image, not linux/arm64"):
        package(settings, run.id, Options(base=scratch_base, platform=PLATFORMS, layout=str(tmp_path / "x")))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"platform": "linux/amd64,linux/amd64"}, "each platform once"),
        ({"platform": "linux/amd64,"}, "each platform once"),
        ({"platform": PLATFORMS, "dockerfile": "ctx"}, "--emit-dockerfile writes one platform's image"),
        ({"platform": PLATFORMS, "builder": "docker"}, "the Docker Engine builds one platform's image"),
    ],
)
def test_what_an_index_cannot_be_is_refused_before_any_build(options, message):
    with pytest.raises(UsageError, match=message):
        Options(**options)


def test_a_signed_index_is_verified_with_each_platform_images_attestations(
    pushed, registry, tmp_path, monkeypatch, index_base
):
    """The index is signed; each platform's image is signed and carries its own SBOM and provenance; a
    policy asking for all three checks the index's signature and every image's attestations."""
    from vci.sign.keys import generate_key_pair, load_public_key
    from vci.sign.statement import SLSA_PROVENANCE
    from vci.trust import Policy
    from vci.verification import check_image, evidence_report

    result, _, settings, run = pushed
    private, public = generate_key_pair(tmp_path / "keys")
    monkeypatch.setenv("VCI_SIGNING_KEY_FILE", str(private))
    options = Options(base=index_base, platform=PLATFORMS, push=[f"{registry.host}/ml/multi"])
    signed = package(settings, run.id, options)
    assert signed["digest"] == result["digest"] and len(signed["signed"]["images"]) == 3
    key = load_public_key(public)
    client = RegistryClient(registry.host)
    policy = Policy((key,), frozenset({"signature", "sbom", "provenance"}))
    verified = check_image(policy, client, "ml/multi", result["digest"])
    assert verified.signed_by == [key.key_id] and len(verified.attestations) == 4  # 2 kinds x 2 platforms
    arm = result["platforms"]["linux/arm64"]
    attestations = evidence_report(client, "ml/multi", arm, [key])["attestations"]
    (provenance,) = [a for a in attestations if a["predicate_type"] == SLSA_PROVENANCE]
    assert provenance["predicate"]["buildDefinition"]["externalParameters"]["platform"] == "linux/arm64"
