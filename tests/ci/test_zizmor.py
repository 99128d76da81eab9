"""zizmor, a static analyser for GitHub Actions, on every workflow and action: no finding unless listed.

zizmor only collects ``.github/workflows`` and ``action.yml`` files from a directory it is given as a
repository, so every file is named explicitly. It runs ``--offline`` (no GitHub API), with the
``auditor`` persona (every audit, false positives included), ``--no-ignores`` and ``--no-config`` (an
inline ``# zizmor: ignore`` comment cannot hide a finding: the accepted ones are listed, each with its
reason, in scanners/zizmor-ignore.yml) and ``--strict-collection`` (a file it cannot parse fails).
"""

import fnmatch
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

IGNORE_LIST = ROOT / "scanners" / "zizmor-ignore.yml"


def zizmor_binary() -> str:
    binary = os.environ.get("VCI_ZIZMOR") or ""
    if not os.access(binary, os.X_OK):
        pytest.fail(f"zizmor not found (VCI_ZIZMOR={binary!r}): bash scripts/test.sh installs it")
    return binary


def scanned_files(root: Path) -> list[str]:
    """Every workflow and action under ``root``'s github_actions/, relative to ``root``."""
    workflows = sorted((root / "github_actions" / "workflows").glob("*.yml"))
    actions = sorted((root / "github_actions" / "actions").glob("*/action.yml"))
    return [str(path.relative_to(root)) for path in workflows + actions]


def zizmor(root: Path, files: list[str]) -> list[dict]:
    """zizmor's findings on ``files`` (relative to ``root``): {audit, file, line, feature, desc}, from
    each finding's primary location (``feature`` is the text it flags, e.g. the ``uses:`` value)."""
    args = [
        zizmor_binary(),
        "--offline",
        "--persona",
        "auditor",
        "--no-ignores",
        "--no-config",
        "--strict-collection",
        "--no-exit-codes",
        "--format",
        "json",
        *files,
    ]
    out = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in files:
        assert f"completed {name}" in out.stderr, f"zizmor did not audit {name}: {out.stderr}"
    findings = []
    for finding in json.loads(out.stdout):
        location = next(loc for loc in finding["locations"] if loc["symbolic"]["kind"] == "Primary")
        findings.append(
            {
                "audit": finding["ident"],
                "file": location["symbolic"]["key"]["Local"]["verbatim_path"],
                "line": location["concrete"]["location"]["start_point"]["row"] + 1,
                "feature": location["concrete"]["feature"],
                "desc": finding["desc"],
            }
        )
    return findings


def accepted_by(finding: dict, entry: dict) -> bool:
    return (
        finding["audit"] == entry["audit"]
        and fnmatch.fnmatchcase(finding["file"], entry["files"])
        and fnmatch.fnmatchcase(finding["feature"], entry["feature"])
    )


def unlisted(findings: list[dict], ignores: list[dict]) -> list[str]:
    """The findings no entry of the ignore list accepts, one line each."""
    return [
        f"{f['file']}:{f['line']}: {f['audit']}: {f['desc']}: {' '.join(f['feature'].split())[:100]}"
        for f in findings
        if not any(accepted_by(f, entry) for entry in ignores)
    ]


def ignore_list() -> list[dict]:
    entries = yaml.safe_load(IGNORE_LIST.read_text())
    for entry in entries:
        assert set(entry) == {"audit", "files", "feature", "reason"}, entry
        assert len(entry["reason"].split()) >= 10, f"{entry['audit']}: say why it is accepted"
    return entries


def test_zizmor_finds_nothing_unlisted_in_the_workflows_and_actions():
    files = scanned_files(ROOT)
    assert len(files) >= 10 and "github_actions/actions/approval/action.yml" in files
    findings, ignores = zizmor(ROOT, files), ignore_list()
    problems = unlisted(findings, ignores)
    assert not problems, "zizmor findings not in scanners/zizmor-ignore.yml:\n" + "\n".join(problems)
    stale = [e for e in ignores if not any(accepted_by(f, e) for f in findings)]
    assert not stale, f"entries of zizmor-ignore.yml that match no finding (remove them): {stale}"


def test_zizmor_fails_an_unpinned_action_and_a_workflow_run_trigger(tmp_path):
    """The same scan on a copy whose release workflow uses actions/checkout@v5 and is triggered by
    workflow_run: both are findings the ignore list does not accept."""
    shutil.copytree(ROOT / "github_actions", tmp_path / "github_actions")
    release = tmp_path / "github_actions" / "workflows" / "release.yml"
    text = release.read_text()
    pinned = "actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09 # v5.1.0"
    assert pinned in text and "  push:\n" in text
    text = text.replace(pinned, "actions/checkout@v5", 1)
    trigger = '  workflow_run:\n    workflows: ["build"]\n    types: [completed]\n'
    text = text.replace("  push:\n", trigger + "  push:\n")
    release.write_text(text)
    problems = unlisted(zizmor(tmp_path, scanned_files(tmp_path)), ignore_list())
    assert any("unpinned-uses" in p and "actions/checkout@v5" in p for p in problems), problems
    assert any("dangerous-triggers" in p for p in problems), problems
    assert all(p.startswith("github_actions/workflows/release.yml:") for p in problems), problems
