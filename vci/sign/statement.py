"""in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) and the
SLSA v1 build provenance predicate (https://slsa.dev/spec/v1.0/provenance) vci writes for an image.

A statement names its subject by digest and says what ``predicate`` of ``predicateType`` holds for it;
vci writes it as canonical JSON (sorted keys, compact), so the same build gives the same bytes to sign.
The provenance's ``buildType`` is ``BUILD_TYPE``: its ``externalParameters`` are what the person or CI
asked for (the run, its model version, the base image, the platform, the build options), its
``internalParameters`` the CI context vci found, and ``resolvedDependencies`` everything the image was
made from: the base image by digest, the source commit when CI knows it, and each locked distribution
as a ``pkg:pypi/NAME@VERSION`` purl with the sha256 of its wheel where the build recorded it.
"""

from __future__ import annotations

import json
import re

from ..digests import check_digest, hex_of
from ..errors import VerificationError
from . import canonical_json

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
CYCLONEDX_BOM = "https://cyclonedx.org/bom"  # the predicate type cosign uses for CycloneDX
BUILD_TYPE = "https://github.com/vci-dev/vci/build/v1"  # described in docs/signing.md
BUILDER_ID = "https://github.com/vci-dev/vci"
_HEX = re.compile(r"^[0-9a-f]+$")
_GITHUB_RUN = re.compile(r"^(https?://[^/]+)/([^/]+/[^/]+)/actions/runs/\d+")  # server, OWNER/REPO


def statement(subject_name: str, subject_digest: str, predicate_type: str, predicate: dict) -> bytes:
    """The canonical bytes of a Statement v1 about one subject (``sha256:HEX``)."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": hex_of(subject_digest)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return canonical_json(doc)


def read_statement(payload: bytes) -> dict:
    """The statement in ``payload``, its shape checked; VerificationError if it is no Statement v1."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise _not_statement("the payload is not JSON") from None
    if not isinstance(doc, dict):
        raise _not_statement(f"the payload is a JSON {type(doc).__name__}, not an object")
    if doc.get("_type") != STATEMENT_TYPE:
        raise _not_statement(f"its _type is {doc.get('_type')!r}")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise _not_statement("it has no subject")
    for i, subject in enumerate(subjects):
        problem = _subject_problem(subject)
        if problem:
            raise _not_statement(f"subject[{i}] {problem}")
    if not isinstance(doc.get("predicateType"), str) or not doc["predicateType"]:
        raise _not_statement("predicateType is missing")
    if not isinstance(doc.get("predicate"), dict):
        raise _not_statement("predicate is missing or not an object")
    return doc


def _subject_problem(subject) -> str | None:
    if not isinstance(subject, dict):
        return "is not an object"
    if "name" in subject and not isinstance(subject["name"], str):
        return "has a name that is not a string"
    digest = subject.get("digest")
    if not isinstance(digest, dict) or not digest:
        return "has no digest"
    if not all(isinstance(v, str) and v for v in digest.values()):
        return "has a digest value that is not a string"
    return None


def _not_statement(problem: str) -> VerificationError:
    return VerificationError(f"not an in-toto Statement v1: {problem}", hint=f"expected _type {STATEMENT_TYPE}")


def subject_digests(doc: dict) -> list[str]:
    """The ``sha256:HEX`` digests a statement (as ``read_statement`` gives it) is about."""
    found = [s["digest"].get("sha256", "") for s in doc["subject"]]
    return [f"sha256:{h}" for h in found if len(h) == 64 and _HEX.match(h)]


def provenance_predicate(
    *,
    builder_version: str,
    run_id: str,
    model_digest: str,
    base_image: str,
    base_digest: str | None,
    lock: list[dict],
    ci: dict | None,
    started: str,
    finished: str,
    parameters: dict,
) -> dict:
    """A SLSA v1 provenance predicate for one vci build (the fields are described in the module docstring).

    ``ci`` is what ``vci.ledger.ci_context()`` returns (``system``, ``url``, ``sha``, ``ref``, ...; also
    ``repository``, ``workflow``, ``job`` when the caller knows them); ``parameters`` the build options,
    ``platform`` among them."""
    options = {k: v for k, v in parameters.items() if k != "platform"}
    external = {
        "run": run_id,
        "modelDigest": check_digest(model_digest),
        "baseImage": base_image,
        "platform": parameters.get("platform", "linux/amd64"),
        "parameters": options,
    }
    context = ci_description(ci)
    metadata = {"startedOn": started, "finishedOn": finished}
    if context.get("url"):
        metadata["invocationId"] = context["url"]
    build: dict = {"buildType": BUILD_TYPE, "externalParameters": external}
    if context:
        build["internalParameters"] = {"ci": context}
    build["resolvedDependencies"] = _dependencies(base_image, base_digest, context, lock)
    return {
        "buildDefinition": build,
        "runDetails": {"builder": {"id": BUILDER_ID, "version": {"vci": builder_version}}, "metadata": metadata},
    }


def ci_description(ci: dict | None) -> dict:
    """The CI context without empty values; for a GitHub run that does not name its ``repository``,
    the ``OWNER/REPO`` its run URL holds (the form ``GITHUB_REPOSITORY`` has, which policies compare)."""
    context = {k: v for k, v in (ci or {}).items() if v not in (None, "")}
    found = _GITHUB_RUN.match(context.get("url", ""))
    if "repository" not in context and context.get("system") == "github" and found:
        context["repository"] = found.group(2)
    return context


def _dependencies(base_image: str, base_digest: str | None, context: dict, lock: list[dict]) -> list[dict]:
    base: dict = {"name": "base-image", "uri": base_image}
    if base_digest:
        base["digest"] = {"sha256": hex_of(base_digest)}
    found = [base]
    if context.get("repository") and context.get("sha"):
        found.append({"name": "source", "uri": source_uri(context), "digest": {"gitCommit": context["sha"]}})
    for entry in sorted(lock, key=lambda e: canonical_name(e["name"])):
        dependency: dict = {"name": entry["name"], "uri": pypi_purl(entry["name"], entry["version"])}
        hashes = lock_hashes(entry)
        if hashes:
            dependency["digest"] = hashes
        found.append(dependency)
    return found


def source_uri(context: dict) -> str:
    """``git+URL[@REF]`` of the CI context's repository, as SLSA's examples write a source: a GitHub
    ``OWNER/REPO`` on its server, an scp-like ``git@host:path`` (Jenkins' GIT_URL) as ``ssh://``."""
    repository = context["repository"]
    scp = re.match(r"^([\w.-]+@[\w.-]+):(?!//)(.+)$", repository)
    github = _GITHUB_RUN.match(context.get("url", ""))
    if scp:
        repository = f"ssh://{scp.group(1)}/{scp.group(2)}"
    elif "://" not in repository and context.get("system") == "github":
        repository = f"{github.group(1) if github else 'https://github.com'}/{repository}"
    return f"git+{repository}" + (f"@{context['ref']}" if context.get("ref") else "")


def lock_hashes(entry: dict) -> dict[str, str]:
    """``{alg: hex}`` of a lock entry's wheel: its ``hashes`` mapping, or a ``sha256`` key; {} when none."""
    hashes = dict(entry.get("hashes") or {})
    if entry.get("sha256"):
        hashes.setdefault("sha256", entry["sha256"])
    return {alg: value for alg, value in hashes.items() if isinstance(value, str) and _HEX.match(value)}


def pypi_purl(name: str, version: str) -> str:
    """``pkg:pypi/NAME@VERSION`` with the name as the purl spec for PyPI wants it (lower case, ``-``)."""
    return f"pkg:pypi/{canonical_name(name)}@{version}"


def canonical_name(name: str) -> str:
    """A distribution's name as PEP 503 (and the PyPI purl) writes it: ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()
