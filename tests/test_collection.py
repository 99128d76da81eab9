"""Every folder of tests is collected: pytest skips folders whose name matches ``norecursedirs`` (its default
skips any folder named ``build``, which once left tests/build out of every run, CI's included)."""

from fnmatch import fnmatch
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_folder_of_tests_matches_a_pattern_pytest_skips(pytestconfig):
    patterns = pytestconfig.getini("norecursedirs")
    skipped = sorted(
        str(folder.relative_to(TESTS))
        for folder in TESTS.rglob("*")
        if folder.is_dir()
        and any(folder.glob("test_*.py"))
        and any(fnmatch(part, pattern) for part in folder.relative_to(TESTS).parts for pattern in patterns)
    )
    assert skipped == [], f"pytest would never run the tests in {skipped} (norecursedirs: {patterns})"
