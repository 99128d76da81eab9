"""Requirements are pinned to the installed versions; cloudpickle and vci are added; bad ones are refused; the
whole closure is locked from what is installed."""

from importlib import metadata

import pytest

import vci
from build.dists import install
from vci import __version__
from vci.errors import RequirementError
from vci.modeldir import manifest_problem
from vci.requirements import lock_lines, lock_requirements, pin_requirement, pin_requirements


class Echo:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data


def test_installed_package_is_pinned():
    assert pin_requirement("pytest") == f"pytest=={metadata.version('pytest')}"
    assert pin_requirement("PyYAML>=5") == f"PyYAML=={metadata.version('PyYAML')}"


def test_exact_pin_is_kept_and_automatic_ones_added():
    installed = metadata.version("requests")  # a pin to another version is refused (tests/test_log_time.py)
    pins = pin_requirements([f"requests=={installed}"])
    assert f"requests=={installed}" in pins
    assert f"cloudpickle=={metadata.version('cloudpickle')}" in pins
    assert f"vci=={__version__}" in pins


def test_missing_package_is_kept_with_a_warning(caplog):
    assert pin_requirement("surely-not-installed-pkg>=2") == "surely-not-installed-pkg>=2"
    assert "not installed here" in caplog.text


def test_requirements_file(tmp_path):
    (tmp_path / "req.txt").write_text("# comment\n\npytest  # inline\n")
    assert f"pytest=={metadata.version('pytest')}" in pin_requirements(tmp_path / "req.txt")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("scikit learn", "malformed requirement"),
        ("pytest<1", "does not match the installed"),
        ("pkg @ https://example.com/pkg.whl", "points at a URL"),
    ],
)
def test_bad_requirements(text, fragment):
    with pytest.raises(RequirementError, match=fragment):
        pin_requirements([text])


def test_options_and_missing_file(tmp_path):
    with pytest.raises(RequirementError, match="not supported"):
        pin_requirements(["--index-url https://x"])
    with pytest.raises(RequirementError, match="does not exist"):
        pin_requirements(tmp_path / "nope.txt")


@pytest.fixture()
def site(tmp_path, monkeypatch):
    """A site directory on sys.path for distributions made up for the test (installed as pip leaves them)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def names_and_versions(lock):
    return [(e["name"], e["version"]) for e in lock]


def test_the_lock_is_the_whole_closure_with_markers_and_extras_evaluated_here(site):
    install(
        site, "vci-fake-top", "1.0", ["vci-fake-a>=1", 'vci-fake-b; extra == "more"', 'vci-fake-win; os_name == "nt"']
    )
    install(site, "vci-fake-a", "1.2", ["vci-fake-c", 'vci-fake-old; python_version < "3"'])
    install(site, "vci-fake-b", "2.0", ["vci"])  # vci ships in the runtime layer, never in the lock
    install(site, "vci-fake-c", "0.3")
    install(site, "vci-fake-user", "5", ["vci-fake-top[more]"])
    cloudpickle = ("cloudpickle", metadata.version("cloudpickle"))
    plain = lock_requirements(pin_requirements(["vci-fake-top"]))
    assert names_and_versions(plain) == [
        cloudpickle,
        ("vci-fake-a", "1.2"),
        ("vci-fake-c", "0.3"),
        ("vci-fake-top", "1.0"),
    ]
    with_extra = lock_requirements(pin_requirements(["vci-fake-top[more]"]))
    assert ("vci-fake-b", "2.0") in names_and_versions(with_extra)
    assert next(e for e in with_extra if e["name"] == "vci-fake-top")["extras"] == ["more"]
    reached_later = lock_requirements(pin_requirements(["vci-fake-top", "vci-fake-user"]))  # the extra asked 2nd
    assert names_and_versions(reached_later) == sorted(names_and_versions(with_extra) + [("vci-fake-user", "5")])
    assert lock_lines(with_extra)[-1] == "vci-fake-top[more]==1.0"


def test_what_the_lock_cannot_name_is_refused_or_marked(site, caplog):
    install(site, "vci-fake-broken", "1.0", ["vci-fake-gone>=2"])
    with pytest.raises(
        RequirementError, match="vci-fake-broken requires vci-fake-gone>=2, which is not installed here"
    ):
        lock_requirements(pin_requirements(["vci-fake-broken"]))
    with pytest.raises(RequirementError, match="not installed here and not pinned to one version"):
        lock_requirements(["vci-fake-nowhere>=1"])
    [absent] = [e for e in lock_requirements(["vci-fake-nowhere==1.0"]) if e["name"] == "vci-fake-nowhere"]
    assert absent == {"name": "vci-fake-nowhere", "version": "1.0", "dependencies_locked": False}
    assert "its own dependencies unlocked" in caplog.text
    assert lock_lines([absent]) == [
        "vci-fake-nowhere==1.0  (not installed when logged: its dependencies are not locked)"
    ]


def test_a_run_manifest_carries_the_lock_and_its_schema_checks_it(site, tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    install(site, "vci-fake-top", "1.0", ["vci-fake-a"])
    install(site, "vci-fake-a", "1.2")
    run = vci.init("locked", store=str(tmp_path / "store"))
    run.log_model(Echo)
    run.log_requirements(["vci-fake-top"])
    run.commit()
    assert run.manifest["lock"] == lock_requirements(run.manifest["requirements"])
    assert manifest_problem(run.manifest) is None
    assert manifest_problem({k: v for k, v in run.manifest.items() if k != "lock"}) is None  # logged before locks
    entry = {"name": "numpy", "version": "2.0"}
    for lock, problem in [
        ({"numpy": "2.0"}, "'lock' is dict, not list"),
        (["numpy==2.0"], "'lock[0]' is str, not object"),
        ([{"name": "numpy"}], "'lock[0].version' is missing"),
        ([{**entry, "extras": "all"}], "'lock[0].extras' is str, not list"),
        ([{**entry, "dependencies_locked": True}], "only false is recorded"),
        ([entry, {"name": "NumPy", "version": "2.1"}], "'lock' names NumPy twice"),
    ]:
        assert problem in manifest_problem({**run.manifest, "lock": lock}), lock
