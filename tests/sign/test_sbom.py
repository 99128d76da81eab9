"""The SBOM: CycloneDX 1.6 JSON that the library's own schema validator accepts, the same bytes for the
same image (in another process too), licences and hashes where the image records them."""

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from vci.errors import UsageError
from vci.sign.sbom import Component, deb_components, python_components, render_sbom

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "sha256:" + "ab" * 32
STATUS = """Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: perl-base
Status: install ok installed
Architecture: amd64
Version: 1:5.36.0-7+deb12u1
"""


def dist(site, name, version, *headers):
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", *headers]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description\n")


@pytest.fixture()
def site(tmp_path):
    site = tmp_path / "site"
    dist(site, "scikit-learn", "1.5.2", "License-Expression: BSD-3-Clause", "License: ignored when an expression is")
    dist(site, "numpy", "2.1.0", "License: Copyright (c) 2005, NumPy Developers.\n        All rights reserved.")
    dist(site, "requests", "2.32.3", "License: Apache-2.0")
    dist(site, "Flask", "3.0.0", "Classifier: License :: OSI Approved :: BSD License", "Classifier: Framework :: Flask")
    dist(site, "mystery", "0.1", "License: UNKNOWN")
    (site / "broken-1.0.dist-info").mkdir()  # no METADATA: not a distribution pip would list
    (site / "bare-2.0.dist-info").mkdir()
    (site / "bare-2.0.dist-info" / "METADATA").write_bytes(b"Name: bare\r\nVersion: 2.0\r\nLicense: MIT")  # no body
    return site


LOCK = [
    {"name": "scikit_learn", "version": "1.5.2", "hashes": {"sha256": "12" * 32}},
    {"name": "numpy", "version": "2"},
]


def validate(sbom: bytes) -> dict:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.decode())
    assert error is None, error
    return json.loads(sbom)


def test_python_components_with_licences_and_the_locks_hashes(site):
    found = {c.name: c for c in python_components(site, LOCK)}
    assert sorted(found) == ["Flask", "bare", "mystery", "numpy", "requests", "scikit-learn"]
    assert found["bare"].licenses == ("MIT",) and found["bare"].version == "2.0"
    assert found["scikit-learn"].licenses == ("BSD-3-Clause",)
    assert found["scikit-learn"].hashes == {"sha256": "12" * 32}
    assert found["scikit-learn"].purl == "pkg:pypi/scikit-learn@1.5.2"
    assert found["numpy"].licenses == () and found["numpy"].hashes == {}  # a licence text is no name; 2 != 2.1.0
    assert found["requests"].licenses == ("Apache-2.0",)
    assert found["Flask"].licenses == ("BSD License",) and found["Flask"].purl == "pkg:pypi/flask@3.0.0"
    assert found["mystery"].licenses == ()
    assert python_components(None, LOCK) == []


def test_deb_components_are_the_installed_packages_as_purls():
    found = deb_components(STATUS)
    assert [(c.name, c.version) for c in found] == [
        ("base-files", "12.4+deb12u5"),
        ("libc6", "2.36-9+deb12u4"),
        ("perl-base", "1:5.36.0-7+deb12u1"),
    ]
    purl = PackageURL.from_string(found[2].purl)
    assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", "perl-base", "1:5.36.0-7+deb12u1")
    assert purl.qualifiers == {"arch": "amd64"}
    assert deb_components("") == []


def test_the_sbom_validates_against_cyclonedx_1_6(site):
    components = python_components(site, LOCK) + deb_components(STATUS)
    when = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    doc = validate(render_sbom("registry.example.com/ml/iris", IMAGE, components, timestamp=when))
    assert doc["specVersion"] == "1.6" and doc["bomFormat"] == "CycloneDX"
    assert doc["metadata"]["component"]["type"] == "container"
    assert doc["metadata"]["component"]["name"] == "registry.example.com/ml/iris"
    assert doc["metadata"]["timestamp"].startswith("2026-12-01T12:00:00")
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    sklearn = by_ref["pkg:pypi/scikit-learn@1.5.2"]
    assert sklearn["hashes"] == [{"alg": "SHA-256", "content": "12" * 32}]
    assert sklearn["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]
    assert by_ref["pkg:pypi/flask@3.0.0"]["licenses"] == [{"license": {"name": "BSD License"}}]
    assert "pkg:deb/debian/perl-base@1%3A5.36.0-7%2Bdeb12u1?arch=amd64" in by_ref
    [image] = [d for d in doc["dependencies"] if d["ref"] == f"image@{IMAGE}"]
    assert sorted(image["dependsOn"]) == sorted(by_ref)


def fifty_components() -> list[Component]:
    licences = ("MIT", "Apache-2.0", "BSD-3-Clause", "MIT OR Apache-2.0", "Python Software Foundation License")
    return [
        Component(
            f"pkg{i}", f"1.{i}", "pypi", {"sha256": f"{i:02x}" * 32}, (licences[i % 5],), f"pkg:pypi/pkg{i}@1.{i}"
        )
        for i in range(50)
    ]


def test_the_same_image_gives_the_same_bytes_in_any_process():
    """Set and dict orders differ between processes (PYTHONHASHSEED): the bytes must not."""
    components = fifty_components()
    here = render_sbom("r/x", IMAGE, components)
    assert render_sbom("r/x", IMAGE, list(reversed(components))) == here
    code = (
        "import json, sys\nfrom vci.sign.sbom import Component, render_sbom\n"
        "components = [Component(**{**c, 'licenses': tuple(c['licenses'])}) for c in json.load(sys.stdin)]\n"
        f"sys.stdout.buffer.write(render_sbom('r/x', {IMAGE!r}, components))"
    )
    given = json.dumps([dataclasses.asdict(c) for c in components])
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    other = subprocess.run(
        [sys.executable, "-c", code], input=given.encode(), capture_output=True, env=env, timeout=120
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout == here
    doc = validate(here)
    assert doc["serialNumber"].startswith("urn:uuid:") and len(doc["components"]) == 50
    licences = {c["bom-ref"]: c["licenses"] for c in doc["components"]}
    assert licences["pkg:pypi/pkg3@1.3"] == [{"expression": "MIT OR Apache-2.0"}]
    assert licences["pkg:pypi/pkg4@1.4"] == [{"license": {"name": "Python Software Foundation License"}}]
    assert render_sbom("r/x", "sha256:" + "cd" * 32, components) != here  # another image, another serial number


def test_a_subject_that_is_no_digest_is_refused():
    with pytest.raises(UsageError, match="not a sha256 digest"):
        render_sbom("r/x", "latest", [])
