"""HTTP/1.1 request parsing: vci's own parser (vci/serve/wire.py) against h11 and httptools (llhttp), as
the server's protocol uses a parser: bytes of whole requests in, method/path/headers/body out, and the
response bytes rendered; then which parser accepts the inputs that request smuggling is made of.

    pip install h11==0.16.0 httptools==0.9.0   # for this benchmark only: neither is a vci dependency
    python benchmarks/http_parser.py           # a parser that is not installed is left out

Prints microseconds per request (medians of repeated runs), the ratio of each to vci's, and the table
of accepted (A) / refused (-) inputs. The decision taken from it is in docs/design.md ("The HTTP parser").
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vci.serve.wire import MAX_HEAD_BYTES, BadRequest, parse_chunked, parse_head, render_response  # noqa: E402

RUNS, REQUESTS = 7, 5000
BODY = b"[[5.1, 3.5, 1.4, 0.2]]"
HEADS = {
    "curl (4 headers)": b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY),
    "behind a proxy (14 headers)": b"POST /predict HTTP/1.1\r\nHost: iris.ml.example.com\r\n"
    b"User-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\n"
    b"Connection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
    b"X-Request-Id: 0f3c2d9e-8a1b-4c55-9f1e-2b7a6d4e8c10\r\nX-Forwarded-For: 10.1.2.3, 10.4.5.6\r\n"
    b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: iris.ml.example.com\r\n"
    b"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo\r\n"
    b"Cookie: session=abc123; theme=dark\r\n\r\n" % len(BODY),
}


def vci_requests(stream: bytes) -> int:
    """vci's protocol path: find the head's end, parse_head, slice the body, render the response."""
    buf, answered = bytearray(stream), 0
    while buf:
        end = buf.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        head = parse_head(bytes(buf[:end]))
        del buf[: end + 4]
        body = bytes(buf[: head.content_length])
        del buf[: head.content_length]
        render_response(200, body, "application/json", "rid")
        answered += 1
    return answered


def h11_requests(stream: bytes) -> int:
    """h11 as a server drives it: receive, read events to the end of each message, send a response."""
    import h11

    conn, answered = h11.Connection(h11.SERVER), 0
    conn.receive_data(stream)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            return answered
        if isinstance(event, h11.EndOfMessage):
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
            conn.send(h11.Response(status_code=200, headers=headers))
            conn.send(h11.Data(data=BODY))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
            answered += 1


class _Collect:
    """httptools' callbacks (as uvicorn's httptools protocol keeps them); the response is vci's bytes."""

    def __init__(self):
        self.answered, self.headers, self.body = 0, [], []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        render_response(200, b"".join(self.body), "application/json", "rid")
        self.answered, self.headers, self.body = self.answered + 1, [], []


def httptools_requests(stream: bytes) -> int:
    import httptools

    sink = _Collect()
    httptools.HttpRequestParser(sink).feed_data(stream)
    return sink.answered


PARSERS = {"vci (wire.py)": vci_requests, "h11": h11_requests, "httptools": httptools_requests}


def available() -> dict:
    found = {}
    for name, run in PARSERS.items():
        try:
            run(HEADS["curl (4 headers)"] + BODY)
        except ImportError:
            print(f"{name}: not installed, left out")
            continue
        found[name] = run
    return found


def microseconds_per_request(run, request: bytes, pipelined: bool) -> float:
    """Median over RUNS of REQUESTS requests: one per call (a keep-alive client) or all in one buffer."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        if pipelined:
            assert run(request * REQUESTS) == REQUESTS
        else:
            for _ in range(REQUESTS):
                run(request)
        times.append((time.perf_counter() - start) / REQUESTS)
    return statistics.median(times) * 1e6


# inputs of the request-smuggling class: what an RFC 9112 parser must refuse (every one but the controls);
# each gets a Host header below (h11 refuses any HTTP/1.1 request without one)
REFUSE = {
    "(control) Content-Length: 2": b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
    "(control) chunk size 02;a=b": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n02;a=b\r\nab\r\n0\r\n\r\n",
    "Content-Length: \\xb2 (superscript 2)": b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\nab",
    "Content-Length: +2": b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab",
    "Content-Length: 0x2": b"POST / HTTP/1.1\r\nContent-Length: 0x2\r\n\r\nab",
    "Content-Length: 2 and 3": b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
    "chunk size 0x2": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
    "chunk size 0_2": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0_2\r\nab\r\n0\r\n\r\n",
    "chunk size +2": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n",
    "chunk size -0": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-0\r\n\r\n",
    "chunk size ' 2'": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n",
    "chunk ext without a name": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n0\r\n\r\n",
    "bare LF inside a header": b"POST / HTTP/1.1\r\nX: a\nContent-Length: 2\r\n\r\nab",
    "NUL in a header value": b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    "space before the colon": b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\nab",
    "obs-fold": b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
    "CL and TE together": b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE: gzip (chunked not last)": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nab",
    "TE in HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "head over 64 KiB": b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
}
REFUSE = {label: raw.replace(b"\r\n", b"\r\nHost: x\r\n", 1) for label, raw in REFUSE.items()}


def accepts(name: str, raw: bytes) -> bool:
    """Whether the parser reads a whole request from ``raw`` without an error."""
    try:
        if name.startswith("vci"):
            end = raw.index(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES:
                return False
            head = parse_head(raw[:end])
            if head.content_length < 0:
                return parse_chunked(raw[end + 4 :], 1 << 20) is not None
            return len(raw) - end - 4 >= head.content_length
        return (h11_requests if name == "h11" else httptools_requests)(raw) >= 1
    except BadRequest:
        return False
    except Exception:  # h11.RemoteProtocolError, httptools.HttpParserError and friends
        return False


def main() -> None:
    parsers = available()
    for label, head in HEADS.items():
        request = head + BODY
        for pipelined in (False, True):
            mode = f"{REQUESTS} pipelined in one buffer" if pipelined else "one request per call"
            print(f"\n{label}, {len(request)} bytes, {mode} (median of {RUNS}):")
            base = None
            for name, run in parsers.items():
                us = microseconds_per_request(run, request, pipelined)
                base = base or us
                print(f"  {name:14} {us:7.2f} us/request   {us / base:5.2f}x vci")
    print("\ninputs an RFC 9112 parser refuses (A = accepted as a request, - = refused):")
    print("  " + " ".join(f"{name[:14]:>14}" for name in parsers) + "   input")
    for label, raw in REFUSE.items():
        print("  " + " ".join(f"{'A' if accepts(name, raw) else '-':>14}" for name in parsers) + f"   {label}")


if __name__ == "__main__":
    main()
