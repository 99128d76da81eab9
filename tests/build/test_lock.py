"""The dependency layer is the run's lock, exactly: made-up distributions installed here, their wheels on a
find-links directory (pip, for real), the hashes recorded in the store at the first build and required after."""

import gzip
import json
import subprocess
import sys
import tarfile

import pytest

from vci.build import Options
from vci.build.package import package, plan
from vci.build.plan import DEPS_ROOT
from vci.build.wheels import Dependencies, install_dependencies
from vci.errors import IntegrityError, RequirementError
from vci.oci.layout import blob_path
from vci.store import open_store

from .conftest import env_without_debug, log_scaler
from .dists import install, publish


@pytest.fixture()
def fakes(tmp_path, monkeypatch):
    """``(site, index)``: installed here (on sys.path) and published (pip's find-links for the build)."""
    site, index = tmp_path / "site", tmp_path / "index"
    site.mkdir()
    index.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return site, index


def dependency_layer_members(layout, result) -> list[str]:
    [deps] = [layer for layer in result["layers"] if layer["name"] == "dependencies"]
    with gzip.open(blob_path(layout, deps["digest"])) as raw, tarfile.open(fileobj=raw) as tar:
        return tar.getnames()


def test_the_dependency_layer_holds_the_locked_versions_not_the_newest(settings, tmp_path, scratch_base, fakes):
    site, index = fakes
    install(site, "vci-fake-top", "1.0", ["vci-fake-dep>=1"])
    install(site, "vci-fake-dep", "1.0")
    publish(index, "vci-fake-top", "1.0", ["vci-fake-dep>=1"])
    publish(index, "vci-fake-dep", "1.0")
    publish(index, "vci-fake-dep", "2.0")  # released after the model was trained: the image must not get it
    run = log_scaler(settings, tmp_path, "2", requirements=["vci-fake-top"])
    assert [e["name"] for e in run.manifest["lock"]] == ["cloudpickle", "vci-fake-dep", "vci-fake-top"]
    result = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "image")))
    members = dependency_layer_members(tmp_path / "image", result)
    infos = sorted(m.rsplit("/", 1)[-1] for m in members if m.endswith(".dist-info"))
    assert [i.split("-")[0] for i in infos] == ["cloudpickle", "vci_fake_dep", "vci_fake_top"]
    assert "vci_fake_dep-1.0.dist-info" in infos
    pyc = f"{DEPS_ROOT.lstrip('/')}/vci_fake_dep/__pycache__/__init__.{sys.implementation.cache_tag}.pyc"
    assert pyc in members  # bytecode compiled ahead
    [record] = (tmp_path / "store" / "locks").glob("*.json")
    wheels = json.loads(record.read_text())["wheels"]
    assert wheels["vci-fake-dep"]["file"] == "vci_fake_dep-1.0-py3-none-any.whl"
    assert sorted(wheels) == ["cloudpickle", "vci-fake-dep", "vci-fake-top"]


def test_a_later_build_gets_the_recorded_wheels_or_fails(settings, tmp_path, scratch_base, fakes, monkeypatch):
    site, index = fakes
    install(site, "vci-fake-pinned", "1.0")
    wheel = publish(index, "vci-fake-pinned", "1.0")
    run = log_scaler(settings, tmp_path, "3", requirements=["vci-fake-pinned"])
    first = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "a")))
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "fresh-cache"))  # another machine: nothing cached
    again = package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "b")))
    assert again["digest"] == first["digest"]
    wheel.write_bytes(wheel.read_bytes() + b"\0")  # the index now serves other bytes for vci-fake-pinned 1.0
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "third-cache"))
    with pytest.raises(IntegrityError, match="vci-fake-pinned") as refused:
        package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "c")))
    assert "differ from those recorded at the first build" in refused.value.message


def test_a_locked_distribution_without_a_wheel_for_the_platform_is_named(settings, tmp_path, scratch_base, fakes):
    site, index = fakes
    install(site, "vci-fake-native", "1.0")
    publish(index, "vci-fake-native", "1.0", tag="cp311-cp311-win_amd64")  # published, for Windows only
    run = log_scaler(settings, tmp_path, "4", requirements=["vci-fake-native"])
    with pytest.raises(RequirementError, match=r"no wheel of vci-fake-native==1\.0 for CPython 3\.\d+ on linux/amd64"):
        package(settings, run.id, Options(base=scratch_base, layout=str(tmp_path / "x")))


def test_what_the_images_platform_needs_beyond_the_lock_is_named(settings, tmp_path, fakes):
    """Logged on x86_64, where a requirement for aarch64 does not hold: an arm64 image would lack it."""
    site, index = fakes
    requires = ['vci-fake-arm-helper; platform_machine == "aarch64"']
    install(site, "vci-fake-portable", "1.0", requires)
    publish(index, "vci-fake-portable", "1.0", requires)
    run = log_scaler(settings, tmp_path, "5", requirements=["vci-fake-portable"])
    arm = Dependencies(run.manifest, run.manifest["environment"]["python"].rsplit(".", 1)[0], "linux/arm64")
    with pytest.raises(RequirementError, match=r"vci-fake-arm-helper \(required by vci-fake-portable\)"):
        install_dependencies(arm, tmp_path / "cache", DEPS_ROOT, open_store(settings.store))


def test_the_layer_is_keyed_and_counted_by_the_lock(settings, tmp_path, scratch_base, fakes):
    site, index = fakes
    install(site, "vci-fake-app", "1.0", ["vci-fake-lib"])
    install(site, "vci-fake-lib", "1.0")
    old = log_scaler(settings, tmp_path, "6", requirements=["vci-fake-app"])
    (site / "vci_fake_lib-1.0.dist-info").rename(site / "vci_fake_lib-1.1.dist-info")
    (site / "vci_fake_lib-1.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vci-fake-lib\nVersion: 1.1\n"
    )
    new = log_scaler(settings, tmp_path, "6", requirements=["vci-fake-app"])  # same direct pins, other closure
    assert new.manifest["requirements"] == old.manifest["requirements"] and new.version != old.version
    rows = [plan(settings, r.id, Options(base=scratch_base))["layers"] for r in (old, new)]
    deps = [next(row for row in layers if row["name"] == "dependencies") for layers in rows]
    assert deps[0]["describe"].startswith("3 locked distributions for CPython")  # cloudpickle, app, lib
    assert (
        Dependencies(old.manifest, "3.11", "linux/amd64").key()
        != Dependencies(new.manifest, "3.11", "linux/amd64").key()
    )


def test_runs_show_prints_the_lock(settings, tmp_path, fakes):
    site, _ = fakes
    install(site, "vci-fake-shown", "2.5", ["vci-fake-under"])
    install(site, "vci-fake-under", "0.1")
    run = log_scaler(settings, tmp_path, "7", requirements=["vci-fake-shown"])
    env = {**env_without_debug(), "VCI_STORE": settings.store}
    shown = subprocess.run(
        [sys.executable, "-m", "vci", "runs", "show", run.id], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    lock = shown.stdout.split("lock (3 distributions, the dependency layer exactly):\n")[1].splitlines()
    assert [line.strip() for line in lock] == [
        f"cloudpickle=={run.manifest['lock'][0]['version']}",
        "vci-fake-shown==2.5",
        "vci-fake-under==0.1",
    ]
