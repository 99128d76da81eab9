"""Fuzzing the HTTP front end (hypothesis): the parser raises nothing but BadRequest, decodes the same
whatever the reads, reads numbers as the RFC grammar does, and the live server answers any bytes with
whole responses or a close, never a traceback, and never a request hidden in a body."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vci.serve.wire import REASONS, BadRequest, ChunkedBody, parse_chunked, parse_head

from .conftest import ready_echo_server

# deterministic in CI (a failure prints the example that reproduces it); no example database in the tree
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)
LIVE = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

CORPUS = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n[1]",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n[1]\r\n0\r\nT: v\r\n\r\n",
    b"POST /batch-predict HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n[1,2]"
    + b"GET /metrics HTTP/1.1\r\n\r\n",
    b"GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /metadata HTTP/1.1\r\nConnection: close\r\n\r\n",
]
TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"\x00",
    b"0x",
    b"_",
    b"+",
    b"-",
    b"\xb2",
    b"\xef\xbc\x91",
    b";",
    b"=",
    b'"',
    b":",
    b",",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"0\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",
    b"f" * 18,
    b"9" * 20,
]


@st.composite
def mutated(draw) -> bytes:
    """A request (or two) from the corpus with a few insertions, deletions and overwrites."""
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        token = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=6)))
        kind = draw(st.sampled_from(("insert", "delete", "overwrite", "number")))
        digits = [m.start() for m in re.finditer(rb"(?<=: )[0-9]|(?<=\n)[0-9a-f]", bytes(data))]
        if kind == "number" and digits:  # lengths and chunk sizes: where parsers disagree
            pos = draw(st.sampled_from(digits))
            data[pos : pos + 1] = draw(
                st.sampled_from([b"\xb2", b"\xb9", b"0x", b"_", b"-", b"+", b" ", b"\xef\xbc\x91"])
            )
        elif kind == "insert":
            data[pos:pos] = token
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 4))]
        else:
            data[pos : pos + len(token)] = token
    return bytes(data)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@FAST
@given(st.one_of(mutated(), st.binary(max_size=300)))
def test_parse_head_raises_nothing_but_bad_request(data):
    raw = data.split(b"\r\n\r\n", 1)[0]
    try:
        head = parse_head(raw)
    except BadRequest as exc:
        assert exc.status in REASONS
        return
    assert head.content_length >= -1 and head.method.isascii() and head.path.isascii()
    for name, value in head.headers.items():
        assert re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) and "\r" not in value and "\n" not in value


@st.composite
def chunked_bodies(draw) -> bytes:
    """A chunked body with extensions and trailers, sometimes mutated."""
    out = b""
    for chunk in draw(st.lists(st.binary(min_size=1, max_size=40), max_size=4)):
        ext = draw(st.sampled_from([b"", b";a", b";a=b", b' ; a = "q\\"x"', b";a=b;c"]))
        out += b"%x%s\r\n%s\r\n" % (len(chunk), ext, chunk)
    out += b"0\r\n" + draw(st.sampled_from([b"", b"T: v\r\n", b"A: 1\r\nB: 2\r\n"])) + b"\r\n"
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(out)))
        out = out[:pos] + draw(st.sampled_from(TOKENS)) + out[pos + draw(st.integers(0, 2)) :]
    return out + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n"]))


def _decode(pieces: list[bytes], max_body: int = 100):
    """Feed ``pieces`` as successive reads: ``("body", bytes, consumed)``, ``("bad", status)`` or None."""
    buf, body, consumed = bytearray(), ChunkedBody(max_body), 0
    for piece in pieces:
        buf += piece
        before = len(buf)
        try:
            done = body.feed(buf)
        except BadRequest as exc:
            return ("bad", exc.status)
        consumed += before - len(buf)
        if done:
            return ("body", bytes(body.data), consumed)
    return None


@FAST
@given(chunked_bodies(), st.lists(st.integers(0, 400), max_size=5))
def test_chunked_decoding_does_not_depend_on_how_the_bytes_arrive(data, cuts):
    whole = _decode([data])
    assert _decode(_pieces(data, cuts)) == whole
    if whole and whole[0] == "body":
        assert parse_chunked(data, 100) == whole[1:]


def _number_variant(draw, text: bytes, digits: bytes) -> bytes:
    """``text`` (a number) as a client or an attacker might write it: valid or not, never another value."""
    kind = draw(st.sampled_from(("plain", "prefix", "suffix", "insert", "lookalike", "case")))
    if kind == "prefix":
        return draw(st.sampled_from([b"0", b"00", b"+", b"-", b"0x", b"0X", b" ", b"\t", b"\x0b", b"_"])) + text
    if kind == "suffix":
        return text + draw(st.sampled_from([b" ", b"\t", b"\x0c", b"_", b"L", b"\x00", b"h", b", " + text]))
    pos = draw(st.integers(0, len(text) - 1))
    if kind == "insert":
        return text[:pos] + draw(st.sampled_from([b"_", b" ", b"\xb2", b",", b"."])) + text[pos:]
    if kind == "lookalike":  # latin-1 superscripts, Arabic-Indic and fullwidth digits in UTF-8
        return text[:pos] + draw(st.sampled_from([b"\xb2", b"\xb9", b"\xd9\xa1", b"\xef\xbc\x91"])) + text[pos + 1 :]
    return text.upper() if kind == "case" and digits == b"0-9A-Fa-f" else text


def _grammar_accepts(variant: bytes, value: int, chunked: bool) -> bool:
    """The reference: RFC 9112 chunk-size (1*HEXDIG) or RFC 9110 Content-Length (1*DIGIT, identical
    values in a list allowed, optional whitespace around each)."""
    if chunked:
        return re.fullmatch(rb"[0-9A-Fa-f]{1,16}", variant) is not None and int(variant, 16) == value
    parts = [p.strip(b" \t") for p in variant.split(b",")]
    return all(re.fullmatch(rb"[0-9]{1,18}", p) and int(p) == value for p in parts)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    proc = ready_echo_server(tmp_path_factory.mktemp("fuzz"), "--max-body-bytes", "4096", "--request-timeout", "2")
    yield proc
    stray = proc.stray_lines()
    assert stray == [], "\n".join(stray[:40])  # an asyncio traceback: some input escaped the handling
    assert not [r for r in proc.log_records() if r["event"] == "request_parse_failed"]
    assert proc.stop() == 0


def _exchange(port: int, pieces: list[bytes]) -> bytes:
    """Send the pieces as separate writes, half-close, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                s.sendall(piece)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed while we were still sending
            pass
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def _responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split the server's bytes into responses, asserting each is whole and well-formed."""
    out = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"a response head without its end: {head[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.1 ([0-9]{3}) ([A-Za-z -]+)", status_line)
        assert match and REASONS[int(match.group(1))] == match.group(2), status_line
        headers = dict(line.lower().split(": ", 1) for line in lines)
        length = 0 if match.group(1) == "100" else int(headers["content-length"])
        assert len(data) >= length, f"a body cut short: {data[:200]!r}"
        out.append((int(match.group(1)), headers, data[:length]))
        data = data[length:]
    return out


@LIVE
@given(mutated(), st.lists(st.integers(0, 400), max_size=3))
def test_the_server_answers_any_bytes_with_whole_responses_or_a_close(fuzz_server, data, cuts):
    answers = _responses(_exchange(fuzz_server.port, _pieces(data, cuts)))
    assert answers, "the server closed without an answer"  # bytes arrived: at least a 400 is due
    assert all(status != 500 for status, _, _ in answers), answers
    assert all(status < 400 or b'"error"' in body for status, _, body in answers)


SMUGGLED = b"GET /healthz HTTP/1.1\r\nX-Request-Id: smuggled\r\n\r\n"


@LIVE
@given(st.data(), st.booleans(), st.binary(max_size=30), st.lists(st.integers(0, 400), max_size=3))
def test_a_request_inside_a_body_is_never_answered(fuzz_server, data, chunked, filler, cuts):
    body = filler + SMUGGLED
    if chunked:
        size = _number_variant(data.draw, b"%x" % len(body), b"0-9A-Fa-f")
        framing, payload = b"Transfer-Encoding: chunked", size + b"\r\n" + body + b"\r\n0\r\n\r\n"
    else:
        size = _number_variant(data.draw, b"%d" % len(body), b"0-9")
        framing, payload = b"Content-Length: " + size, body
    request = b"POST /predict HTTP/1.1\r\nContent-Type: text/plain\r\n" + framing + b"\r\n\r\n" + payload
    raw = _exchange(fuzz_server.port, _pieces(request, cuts))
    expected = 415 if _grammar_accepts(size, len(body), chunked) else 400  # 415: parsed whole, then refused
    assert [status for status, _, _ in _responses(raw)] == [expected], raw[:300]
    assert b"smuggled" not in raw
