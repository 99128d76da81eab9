"""Pure parts of the server: HTTP head and chunked parsing, response bytes, metrics text, options."""

from __future__ import annotations

import pytest

from vci.errors import UsageError
from vci.serve.__main__ import parse_options
from vci.serve.metrics import Metrics
from vci.serve.server import run_server
from vci.serve.wire import BadRequest, parse_chunked, parse_head, render_response, request_id_from

from .conftest import unlabelled


def test_parse_head_reads_method_path_headers_and_keep_alive():
    head = parse_head(
        b"POST /predict?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 12\r\nX-Request-Id: abc"
    )
    assert (head.method, head.path, head.content_length, head.keep_alive) == ("POST", "/predict", 12, True)
    assert head.headers["content-type"] == "application/json"
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive is True
    assert parse_head(b"GET / HTTP/1.1\r\nConnection: close").keep_alive is False
    assert parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").content_length == -1


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GET /", 400),
        (b"GET / HTTP/2", 400),
        (b"G(T / HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r\nbad line", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: br", 400),  # RFC 9112 6.3: chunked not final -> 400
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: br, chunked", 501),
    ],
)
def test_parse_head_refuses_malformed_or_ambiguous_heads(raw, status):
    with pytest.raises(BadRequest) as info:
        parse_head(raw)
    assert info.value.status == status


def test_parse_chunked_waits_for_the_end_and_enforces_the_limit():
    data = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    assert parse_chunked(data, 100) == (b"Wikipedia", len(data) - 4)
    for cut in (2, 8, 20, len(data) - 7):
        assert parse_chunked(data[:cut], 100) is None
    with pytest.raises(BadRequest) as info:
        parse_chunked(b"ff\r\n", 100)
    assert info.value.status == 413
    with pytest.raises(BadRequest):
        parse_chunked(b"2\r\nabXX0\r\n\r\n", 100)


def test_render_response_and_request_ids():
    raw = render_response(201, b"{}", "application/json", "rid-1", close=True, extra="Allow: GET\r\n")
    assert raw.startswith(b"HTTP/1.1 201 Status\r\n") and raw.endswith(b"\r\n\r\n{}")
    assert b"Content-Length: 2\r\n" in raw and b"X-Request-Id: rid-1\r\n" in raw
    assert b"Connection: close" in raw
    assert request_id_from({"x-request-id": "a.b-c_9"}) == "a.b-c_9"
    assert request_id_from({"x-request-id": "x" * 129}) is None
    assert request_id_from({"x-request-id": "a\r\nSet-Cookie: x"}) is None


def test_metrics_histogram_is_cumulative_and_unknown_routes_collapse():
    metrics = Metrics(("/predict",))
    for seconds in (0.0001, 0.003, 0.003, 20.0):
        metrics.started()
        metrics.finished("/predict", 200, seconds)
    metrics.started()
    metrics.finished("/wp-admin.php", 404, 0.001)
    text = unlabelled(metrics.render().decode())
    assert 'vci_request_duration_seconds_bucket{route="/predict",le="0.0005"} 1' in text
    assert 'vci_request_duration_seconds_bucket{route="/predict",le="0.005"} 3' in text
    assert 'vci_request_duration_seconds_bucket{route="/predict",le="10.0"} 3' in text
    assert 'vci_request_duration_seconds_bucket{route="/predict",le="+Inf"} 4' in text
    assert 'vci_requests_total{route="other",status="404"} 1' in text and "wp-admin" not in text
    assert "vci_requests_in_flight 0" in text


def test_options_come_from_flags_over_environment():
    env = {
        "VCI_MODEL_DIR": "/m",
        "VCI_PORT": "9000",
        "VCI_GRPC_PORT": "9001",
        "VCI_WORKERS": "2",
        "VCI_WORK_DIR": "/tmp/w",
        "VCI_MAX_BODY_BYTES": "100",
        "VCI_IMAGE_DIGEST": "sha256:" + "0" * 64,
    }
    options = parse_options(["--port", "7000"], env)
    picked = (options["model_dir"], options["port"], options["grpc_port"], options["workers"])
    assert picked == ("/m", 7000, 9001, 2)
    assert (options["work_dir"], options["max_body_bytes"], options["host"]) == ("/tmp/w", 100, "0.0.0.0")
    defaults = parse_options([], {})
    assert (defaults["model_dir"], defaults["port"], defaults["grpc_port"]) == ("/opt/vci/model", 8080, None)
    with pytest.raises(UsageError):
        parse_options([], {"VCI_PORT": "eighty"})
    limits = parse_options(["--backlog", "50"], {"VCI_MAX_BUFFERED_BYTES": "1000", "VCI_BACKLOG": "9"})
    assert (limits["backlog"], limits["max_buffered_bytes"]) == (50, 1000)
    assert (defaults["backlog"], defaults["max_buffered_bytes"]) == (1024, 64 * 1024 * 1024)


@pytest.mark.parametrize(
    "options,named", [({"backlog": 0}, "backlog"), ({"max_buffered_bytes": 100, "max_body_bytes": 200}, "max_buffered")]
)
def test_server_limits_out_of_range_are_refused_before_binding(tmp_path, options, named):
    with pytest.raises(UsageError, match=named):
        run_server(tmp_path, port=0, **options)


@pytest.mark.parametrize(
    "value",
    [
        b"\xb2",
        b"1\xb9",
        b"\xd9\xa1",
        b"\xef\xbc\x91",
        b"+5",
        b"-0",
        b"0x5",
        b"5_0",
        b"5 5",
        b"",
        b"5,",
        b"1, 2",
        b"9" * 19,
    ],
)
def test_content_length_takes_ascii_digits_only(value):
    raw = b"POST / HTTP/1.1\r\nContent-Length: " + value  # \xb2 is a superscript 2 in latin-1: isdigit() but no int
    with pytest.raises(BadRequest) as info:
        parse_head(raw)
    assert info.value.status == 400


def test_content_length_accepts_digits_leading_zeros_and_identical_repeats():
    assert parse_head(b"POST / HTTP/1.1\r\nContent-Length: 007").content_length == 7
    assert parse_head(b"POST / HTTP/1.1\r\nContent-Length:  5 \t").content_length == 5
    assert parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5, 5").content_length == 5
    assert parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05").content_length == 5


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GET / HTTP/1.1\r\nX: a\nContent-Length: 5", 400),  # a bare LF: another parser's line break
        (b"GET / HTTP/1.1\r\nX: a\rb", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b", 400),
        (b"GET / HTTP/1.1\r\nX\n: a", 400),
        (b"GET /\x7f HTTP/1.1", 400),
        (b"GET / HTTP/1.1x", 400),
        (b"GET / HTTP/1.1\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked", 400),
    ],
)
def test_parse_head_refuses_what_another_parser_could_read_otherwise(raw, status):
    with pytest.raises(BadRequest) as info:
        parse_head(raw)
    assert info.value.status == status


@pytest.mark.parametrize(
    "size_line",
    [
        b"0x13",
        b"1_3",
        b"+13",
        b"-0",
        b" 13",
        b"13 ",
        b"\x0b13",
        b"13\x0c",
        b"\xef\xbc\x91\xef\xbc\x93",
        b"",
        b"0" * 17 + b"1",
    ]
    + [b"13;", b"13;=x", b"13;a b", b'13;a="open', b"13;a=b=c", b"13;a=\x00", b"13\n"],
)
def test_chunk_sizes_are_ascii_hex_and_extensions_follow_the_grammar(size_line):
    body = size_line + b"\r\n" + b"x" * 19 + b"\r\n0\r\n\r\n"
    with pytest.raises(BadRequest) as info:
        parse_chunked(body, 1000)
    assert info.value.status == 400


@pytest.mark.parametrize("size_line", [b"13", b"013", b"13;a", b"13 ; a = b", b'13;a="q \\" ;";b', b"13\t;a=b"])
def test_chunk_extensions_that_the_grammar_allows_are_skipped(size_line):
    body = size_line + b"\r\n" + b"x" * 19 + b"\r\n0\r\n\r\n"
    assert parse_chunked(body, 1000) == (b"x" * 19, len(body))


@pytest.mark.parametrize("trailer", [b"no colon", b"X: a\nY: b", b" X: folded", b"X : a"])
def test_chunked_trailers_are_field_lines(trailer):
    with pytest.raises(BadRequest) as info:
        parse_chunked(b"1\r\nx\r\n0\r\n" + trailer + b"\r\n\r\n", 1000)
    assert info.value.status == 400
