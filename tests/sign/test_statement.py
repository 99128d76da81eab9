"""in-toto statements and the SLSA v1 predicate parsed by in-toto-attestation's own protos (strictly: an
unknown or misspelt field is an error), and cosign's simple-signing payload byte for byte."""

import json
import re

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

from vci.errors import VerificationError
from vci.sign.simplesigning import read_simple_signing, simple_signing_payload
from vci.sign.statement import (
    BUILD_TYPE,
    BUILDER_ID,
    CYCLONEDX_BOM,
    SLSA_PROVENANCE,
    provenance_predicate,
    read_statement,
    statement,
    subject_digests,
)

IMAGE = "sha256:" + "ab" * 32
MODEL = "sha256:" + "cd" * 32
BASE = "sha256:" + "ef" * 32
GITHUB = {
    "system": "github",
    "url": "https://github.com/acme/iris/actions/runs/42",
    "sha": "0123456789abcdef0123456789abcdef01234567",
    "actor": "ada",
    "ref": "refs/heads/main",
    "workflow": "release",
}
LOCK = [
    {"name": "scikit_learn", "version": "1.5.2", "hashes": {"sha256": "12" * 32}},
    {"name": "numpy", "version": "2.1.0"},
]


def predicate(**changes):
    args = dict(
        builder_version="0.1.0",
        run_id="20261201-120000-0123abcd",
        model_digest=MODEL,
        base_image="docker.io/library/python:3.11-slim",
        base_digest=BASE,
        lock=LOCK,
        ci=GITHUB,
        started="2026-12-01T12:00:00Z",
        finished="2026-12-01T12:00:09Z",
        parameters={"platform": "linux/arm64", "builder": "daemonless"},
    )
    return provenance_predicate(**{**args, **changes})


def parsed_statement(payload: bytes) -> Statement:
    proto = json_format.Parse(payload, statement_pb2.Statement(), ignore_unknown_fields=False)
    found = Statement.copy_from_pb(proto)
    found.validate()
    return found


def parsed_provenance(doc: dict):
    return json_format.ParseDict(doc, provenance_pb2.Provenance(), ignore_unknown_fields=False)


def test_in_toto_attestation_reads_the_statement():
    payload = statement("registry.example.com/ml/iris", IMAGE, SLSA_PROVENANCE, predicate())
    found = parsed_statement(payload)
    assert found.pb.type == "https://in-toto.io/Statement/v1"
    assert [(s.name, dict(s.digest)) for s in found.pb.subject] == [
        ("registry.example.com/ml/iris", {"sha256": "ab" * 32})
    ]
    assert found.pb.predicate_type == SLSA_PROVENANCE
    assert payload == json.dumps(json.loads(payload), sort_keys=True, separators=(",", ":")).encode()  # canonical


def test_the_slsa_predicate_has_what_the_spec_requires():
    doc = predicate()
    provenance = parsed_provenance(doc)  # every field name and type as the SLSA v1 proto has it
    build, run = provenance.build_definition, provenance.run_details
    assert build.build_type == BUILD_TYPE and run.builder.id == BUILDER_ID  # required
    assert dict(run.builder.version) == {"vci": "0.1.0"}
    external = json_format.MessageToDict(build.external_parameters)
    assert external == {
        "run": "20261201-120000-0123abcd",
        "modelDigest": MODEL,
        "baseImage": "docker.io/library/python:3.11-slim",
        "platform": "linux/arm64",
        "parameters": {"builder": "daemonless"},
    }
    assert run.metadata.invocation_id == GITHUB["url"]
    assert run.metadata.started_on.ToJsonString() == "2026-12-01T12:00:00Z"
    assert run.metadata.finished_on.ToSeconds() - run.metadata.started_on.ToSeconds() == 9
    for descriptor in build.resolved_dependencies:
        ResourceDescriptor.copy_from_pb(descriptor).validate()
    deps = {d.name: (d.uri, dict(d.digest)) for d in build.resolved_dependencies}
    assert deps["base-image"] == ("docker.io/library/python:3.11-slim", {"sha256": "ef" * 32})
    assert deps["source"] == ("git+https://github.com/acme/iris@refs/heads/main", {"gitCommit": GITHUB["sha"]})
    assert deps["scikit_learn"] == ("pkg:pypi/scikit-learn@1.5.2", {"sha256": "12" * 32})
    assert deps["numpy"] == ("pkg:pypi/numpy@2.1.0", {})  # no recorded hash: the purl alone
    ci = json_format.MessageToDict(build.internal_parameters)["ci"]
    assert ci["repository"] == "acme/iris" and ci["workflow"] == "release"  # GITHUB_REPOSITORY's form, from the URL


def test_jenkins_and_no_ci():
    jenkins = {"system": "jenkins", "url": "https://ci.example.com/job/iris/7/", "sha": None, "ref": "main"}
    doc = predicate(ci=jenkins, base_digest=None)
    provenance = parsed_provenance(doc)
    assert provenance.run_details.metadata.invocation_id == "https://ci.example.com/job/iris/7/"
    assert json_format.MessageToDict(provenance.build_definition.internal_parameters)["ci"] == {
        "system": "jenkins",
        "url": "https://ci.example.com/job/iris/7/",
        "ref": "main",
    }
    [base, *others] = provenance.build_definition.resolved_dependencies
    assert [d.name for d in others] == ["numpy", "scikit_learn"]  # no commit known: no source
    assert base.uri and not base.digest  # a base without a known digest is named, not made up
    local = parsed_provenance(predicate(ci=None))
    assert not local.run_details.metadata.invocation_id and not local.build_definition.HasField("internal_parameters")


@pytest.mark.parametrize(
    "ci, uri",
    [
        ({"system": "github", "repository": "acme/iris", "url": "https://ghe.acme.com/acme/iris/actions/runs/4"},
         "git+https://ghe.acme.com/acme/iris"),
        ({"system": "jenkins", "repository": "git@github.com:acme/iris.git", "ref": "main"},
         "git+ssh://git@github.com/acme/iris.git@main"),
        ({"system": "gitlab", "repository": "https://gitlab.com/acme/iris.git"}, "git+https://gitlab.com/acme/iris.git"),
    ],
)  # fmt: skip
def test_the_source_is_a_git_uri_whatever_form_the_ci_names_it_in(ci, uri):
    doc = predicate(ci={**ci, "sha": GITHUB["sha"]}, lock=[])
    [_, source] = doc["buildDefinition"]["resolvedDependencies"]
    assert source == {"name": "source", "uri": uri, "digest": {"gitCommit": GITHUB["sha"]}}
    assert doc["buildDefinition"]["internalParameters"]["ci"]["repository"] == ci["repository"]  # as CI named it


def test_read_statement_takes_what_it_wrote_and_refuses_other_shapes():
    payload = statement("x", IMAGE, CYCLONEDX_BOM, {"bomFormat": "CycloneDX"})
    doc = read_statement(payload)
    assert doc["predicateType"] == CYCLONEDX_BOM and subject_digests(doc) == [IMAGE]
    good = json.loads(payload)
    bad = {
        "the payload is not JSON": b"{",
        "its _type is 'https://in-toto.io/Statement/v0.1'": {**good, "_type": "https://in-toto.io/Statement/v0.1"},
        "it has no subject": {**good, "subject": []},
        r"subject\[0\] has no digest": {**good, "subject": [{"name": "x"}]},
        "predicateType is missing": {**good, "predicateType": ""},
        "predicate is missing": {k: v for k, v in good.items() if k != "predicate"},
    }
    for problem, value in bad.items():
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        with pytest.raises(VerificationError, match=f"not an in-toto Statement v1: {problem}"):
            read_statement(raw)


def test_the_simple_signing_payload_is_cosigns_byte_for_byte():
    """The bytes cosign (Go's encoding/json over sigstore's payload.Cosign) writes for the same image."""
    cosign = (
        '{"critical":{"identity":{"docker-reference":"registry.example.com/ml/iris"},'
        '"image":{"docker-manifest-digest":"' + IMAGE + '"},"type":"cosign container image signature"},'
        '"optional":null}'
    ).encode()
    assert simple_signing_payload("registry.example.com/ml/iris", IMAGE) == cosign
    assert read_simple_signing(cosign) == ("registry.example.com/ml/iris", IMAGE)
    annotated = json.loads(simple_signing_payload("r/x", IMAGE, {"run": "20261201"}))
    assert annotated["optional"] == {"run": "20261201"}


@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"nope", "it is not JSON"),
        (b'{"critical": 1}', "it has no critical section"),
        (b'{"critical": {"type": "atomic container signature"}}', "its type is 'atomic container signature'"),
        (
            b'{"critical": {"type": "cosign container image signature", "image": {}}}',
            "critical.identity.docker-reference or",
        ),
        (
            b'{"critical": {"type": "cosign container image signature", "identity": {"docker-reference": "r"},'
            b' "image": {"docker-manifest-digest": "sha256:12"}}}',
            "docker-manifest-digest 'sha256:12' is not a sha256 digest",
        ),
    ],
)
def test_a_malformed_simple_signing_payload_is_refused(payload, problem):
    with pytest.raises(VerificationError, match=re.escape(f"not a cosign simple-signing payload: {problem}")):
        read_simple_signing(payload)
