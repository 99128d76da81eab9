"""HTTP/1.1 on the wire, as pure functions: parse a request head and a chunked body, render a response."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
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
    """The bytes are not a request this server accepts; ``status`` is what to answer before closing."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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
    """Parse the bytes before the blank line that ends a request head."""
    try:
        text = raw.decode("latin-1")
        request_line, *lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1.") or not _TOKEN.match(method.encode("latin-1")):
        raise BadRequest(400, f"unsupported protocol or method in {request_line[:80]!r}")
    headers: dict[str, str] = {}
    lengths = set()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or not _TOKEN.match(name.encode("latin-1")):
            raise BadRequest(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length":
            lengths.add(value)
        headers[name] = value
    return Head(
        method,
        target.split("?", 1)[0],
        headers,
        _keep_alive(version, headers),
        _body_length(headers, lengths),
        headers.get("expect", "").lower() == "100-continue",
    )


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _body_length(headers: dict[str, str], lengths: set[str]) -> int:
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        if lengths:
            raise BadRequest(400, "both Content-Length and Transfer-Encoding given")
        if encoding.lower() != "chunked":
            raise BadRequest(501, f"unsupported Transfer-Encoding {encoding[:40]!r}")
        return -1
    if len(lengths) > 1:
        raise BadRequest(400, "conflicting Content-Length headers")
    if not lengths:
        return 0
    value = lengths.pop()
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(400, "Content-Length is not a number")
    return int(value)


def parse_chunked(buf: bytes | bytearray, max_body: int) -> tuple[bytes, int] | None:
    """Decode a chunked body at the start of ``buf``: ``(body, bytes consumed)``, or None if incomplete."""
    parts: list[bytes] = []
    pos = size_total = 0
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > 1024:
                raise BadRequest(400, "malformed chunk size line")
            return None
        try:
            size = int(bytes(buf[pos:end]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size line") from None
        if size < 0:
            raise BadRequest(400, "malformed chunk size line")
        size_total += size
        if size_total > max_body:
            raise BadRequest(413, f"the request body is larger than the limit of {max_body} bytes")
        pos = end + 2
        if size == 0:
            return _trailer_end(buf, pos, parts)
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise BadRequest(400, "a chunk does not end with CRLF")
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def _trailer_end(buf, pos: int, parts: list[bytes]) -> tuple[bytes, int] | None:
    if buf[pos : pos + 2] == b"\r\n":
        return b"".join(parts), pos + 2
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        if len(buf) - pos > MAX_HEAD_BYTES:
            raise BadRequest(431, "chunked trailers too large")
        return None
    return b"".join(parts), end + 4


def request_id_from(headers: dict[str, str]) -> str | None:
    """The client's ``X-Request-Id`` when it is a safe token (no spaces or control characters)."""
    value = headers.get("x-request-id")
    return value if value and _REQUEST_ID.match(value) else None


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
