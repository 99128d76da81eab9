"""Requirements are pinned to the installed versions; cloudpickle and vci are added; bad ones are refused."""

from importlib import metadata

import pytest

from vci import __version__
from vci.errors import RequirementError
from vci.requirements import pin_requirement, pin_requirements


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
