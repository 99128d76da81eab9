"""Limits that hold under load: the listen backlog, the shared body budget, health that never waits."""

from __future__ import annotations

import resource
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from .conftest import http_call, post_json
from .models import EchoModel, SlowFirstCallModel

MIB = 1024 * 1024


def _listen_backlog(port: int) -> int:
    """The listening socket's backlog as the kernel has it (ss shows it as Send-Q)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    state, _recv_q, send_q, *_ = out.split()
    assert state == "LISTEN"
    return int(send_q)


def _connected_within(port: int, clients: int, seconds: float) -> int:
    """Start ``clients`` connects at once; count those whose handshake completed within ``seconds``
    (a SYN the kernel dropped for a full accept queue is sent again only after 1 s)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < clients + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, clients + 1000), hard))
    selector, socks, connected = selectors.DefaultSelector(), [], 0
    try:
        for _ in range(clients):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            selector.register(s, selectors.EVENT_WRITE)
            socks.append(s)
        deadline = time.monotonic() + seconds
        while connected < clients and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                connected += key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    finally:
        selector.close()
        for s in socks:
            s.close()
    return connected


def test_the_listen_backlog_is_the_configured_one_and_holds_a_burst(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"})
    assert _listen_backlog(server.port) == 1024  # asyncio's create_server listened again with 100
    small = start_server(EchoModel, artifacts={"greeting": b"hi"}, args=("--backlog", "300"))
    assert _listen_backlog(small.port) == 300
    server.proc.send_signal(signal.SIGSTOP)  # a server too busy to accept: the kernel's queue is all there is
    try:
        assert _connected_within(server.port, 1000, 0.8) == 1000
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert http_call(server, "GET", "/healthz")[0] == 200


def _half_send(port: int, length: int, sent: int, answers: list) -> None:
    """Send a head announcing ``length`` body bytes and ``sent`` of them; record what comes back soon."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length)
        block = b"1" * 65536
        try:
            for offset in range(0, sent, len(block)):
                s.sendall(block[: sent - offset])
        except OSError:  # refused early: the server stopped reading and closed
            pass
        s.settimeout(1.0)
        try:
            answers.append(s.recv(4096))
        except (TimeoutError, OSError):
            answers.append(b"")  # still waiting for the rest of its body: nothing to say yet
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # vanish: a reset


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_many_half_sent_large_bodies_stay_within_the_body_budget(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"})  # 16 MiB bodies, 64 MiB at once
    server.wait_state()
    before = _peak_rss_kib(server.proc.pid)
    answers: list[bytes] = []
    length = 16 * MIB - 100
    clients = [
        threading.Thread(target=_half_send, args=(server.port, length, length - 1000, answers)) for _ in range(40)
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join(60)
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
    assert len(answers) == 40 and answers.count(b"") == 4 and len(refused) == 36, [a[:40] for a in answers]
    assert all(b"\r\nRetry-After: 1\r\n" in a for a in refused)
    assert http_call(server, "GET", "/healthz")[0] == 200
    assert post_json(server, "/predict", [1])[0] == 200  # small bodies never wait for the budget
    grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
    assert grown_mib < 64 + 48, f"peak RSS grew by {grown_mib:.0f} MiB"  # 40 bodies buffered: ~660 MiB
    large = b"[" + b"1," * (4 * MIB) + b"1]"  # 8 MiB: fits once the clients that held the budget are gone
    deadline = time.monotonic() + 5
    while (status := http_call(server, "POST", "/predict", large, {"Content-Type": "application/json"})[0]) == 503:
        assert time.monotonic() < deadline, "the budget was not given back when its connections ended"
        time.sleep(0.1)
    assert status == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_and_metrics_never_wait_for_a_slow_first_predict(start_server, path):
    server = start_server(SlowFirstCallModel)
    server.wait_state()
    results = []
    slow = threading.Thread(target=lambda: results.append(post_json(server, "/predict", [1])[0]))
    slow.start()
    time.sleep(0.3)  # the first predict (1.5 s) is running now
    started = time.monotonic()
    assert http_call(server, "GET", path)[0] == 200
    waited = time.monotonic() - started
    slow.join(10)
    assert results == [200]
    assert waited < 0.5, f"{path} waited {waited:.2f} s behind the model"


def test_a_large_body_for_a_fast_model_is_predicted_off_the_loop(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"})  # its model_test times it fast
    server.wait_state()
    results = []
    slow = {"sleep": 1.5, "pad": "x" * 100_000}  # decoding alone of a large body is slow work
    thread = threading.Thread(target=lambda: results.append(post_json(server, "/predict", slow)[0]))
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert http_call(server, "GET", "/healthz")[0] == 200
    waited = time.monotonic() - started
    thread.join(10)
    assert results == [200] and waited < 0.5, f"/healthz waited {waited:.2f} s behind a large request"
