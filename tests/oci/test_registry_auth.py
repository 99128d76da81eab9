"""Registry authentication against real registries: htpasswd over TLS, bearer tokens from a token server."""

import base64
import json
import logging

import pytest

from fakes.token_server import TokenServer
from registry import RegistryServer, blob_mounts
from vci.errors import AuthError, RegistryError
from vci.oci.auth import Credentials, parse_challenge, resolve_credentials
from vci.oci.registry import RegistryClient
from vci.oci.transfer import copy_image, push_image
from vci.redact import mask_url

from .conftest import make_app

USERS = {"ci": "s3cret-pw"}


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    with RegistryServer(tmp_path_factory.mktemp("tls-registry"), users=USERS, tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("token-registry")
    users = {"ci": ("s3cret-pw", {"pull", "push"}), "reader": ("r", {"pull"})}
    with TokenServer(root / "tokens", users) as tokens:
        with RegistryServer(root / "registry", token=tokens.registry_auth_config()) as server:
            yield server, tokens


@pytest.fixture
def no_ambient_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("VCI_REGISTRY_USER", raising=False)
    monkeypatch.delenv("VCI_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


def test_tls_with_basic_credentials_and_a_trusted_ca(tls_registry, no_ambient_credentials, tmp_path, caplog):
    image = make_app(tmp_path)
    client = RegistryClient(
        tls_registry.host,
        username="ci",
        password="s3cret-pw",
        insecure=False,
        ca_bundle=str(tls_registry.cert),
    )
    with caplog.at_level(logging.DEBUG):
        result = push_image(client, image, "ml/iris", tag="v1")
        assert client.get_manifest("ml/iris", "v1")[2] == image.digest == result.digest
    assert client.ping().startswith("https://")
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "s3cret-pw" not in text and base64.b64encode(b"ci:s3cret-pw").decode() not in text


def test_tls_without_or_with_wrong_credentials_is_an_auth_error(tls_registry, no_ambient_credentials, tmp_path):
    image = make_app(tmp_path)
    anonymous = RegistryClient(tls_registry.host, insecure=False, ca_bundle=str(tls_registry.cert))
    with pytest.raises(AuthError, match=f"registry {tls_registry.host} rejected the credentials for ml/iris") as info:
        push_image(anonymous, image, "ml/iris")
    assert "VCI_REGISTRY_USER" in info.value.hint and info.value.exit_code == 11
    wrong = RegistryClient(
        tls_registry.host, username="ci", password="nope", ca_bundle=str(tls_registry.cert), insecure=False
    )
    with pytest.raises(AuthError):
        wrong.get_manifest("ml/iris", "v1")


def test_untrusted_certificate_is_refused_unless_insecure(tls_registry, no_ambient_credentials):
    with pytest.raises(RegistryError, match="cannot reach") as info:
        RegistryClient(tls_registry.host, username="ci", password="s3cret-pw", insecure=False, retries=0).ping()
    assert "TLS certificate" in info.value.hint and not isinstance(info.value, AuthError)
    insecure = RegistryClient(tls_registry.host, username="ci", password="s3cret-pw", insecure=True)
    assert insecure.ping() == f"https://{tls_registry.host}"


def test_credentials_from_environment_and_docker_config(tls_registry, no_ambient_credentials, monkeypatch, tmp_path):
    image = make_app(tmp_path)
    monkeypatch.setenv("VCI_REGISTRY_USER", "ci")
    monkeypatch.setenv("VCI_REGISTRY_PASSWORD", "s3cret-pw")
    push_image(RegistryClient(tls_registry.host, ca_bundle=str(tls_registry.cert), insecure=False), image, "env/x")
    monkeypatch.delenv("VCI_REGISTRY_USER")
    monkeypatch.delenv("VCI_REGISTRY_PASSWORD")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(b"ci:s3cret-pw").decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {tls_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    client = RegistryClient(tls_registry.host, ca_bundle=str(tls_registry.cert), insecure=False)
    assert client.get_manifest("env/x", image.digest)[2] == image.digest


def test_bearer_tokens_from_the_token_server(token_registry, no_ambient_credentials, tmp_path, caplog):
    server, tokens = token_registry
    image = make_app(tmp_path)
    client = RegistryClient(server.host, username="ci", password="s3cret-pw")
    with caplog.at_level(logging.DEBUG):
        push_image(client, image, "ml/staging", tag="v1")
    fetched = client.auth.token_requests
    push_image(client, image, "ml/staging", tag="v1")
    assert client.auth.token_requests == fetched, "tokens are cached per scope"
    assert {tuple(i["scopes"]) for i in tokens.issued} >= {("repository:ml/staging:pull,push",)}
    issued_tokens = [t for t in caplog.text.split() if t.count(".") == 2 and len(t) > 100]
    assert issued_tokens == [], "no token in the logs"
    mark = server.mark()
    result = copy_image(client, f"{server.host}/ml/staging:v1", "ml/prod", tag="live")
    assert result.digest == image.digest
    mounts = blob_mounts(server.requests_since(mark))
    assert mounts and {r.status for r in mounts} == {201}
    assert any(
        set(i["scopes"]) == {"repository:ml/prod:pull,push", "repository:ml/staging:pull"} for i in tokens.issued
    ), "mount asks for push on the target and pull on the source"


def test_bearer_auth_failures(token_registry, no_ambient_credentials, tmp_path):
    server, _ = token_registry
    image = make_app(tmp_path)
    with pytest.raises(AuthError, match="rejected the credentials for ml/anon"):
        push_image(RegistryClient(server.host), image, "ml/anon")
    with pytest.raises(AuthError, match="token service"):
        push_image(RegistryClient(server.host, username="ci", password="wrong"), image, "ml/x")
    reader = RegistryClient(server.host, username="reader", password="r")
    with pytest.raises(AuthError, match="ml/readonly"):
        push_image(reader, image, "ml/readonly")


def test_challenge_parsing_and_url_masking():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer" and params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    masked = mask_url("https://user:pw@h.io/v2/a/blobs/uploads/u?_state=SECRET&digest=sha256:ab&token=t0k")
    assert "pw" not in masked and "SECRET" not in masked and "t0k" not in masked and "digest=sha256:ab" in masked
    assert "pw" not in repr(Credentials("u", "pw"))
    assert resolve_credentials("h.io", environ={"VCI_REGISTRY_USER": "u", "VCI_REGISTRY_PASSWORD": "p"}) == Credentials(
        "u", "p"
    )
