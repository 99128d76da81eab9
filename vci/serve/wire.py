"""HTTP/1.1 on the wire, as pure functions: parse a request head and a chunked body, render a response."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions
# RFC 9110/9112 grammar, on the head decoded as latin-1 (one character per byte). Character classes are
# spelled out: \d and str.isdigit() take non-ASCII digits, int() takes "0x", "_", signs and whitespace.
_TOKEN_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN = re.compile(_TOKEN_CHARS)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # VCHAR, obs-text, SP, HTAB: no CR, LF, NUL or other CTL
_TARGET = re.compile(r"[\x21-\x7e]+")
_VERSION = re.compile(r"HTTP/1\.[0-9]")
_DECIMAL = re.compile(r"[0-9]{1,18}")
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_CHUNK_EXT = rf"(?:[ \t]*;[ \t]*{_TOKEN_CHARS}(?:[ \t]*=[ \t]*(?:{_TOKEN_CHARS}|{_QUOTED}))?)*"
_CHUNK_SIZE = re.compile(rf"([0-9A-Fa-f]{{1,16}}){_CHUNK_EXT}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    """The bytes are not a request this server accepts; ``status`` is what to answer before closing
    (with ``Retry-After: retry_after`` seconds when set: the server is busy, not the request wrong)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(slots=True)
class Head:
    """A parsed request line and headers (names lower-cased; the last value of a repeated name wins)."""

    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    content_length: int  # -1 when the body is chunked
    expect_continue: bool


def parse_head(raw: bytes) -> Head:
    """Parse the bytes before the blank line that ends a request head (RFC 9112 sections 3 and 5)."""
    request_line, *lines = raw.decode("latin-1").split("\r\n")
    method, target, version = _request_line(request_line)
    headers: dict[str, str] = {}
    framing: dict[str, list[str]] = {"content-length": [], "transfer-encoding": []}
    for line in lines:
        name, value = field_line(line)
        if name in framing:
            framing[name].append(value)
        headers[name] = value
    return Head(
        method,
        target.split("?", 1)[0],
        headers,
        _keep_alive(version, headers),
        _body_length(version, framing["content-length"], framing["transfer-encoding"]),
        headers.get("expect", "").lower() == "100-continue",
    )


def _request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not _TARGET.fullmatch(parts[1]):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not _VERSION.fullmatch(version) or not _TOKEN.fullmatch(method):
        raise BadRequest(400, f"unsupported protocol or method in {line[:80]!r}")
    return method, target, version


def field_line(line: str) -> tuple[str, str]:
    """``(lower-cased name, value without surrounding whitespace)`` of one header or trailer line."""
    name, sep, value = line.partition(":")
    if not sep or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
        raise BadRequest(400, "malformed header line")
    return name.lower(), value.strip(" \t")


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _body_length(version: str, lengths: list[str], encodings: list[str]) -> int:
    """The body's length from Content-Length (ASCII digits; identical repeats allowed), or -1 for chunked."""
    if encodings:
        return _chunked(version, lengths, encodings)
    if not lengths:
        return 0
    numbers = set()
    for part in ",".join(lengths).split(","):
        value = part.strip(" \t")
        if not _DECIMAL.fullmatch(value):
            raise BadRequest(400, f"Content-Length {value[:20]!r} is not a decimal number of at most 18 digits")
        numbers.add(int(value))
    if len(numbers) > 1:
        raise BadRequest(400, "conflicting Content-Length values")
    return numbers.pop()


def _chunked(version: str, lengths: list[str], encodings: list[str]) -> int:
    codings = [c.strip(" \t").lower() for c in ",".join(encodings).split(",")]
    if lengths:
        raise BadRequest(400, "both Content-Length and Transfer-Encoding given")
    if version == "HTTP/1.0":
        raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
    if codings[-1] != "chunked" or codings.count("chunked") > 1:
        raise BadRequest(400, f"the body's framing is not chunked once, last: {', '.join(codings)[:60]!r}")
    if len(codings) > 1:
        raise BadRequest(501, f"unsupported Transfer-Encoding {', '.join(codings[:-1])[:40]!r}: send chunked only")
    return -1


def chunk_size(line: bytes | bytearray) -> int:
    """The size in a chunk-size line (ASCII hex digits, then extensions as RFC 9112 7.1.1 has them)."""
    match = _CHUNK_SIZE.fullmatch(line.decode("latin-1"))
    if match is None:
        raise BadRequest(400, "malformed chunk size line")
    return int(match.group(1), 16)


class ChunkedBody:
    """Decodes a chunked body as it arrives: :meth:`feed` consumes what is complete at the start of a
    buffer, so each byte is parsed once and only a partial chunk line stays in the buffer."""

    def __init__(self, max_body: int):
        self.max_body = max_body
        self.data = bytearray()
        self.left = 0  # bytes of the current chunk not received yet
        self.state = "size"  # size -> data -> crlf -> size ... -> trailer
        self.trailer_bytes = 0

    def feed(self, buf: bytearray) -> bool:
        """Consume from ``buf``; True once the last chunk and the trailer section are in."""
        while True:
            if self.state == "data":
                taken = min(self.left, len(buf))
                self.data += buf[:taken]
                del buf[:taken]
                self.left -= taken
                if self.left:
                    return False
                self.state = "crlf"
            elif self.state == "crlf":
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise BadRequest(400, "a chunk does not end with CRLF")
                del buf[:2]
                self.state = "size"
            elif (line := self._line(buf)) is None:
                return False
            elif self.state == "size":
                self._start_chunk(chunk_size(line))
            elif not line:
                return True  # the empty line that ends the trailer section
            else:
                field_line(line.decode("latin-1"))  # trailers are checked, then dropped

    def _line(self, buf: bytearray) -> bytearray | None:
        limit = MAX_CHUNK_LINE if self.state == "size" else MAX_HEAD_BYTES - self.trailer_bytes
        end = buf.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if len(buf) > limit:
                raise BadRequest(400 if self.state == "size" else 431, f"the chunk {self.state} line is too long")
            return None
        line = buf[:end]
        del buf[: end + 2]
        if self.state == "trailer":
            self.trailer_bytes += end + 2
        return line

    def _start_chunk(self, size: int) -> None:
        if len(self.data) + size > self.max_body:
            raise BadRequest(413, f"the request body is larger than the limit of {self.max_body} bytes")
        self.left = size
        self.state = "data" if size else "trailer"


def parse_chunked(buf: bytes | bytearray, max_body: int) -> tuple[bytes, int] | None:
    """Decode a whole chunked body at the start of ``buf``: ``(body, bytes consumed)``, or None if incomplete."""
    rest = bytearray(buf)
    body = ChunkedBody(max_body)
    if not body.feed(rest):
        return None
    return bytes(body.data), len(buf) - len(rest)


def request_id_from(headers: dict[str, str]) -> str | None:
    """The client's ``X-Request-Id`` when it is a safe token (no spaces or control characters)."""
    value = headers.get("x-request-id")
    return value if value and _REQUEST_ID.fullmatch(value) else None


def render_response(
    status: int, body: bytes, content_type: str, request_id: str, *, close: bool = False, extra: str = ""
) -> bytes:
    """Bytes of a complete response; ``extra`` is further header lines, each ending in CRLF."""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-Id: {request_id}\r\n{extra}"
        f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    )
    return head.encode("latin-1") + body
