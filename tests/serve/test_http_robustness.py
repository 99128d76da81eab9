"""The server survives what the network throws at it: garbage, floods, slow and vanishing clients."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import threading
import time

import pytest

from vci.serve import http
from vci.serve.metrics import Metrics

from .conftest import http_call, post_json, raw_exchange, ready_echo_server

GARBAGE = [
    b"\x00\x01\x02\xff" * 100 + b"\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 70000,
    b"POST /predict HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ready_echo_server(tmp_path_factory.mktemp("robust"), "--max-body-bytes", "65536", "--request-timeout", "1")
    yield proc
    assert proc.stop() == 0


def test_each_kind_of_garbage_gets_a_4xx_or_5xx_and_a_close(server):
    for data in GARBAGE:
        answer = raw_exchange(server, data)
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 600 and status != 500, (data[:60], answer[:200])
        assert b"Connection: close" in answer and b'"error"' in answer


def test_a_burst_of_bad_requests_then_a_good_one_succeeds(server):
    rng = random.Random(7)
    threads = []
    for i in range(60):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        data = GARBAGE[i % len(GARBAGE)] if i % 2 else noise
        threads.append(threading.Thread(target=_send_and_drop, args=(server.port, data)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    status, _, body = post_json(server, "/predict", [1, 2])
    assert (status, body["echo"]) == (200, [1, 2])
    assert server.proc.poll() is None


def _send_and_drop(port: int, data: bytes) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(data)
            if data[:1] == b"P":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    except OSError:
        pass


def test_pipelined_requests_then_a_partial_one_then_a_half_close(server):
    for tail in (b"\x00garbage\r\n\r\n", b"GET /partial"):
        answer = raw_exchange(server, b"GET /healthz HTTP/1.1\r\n\r\n" * 3 + tail)
        assert answer.count(b"HTTP/1.1 200 OK") == 3 and b"HTTP/1.1 400 Bad Request" in answer
    assert server.stray_lines() == []  # no asyncio "Exception in callback" tracebacks: every path was handled


def test_clients_vanishing_mid_body_do_not_hurt(server):
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nContent-Length: 5000\r\nContent-Type: application/json\r\n\r\n[1,2")
    status, _, _ = post_json(server, "/predict", 3)
    assert status == 200


def test_a_slow_client_neither_blocks_others_nor_stays_forever(server):
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow.sendall(b"POST /predict HTTP/1.1\r\nContent-Length: 10\r\n\r\n[")
    status, _, _ = post_json(server, "/predict", "meanwhile")  # served while the slow one dawdles
    assert status == 200
    answer = slow.recv(1000)  # --request-timeout 1: the server gives up on the slow request
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_kept_alive_connection_times_out_its_second_slow_request_in_time(server):
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    request = b"POST /predict HTTP/1.1\r\nContent-Length: 3\r\nContent-Type: application/json\r\n\r\n"
    for _ in range(3):  # answered requests move the connection's deadline on
        conn.sendall(request + b"[1]")
        assert conn.recv(1000).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.4)
    conn.sendall(request + b"[")  # then one that never ends
    started = time.monotonic()
    answer = conn.recv(1000)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < time.monotonic() - started < 3, "the second request's timeout (1 s) was not kept"


def test_oversized_body_gets_413_even_while_the_client_keeps_sending(server):
    status, _, body = http_call(
        server, "POST", "/predict", b"[" + b"1," * 40000 + b"1]", {"Content-Type": "application/json"}
    )
    assert status == 413
    chunked = (
        b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"8000\r\n" + b"1" * 0x8000 + b"\r\n") * 3
    )
    assert raw_exchange(server, chunked).startswith(b"HTTP/1.1 413 ")


def test_many_concurrent_keep_alive_clients(server):
    results = []

    def client():
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for i in range(20):
            conn.request("POST", "/predict", body=str(i), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            results.append((resp.status, resp.read().count(b'"echo":%d' % i)))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(os.cpu_count() * 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [(200, 1)] * (len(threads) * 20)


@pytest.mark.parametrize(
    "data",
    [
        b"POST /predict HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n[1]",  # isdigit() but not int(): crashed the protocol
        b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\n[1]\r\n0\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    ],
)
def test_numbers_in_the_head_that_are_not_ascii_digits_get_400(server, data):
    answer = raw_exchange(server, data)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1") == 1, answer[:300]
    assert server.stray_lines() == []


@pytest.mark.parametrize("size", [70_000, 100_000, 64 * 1024 + 1])
def test_a_head_over_64_kib_gets_431_even_in_one_read(server, size):
    head = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * size + b"\r\n\r\n"
    answer = raw_exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert raw_exchange(server, b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 60_000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 200 "
    )


class _Transport(asyncio.Transport):
    """Collects what the protocol writes (in-process: the one way to make the parser itself fail)."""

    def __init__(self):
        super().__init__()
        self.out, self.closed = bytearray(), False

    def write(self, data) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return False


def test_a_bug_in_the_parser_is_answered_500_and_logged_not_raised(monkeypatch, capsys):
    def broken(raw: bytes):
        raise ValueError("a bug in the parser")

    monkeypatch.setattr(http, "parse_head", broken)

    async def exchange() -> _Transport:
        conn = http.HttpConnection(http.HttpServer(None, Metrics(tuple(http.ROUTES)), max_body=100))
        transport = _Transport()
        conn.connection_made(transport)
        conn.data_received(b"GET /healthz HTTP/1.1\r\n\r\n")
        conn.connection_lost(None)
        return transport

    transport = asyncio.run(exchange())
    assert transport.out.startswith(b"HTTP/1.1 500 ") and transport.closed
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failed = [r for r in records if r["event"] == "request_parse_failed"]
    assert failed and "a bug in the parser" in failed[0]["traceback"]
