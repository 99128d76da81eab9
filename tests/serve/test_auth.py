"""Bearer-token auth of the prediction routes: REST, V2 (Triton's client) and gRPC metadata, tokens rotated in
their file without a restart, open health routes, and no token in a log line, an error or the model's environment."""

from __future__ import annotations

import json
import os

import grpc
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from vci.serve.auth import Tokens

from .conftest import build_model_dir, http_call, post_json, serve_until_exit
from .models import EnvPeekModel

OLD, NEW = "tok-" + "a1" * 16, "tok-" + "b2" * 16


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path, *tokens: str) -> None:
    """Replace the file whole, as a Secret's update does (a new inode under the same name)."""
    tmp = path.with_suffix(".new")
    tmp.write_text("".join(f"{t}\n" for t in tokens))
    os.replace(tmp, path)


@pytest.fixture
def guarded(start_server, tmp_path):
    token_file = tmp_path / "tokens"
    write_tokens(token_file, OLD)
    server = start_server(EnvPeekModel, grpc=True, extra_env={"VCI_AUTH_TOKEN_FILE": str(token_file)})
    server.wait_state()
    return server, token_file


def test_predict_needs_an_accepted_token_and_says_so_without_a_hint(guarded):
    server, _ = guarded
    status, headers, body = post_json(server, "/predict", [1])
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="vci"'
    assert "Authorization: Bearer" in body["error"]
    status, headers, body = post_json(server, "/predict", [1], bearer(OLD[:-1] + "0"))
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
    assert body["error"] == "the bearer token is not accepted"
    assert post_json(server, "/predict", [1], {"Authorization": f"Basic {OLD}"})[0] == 401
    status, _, body = post_json(server, "/predict", [1], bearer(OLD))
    assert status == 200 and body == {"token_in_env": False, "echo": [1]}
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/ready", "/v2/models/serve-tests/ready"):
        assert http_call(server, "GET", path)[0] == 200, path
    assert http_call(server, "GET", "/metadata")[0] == 401
    log = server.log()
    assert OLD not in log and OLD[:-1] not in log


def test_the_docs_page_is_open_and_its_document_declares_the_bearer_scheme(guarded):
    """A browser opens /docs without a token; the page's Authorize button then asks for one, because the
    document says the prediction routes need it (and health does not)."""
    server, _ = guarded
    assert http_call(server, "GET", "/docs")[0] == 200
    status, _, body = http_call(server, "GET", "/openapi.json")
    document = json.loads(body)
    assert status == 200 and document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}] and document["paths"]["/healthz"]["get"]["security"] == []
    from openapi_spec_validator import validate

    validate(document)  # still a valid OpenAPI 3.1 document


def test_a_rotated_token_file_is_read_without_a_restart(guarded):
    server, token_file = guarded
    assert post_json(server, "/predict", [1], bearer(OLD))[0] == 200
    write_tokens(token_file, NEW)
    assert post_json(server, "/predict", [1], bearer(OLD))[0] == 401
    assert post_json(server, "/predict", [1], bearer(NEW))[0] == 200
    token_file.unlink()  # a file that goes away keeps the last tokens read (and says so once)
    assert post_json(server, "/predict", [1], bearer(NEW))[0] == 200
    assert any(r["event"] == "auth_tokens_unreadable" for r in server.log_records())
    write_tokens(token_file)  # no token at all: closed, not open
    assert post_json(server, "/predict", [1], bearer(NEW))[0] == 401


def test_v2_and_grpc_carry_the_token(guarded):
    server, _ = guarded
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    tensor = httpclient.InferInput("x", [1, 2], "INT64")
    tensor.set_data_from_numpy(np.array([[1, 2]]))
    with pytest.raises(InferenceServerException, match="needs a bearer token") as info:
        client.infer("serve-tests", [tensor])
    assert info.value.status() == "401"
    result = client.infer("serve-tests", [tensor], headers=bearer(OLD))
    assert result.as_numpy("echo").tolist() == [[1, 2]]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        predict = channel.unary_unary("/vci.Model/Predict")
        with pytest.raises(grpc.RpcError) as refused:
            predict(b"[1]", timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert json.loads(predict(b"[1]", timeout=10, metadata=(("authorization", f"Bearer {OLD}"),)))["echo"] == [1]
        health = channel.unary_unary("/vci.Model/Health")
        assert json.loads(health(b"", timeout=10))["status"] == "SERVING"  # open
    assert OLD not in server.log()


def test_a_token_from_the_environment_never_reaches_the_model(start_server):
    server = start_server(EnvPeekModel, extra_env={"VCI_AUTH_TOKEN": NEW, "VCI_AUTH_ALL_ROUTES": "true"})
    assert http_call(server, "GET", "/healthz")[0] == 401  # every route, as configured
    assert http_call(server, "GET", "/healthz", headers=bearer(NEW))[0] == 200
    server.wait_state()
    status, _, body = post_json(server, "/predict", "x", bearer(NEW))
    assert status == 200 and body["token_in_env"] is False
    assert NEW not in server.log()


def test_an_unreadable_token_file_stops_the_start(tmp_path):
    build_model_dir(tmp_path / "model", EnvPeekModel)
    proc, records = serve_until_exit(
        tmp_path / "model", tmp_path / "work", "--auth-token-file", str(tmp_path / "missing")
    )
    assert proc.returncode == 14
    assert "cannot read the auth token file" in records[-1]["error"]


def test_every_token_is_compared_and_only_bearer_counts(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"{OLD}\n\n  {NEW}  \n")
    tokens = Tokens(str(path))
    assert tokens.allows(f"Bearer {NEW}") and tokens.allows(f"bearer {OLD}")
    assert not tokens.allows(f"Bearer {OLD} {NEW}") and not tokens.allows("Bearer ") and not tokens.allows(None)
    assert tokens.refusal("/healthz", None, "r") is None and tokens.refusal("/predict", None, "r").status == 401
