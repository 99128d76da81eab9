"""Image references: accepted forms, Docker Hub defaults, round trips, errors that name the problem."""

import pytest

from vci.errors import UsageError
from vci.refs import (
    DOCKER_HUB,
    Reference,
    check_tag,
    is_image_reference,
    masked_reference,
    parse_reference,
    split_repository,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest",
    [
        ("python:3.11-slim", DOCKER_HUB, "library/python", "3.11-slim", None),
        ("ubuntu", DOCKER_HUB, "library/ubuntu", None, None),
        ("docker.io/bitnami/redis:7", DOCKER_HUB, "bitnami/redis", "7", None),
        ("index.docker.io/library/alpine", DOCKER_HUB, "library/alpine", None, None),
        ("org/model", DOCKER_HUB, "org/model", None, None),
        (f"localhost:5000/a/b@{DIGEST}", "localhost:5000", "a/b", None, DIGEST),
        ("127.0.0.1:5000/x:tag", "127.0.0.1:5000", "x", "tag", None),
        ("localhost/ml/iris", "localhost", "ml/iris", None, None),
        (
            f"registry.example.com/ml/iris:v1.2_rc-3@{DIGEST}",
            "registry.example.com",
            "ml/iris",
            "v1.2_rc-3",
            DIGEST,
        ),
        ("ghcr.io/org/a.b__c-d/e", "ghcr.io", "org/a.b__c-d/e", None, None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
    ],
)
def test_parses_valid_references(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_str_round_trips_and_context():
    text = f"127.0.0.1:5000/ml/iris:v1@{DIGEST}"
    ref = parse_reference(text)
    assert str(ref) == text
    assert parse_reference(str(ref)) == ref
    assert ref.context() == "127.0.0.1:5000/ml/iris"
    assert str(parse_reference("python:3.11-slim")) == "registry-1.docker.io/library/python:3.11-slim"


def test_identifier_prefers_digest_then_tag_then_latest():
    assert parse_reference(f"h.io/a:t@{DIGEST}").identifier == DIGEST
    assert parse_reference("h.io/a:t").identifier == "t"
    assert parse_reference("h.io/a").identifier == "latest"


def test_with_digest_and_with_tag_return_new_references():
    ref = parse_reference("h.io/a:t")
    pinned = ref.with_digest(DIGEST)
    assert (pinned.tag, pinned.digest) == ("t", DIGEST) and ref.digest is None
    assert ref.with_tag("v2") == Reference("h.io", "a", "v2", None)
    with pytest.raises(UsageError, match="bad digest"):
        ref.with_digest("sha256:123")
    with pytest.raises(UsageError, match="bad tag"):
        ref.with_tag("no spaces")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Registry.io/Ml/iris", "upper-case"),
        ("h.io/ml/Iris:v1", "upper-case"),
        ("h.io/a@sha256:abc", "bad digest"),
        ("h.io/a@md5:" + "0" * 32, "bad digest"),
        ("h.io/a@sha256:" + "AB" * 32, "bad digest"),
        ("127.0.0.1:5000", "no repository"),
        ("localhost:5000", "no repository"),
        ("registry.example.com:443", "no repository"),
        ("h.io/", "no repository"),
        ("h.io/a:", "bad tag"),
        ("h.io/a:-x", "bad tag"),
        ("h.io/a:t@g", "bad digest"),
        ("h.io/a:" + "x" * 129, "bad tag"),
        ("h.io/a//b", "invalid characters"),
        ("h.io/a-/b", "invalid characters"),
        ("bad_host.io:99999999/a", "not a valid registry host"),
    ],
)
def test_malformed_references_name_the_problem(text, problem):
    with pytest.raises(UsageError, match=problem) as info:
        parse_reference(text)
    assert info.value.exit_code == 2 and info.value.hint


def test_is_image_reference_follows_the_contract():
    assert is_image_reference("registry.example.com/ml/iris@" + DIGEST)
    assert is_image_reference("ml/iris")
    assert is_image_reference("iris@" + DIGEST)
    assert not is_image_reference("20261124-0712-3f9a")
    assert not is_image_reference("python:3.11")


def test_split_repository_refuses_tags():
    assert split_repository("127.0.0.1:5000/ml/iris") == ("127.0.0.1:5000", "ml/iris")
    with pytest.raises(UsageError, match="must not carry"):
        split_repository("127.0.0.1:5000/ml/iris:v1")


@pytest.mark.parametrize("tag", ["v1\n", "ü1", "v1/2", "bad tag", ".x", "-x", "x" * 129, "", "v1\t", "١٢"])
def test_tags_a_registry_refuses_are_refused(tag):
    with pytest.raises(UsageError, match="bad tag") as info:
        check_tag(tag)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("tag", ["v1", "1.0.0-rc.1", "_x", "20261124-071203-3f9a", "A" * 128, "latest"])
def test_tags_of_the_oci_grammar_pass(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "text",
    [
        "alice:S3cretPw@h.io/ml/iris",
        "https://alice:S3cretPw@h.io/ml/iris",
        "alice:S3c/retPw@h.io/ml/iris",
        "alice:S3c@retPw@h.io/ml/iris:v1",
        f"alice:S3cretPw@h.io/ml/iris@{DIGEST}",
        "S3cretPw@h.io:5000/ml/iris",
    ],
)
def test_credentials_in_a_reference_are_refused_and_never_repeated(text):
    with pytest.raises(UsageError, match="carries credentials") as info:
        parse_reference(text)
    assert "S3c" not in str(info.value) and "***@h.io" in str(info.value)
    with pytest.raises(UsageError) as info:
        split_repository(text)
    assert "S3c" not in str(info.value)


def test_a_scheme_is_refused_and_a_digest_is_not_taken_for_credentials():
    with pytest.raises(UsageError, match="URL scheme"):
        parse_reference("https://h.io/ml/iris")
    assert masked_reference(f"python@{DIGEST}") == f"python@{DIGEST}"
    assert masked_reference(f"h.io/a@{DIGEST}") == f"h.io/a@{DIGEST}"
    assert masked_reference("h.io/a:t@g") == "h.io/a:t@g"
