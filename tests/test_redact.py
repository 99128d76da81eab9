"""The secret rules: which variable names and values are refused, and what masking removes from text."""

import io
import logging

import pytest

from vci import redact
from vci.errors import UsageError
from vci.redact import (
    RedactingFormatter,
    credential_kind,
    mask_url,
    refuse_secret_variable,
    remember,
    secret_name,
)

SECRET_NAMES = [
    "DB_PASS", "DB_PASSWORD", "PGPASSWORD", "MYSQL_PWD", "APIKEY", "API_KEY", "OPENAI_API_KEY", "DATABASE_URL",
    "DB_URL", "PASSPHRASE", "GPG_PASSPHRASE", "GITHUB_PAT", "GITHUB_TOKEN", "HF_TOKEN", "AUTH_HEADER", "AUTH",
    "BASIC_AUTH", "OAUTH_CLIENT", "SLACK_WEBHOOK_URL", "SENTRY_DSN", "SESSION_COOKIE", "SESSION", "COOKIE_SECRET",
    "MONGO_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING", "REDIS_CONN_STR", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "SSH_PRIVATE_KEY", "TLS_KEY", "STRIPE_KEYS", "GOOGLE_CREDENTIALS",
    "JWT", "BEARER", "PASSWORD_SALT", "VCI_REGISTRY_PASSWORD", "VCI_TOKEN", "JENKINS_TOKEN", "django.secret",
    "x-api-key", "ACCESSKEY",
]  # fmt: skip
HARMLESS_NAMES = [
    "LOG_LEVEL", "MODEL_NAME", "PATH", "PATTERN", "KEYBOARD_LAYOUT", "AUTHOR", "AUTHORS", "PYTHONPATH",
    "OMP_NUM_THREADS", "MODEL_URL", "BATCH_SIZE", "SESSION_TIMEOUT", "TOKEN_TTL", "PASSWORD_LENGTH",
    "KEY_COUNT", "CACHE_ENABLED", "HOME", "TZ", "PASSENGER_COUNT", "MONKEY_MODE", "COMPASS_HEADING", "PWD",
    "OLDPWD", "ORACLE_SID",
]  # fmt: skip
CREDENTIAL_VALUES = {
    "postgres://app:hunter2@db.internal:5432/app": "URL with user info",
    "https://ghp_token@github.com/org/repo.git": "URL with user info",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3": "JSON Web",
    "AKIAIOSFODNN7EXAMPLE": "AWS access key id",
    "ASIAY34FZKBOKMUTVV7A": "AWS access key id",
    "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8": "GitHub token",
    "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW": "GitHub token",
    "glpat-xYz12345678901234567": "GitLab token",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx": "Slack token",
    "https://hooks.slack.com/services/T000/B000/XXXXXXXX": "Slack webhook",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----": "PEM block",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv": "Google API key",
    "sk_live_51H8abcdefghijklmnop": "Stripe key",
    "sk-proj-abcdefghij1234567890ABCD": "OpenAI key",
    "hf_abcdefghijklmnopqrstuvwxyz0123456789": "Hugging Face",
    "Bearer abcdef0123456789": "Authorization header",
    "Basic dXNlcjpwYXNz": "Authorization header",
    "Zx8q2LmP9vR4tY7wK3nB6hJ1dF5sG0aQ": "random",
    "k7Hq2/Vx9pLmN3rT8sWz+4bYcF6gJ1dA0eR5uKiO": "random",  # an AWS secret access key's shape
    "q1w2E3r4T5y6U7i8O9p0AsDf": "random",
}
HARMLESS_VALUES = [
    "debug", "iris", "1", "", "en_US.UTF-8", "/opt/models/iris/weights.joblib", "s3://ml-models/iris/v2",
    "https://example.com/models/iris?version=2", "20261124-071203-3f9a", "sha256:" + "ab" * 32,
    "550e8400-e29b-41d4-a716-446655440000", "3f786850e387550fdab836ed7e6dc881de23001b",
    "ResNet50-ImageNet1K-V2-weights",
    "my-Model_Name-2024-Version3", "sentence-transformers/all-MiniLM-L6-v2", "meta-llama/Llama-3.1-8B-Instruct",
    "torch-2.13.0+cpu-cp311-cp311-linux_x86_64", "Standard_D4s_v3_eastus2_pool01", "CUDA_VISIBLE_DEVICES=0,1,2,3",
    "MyCompany.ML.Models.IrisClassifierV2", "EfficientNetB7_ImageNet_NoTop_2024", "Europe/Berlin", "hunter2",
    "Basic authentication", "Bearer tokens expire",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_recognised(name):
    assert secret_name(name)
    with pytest.raises(UsageError, match=f"environment variable {name} looks like a secret \\(by its name\\)"):
        refuse_secret_variable(name, "x")


@pytest.mark.parametrize("name", HARMLESS_NAMES)
def test_harmless_names_pass(name):
    assert not secret_name(name)
    refuse_secret_variable(name, "debug")


@pytest.mark.parametrize("value, kind", CREDENTIAL_VALUES.items())
def test_credential_values_are_refused_whatever_the_name_and_never_echoed(value, kind):
    assert kind.lower() in (credential_kind(value) or "").lower()
    with pytest.raises(UsageError) as info:
        refuse_secret_variable("SETTING", value)
    message = str(info.value)
    assert "environment variable SETTING looks like a secret (its value looks like" in message
    assert "Kubernetes Secret" in message
    assert value not in message and value[:12] not in message


@pytest.mark.parametrize("value", HARMLESS_VALUES)
def test_harmless_values_pass(value):
    assert credential_kind(value) is None
    refuse_secret_variable("SETTING", value)


def test_a_value_vci_holds_is_refused_under_any_name(monkeypatch):
    monkeypatch.setattr(redact, "_remembered", set())
    remember("correct-horse-battery", "short")  # under MIN_REMEMBERED: not remembered
    assert credential_kind("prefix correct-horse-battery") == "a credential vci holds"
    assert credential_kind("short") is None


def test_mask_url_hides_user_info_and_query_values_but_keeps_digests():
    masked = mask_url("https://user:pw@h.io/v2/a/blobs/uploads/u?_state=SECRET&digest=sha256:ab&token=t0k")
    assert masked == "https://***@h.io/v2/a/blobs/uploads/u?_state=***&digest=sha256:ab&token=***"
    assert mask_url("https://bob:pw@host:8443/proxy") == "https://***@host:8443/proxy"
    assert mask_url("http://127.0.0.1:8080/predict") == "http://127.0.0.1:8080/predict"


BOTOCORE_DUMPS = [  # what botocore and urllib3 log at DEBUG, with a known token and key
    "Sending http request: <AWSPreparedRequest stream_output=False, method=PUT, url=http://127.0.0.1:9/b/k, "
    "headers={'X-Amz-Security-Token': b'SESSIONTOKEN/+=abc', 'Authorization': b'AWS4-HMAC-SHA256 "
    "Credential=ASIAEXAMPLEKEYID0000/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, "
    "Signature=0123456789abcdef0123456789abcdef'}>",
    "CanonicalRequest:\nPUT\n/b/k\n\nhost:127.0.0.1:9\nx-amz-security-token:SESSIONTOKEN/+=abc\n",
    "Signature:\n0123456789abcdef0123456789abcdef0123456789abcdef",
    "https://b.s3.amazonaws.com/k?X-Amz-Credential=ASIAEXAMPLEKEYID0000%2F2026&X-Amz-Security-Token=SESSIONTOKEN"
    "&X-Amz-Signature=0123456789abcdef",
    "GET https://user:SESSIONTOKEN@registry.example/v2/ -> 401",
    "headers: {'authorization': 'Bearer SESSIONTOKEN', 'Cookie': 'sid=SESSIONTOKEN'}",
]


@pytest.mark.parametrize("dump", BOTOCORE_DUMPS)
def test_redact_removes_tokens_signatures_and_key_ids_from_debug_dumps(dump, monkeypatch):
    monkeypatch.setattr(redact, "_remembered", set())
    text = redact.redact(dump)
    for secret in ("SESSIONTOKEN", "0123456789abcdef", "ASIAEXAMPLEKEYID0000"):
        assert secret not in text, text
    assert "***" in text


def test_the_formatter_redacts_messages_arguments_and_tracebacks(monkeypatch):
    monkeypatch.setattr(redact, "_remembered", set())
    remember("the-registry-password")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("vci.test.redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("login with %s", "the-registry-password")
        try:
            raise RuntimeError("boom: Authorization: Basic dXNlcjpwYXNz")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "the-registry-password" not in out and "dXNlcjpwYXNz" not in out
    assert "DEBUG login with ***" in out and "RuntimeError: boom" in out
