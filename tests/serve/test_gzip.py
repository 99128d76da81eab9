"""Gzip request bodies: decoded within the body limit; other encodings 415; the client's opt-in works end to end."""

import gzip

from vci.serve.http import decode_body


def test_identity_and_gzip_bodies():
    assert decode_body({}, b"[1]", 10) == b"[1]"
    assert decode_body({"content-encoding": "gzip"}, gzip.compress(b"[1, 2]"), 10) == b"[1, 2]"


def test_bombs_bad_bytes_and_other_encodings_are_refused():
    bomb = gzip.compress(b"0" * 10_000)
    assert decode_body({"content-encoding": "gzip"}, bomb, 1000)[0] == 413
    assert decode_body({"content-encoding": "gzip"}, b"not gzip", 1000)[0] == 400
    assert decode_body({"content-encoding": "gzip"}, gzip.compress(b"[1]")[:-6], 1000)[0] == 400
    assert decode_body({"content-encoding": "br"}, b"x", 1000)[0] == 415


def test_client_gzip_against_the_real_server(echo_server):
    from vci.client import DeployedModel
    from vci.errors import RemoteError

    client = DeployedModel(echo_server.url, gzip_min_bytes=100, deadline=20)
    payload = list(range(500))  # about 2.4 KB of JSON, under the server's 4 KiB limit once decompressed
    assert client.predict(payload)["echo"] == payload
    too_big = [0] * 3000  # 6 KB of JSON: compresses to a few bytes, still over the limit decompressed
    try:
        client.predict(too_big)
    except RemoteError as exc:
        assert exc.status == 413 and "decompressed" in str(exc)
    else:
        raise AssertionError("a body over the limit once decompressed must be refused")
