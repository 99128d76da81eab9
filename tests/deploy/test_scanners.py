"""checkov, a widely used Kubernetes scanner, on what `vci render` produces: no finding beyond the ignore list."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vci.config import load_settings
from vci.deploy import target_for
from vci.deploy.manifests import to_yaml

ROOT = Path(__file__).resolve().parents[2]
IGNORE = ROOT / "scanners" / "checkov-ignore.yml"
IMAGE = "registry.example.com/ml/iris@sha256:" + "ab" * 32
SIZED = {"replicas": 2, "resources": {"cpu": "500m", "memory": "1Gi"}}
ENVIRONMENTS = {  # representative: without and with resources, autoscaled, with a canary and an Ingress
    "minimal": {"namespace": "ml-min"},
    "sized": {"namespace": "ml-sized", **SIZED},
    "autoscaled": {"namespace": "ml-auto", **SIZED, "autoscaling": {"min_replicas": 2, "max_replicas": 6}},
    "production": {
        "namespace": "ml-prod",
        **SIZED,
        "canary": {"steps": [10, 50], "interval": "30s"},
        "requires_approval": True,
        "image_pull_secret": "registry-login",
        "ingress": {"host": "iris.example.com", "class": "nginx", "tls_secret": "iris-tls"},
        "network_policy": {"from_namespaces": ["ingress-nginx"]},
    },
}


def checkov() -> str:
    binary = os.environ.get("VCI_CHECKOV") or ""
    if not os.access(binary, os.X_OK):
        pytest.fail(f"checkov not found (VCI_CHECKOV={binary!r}): bash scripts/test.sh installs it")
    return binary


def render_all(project: Path) -> Path:
    """Each environment's `vci render` output, and the production canary's Deployment, one file each."""
    config = {
        "project": "iris",
        "environments": {name: {"target": "kubernetes", **values} for name, values in ENVIRONMENTS.items()},
    }
    (project / "vci.yaml").write_text(yaml.safe_dump(config))
    out = project / "manifests"
    out.mkdir()
    for name in ENVIRONMENTS:
        rendered = subprocess.run(
            [sys.executable, "-m", "vci", "render", IMAGE, "--env", name],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rendered.returncode == 0, rendered.stderr
        (out / f"{name}.yaml").write_text(rendered.stdout)
    target = target_for(load_settings(cwd=project, environ={}), "production")
    canary = target.canary_deployment({"image": IMAGE}, "r20261201-000000-abcd", replicas=1)
    (out / "production-canary.yaml").write_text(to_yaml([canary]))
    return out


def findings(directory: Path, outcome: str = "failed_checks") -> set[tuple[str, str]]:
    """(check id, environment) of every failed (or ``passed_checks``) check, the environment being the file's name."""
    quiet = ["--quiet"] if outcome == "failed_checks" else []  # --quiet leaves the passed checks out
    out = subprocess.run(
        [checkov(), "-d", str(directory), "--framework", "kubernetes", "-o", "json", *quiet, "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]  # 1: findings (listed below)
    reports = json.loads(out.stdout) if out.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    return {
        (c["check_id"], Path(c["file_path"]).stem)
        for r in reports
        if isinstance(r, dict)
        for c in r["results"][outcome]
    }


def unlisted(found: set[tuple[str, str]], ignored: list[dict]) -> set[tuple[str, str]]:
    return {
        (check, where)
        for check, where in found
        if not any(i["check"] == check and i["environment"] in ("*", where) for i in ignored)
    }


def test_rendered_manifests_have_no_finding_beyond_the_ignore_list(tmp_path):
    ignored = yaml.safe_load(IGNORE.read_text())
    assert all(entry.get("reason") for entry in ignored), "every ignored finding says why"
    found = findings(render_all(tmp_path))
    assert unlisted(found, ignored) == set()
    stale = [i for i in ignored if not any(c == i["check"] and i["environment"] in ("*", w) for c, w in found)]
    assert stale == [], "entries that match no finding any more: remove them"
    # every environment was scanned: each file's pods passed the NetworkPolicy check (CKV2_K8S_6), the
    # canary's through the production environment's policy, which selects stable and canary pods alike
    passed = findings(tmp_path / "manifests", "passed_checks")
    assert {w for c, w in passed if c == "CKV2_K8S_6"} == {*ENVIRONMENTS, "production-canary"}


def test_the_scan_catches_a_weakened_manifest(tmp_path):
    directory = render_all(tmp_path)
    sized = directory / "sized.yaml"
    weakened = sized.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    assert weakened != sized.read_text()
    sized.write_text(weakened)
    assert unlisted(findings(directory), yaml.safe_load(IGNORE.read_text())) == {("CKV_K8S_22", "sized")}
