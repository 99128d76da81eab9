"""The order of a pod's shutdown as the model server sees it: serve until SIGTERM (the preStop delay runs
before it), then refuse new connections, answer what open connections still send, drain, exit 0."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time

from .conftest import post_json
from .models import EchoModel


def keep_alive(server) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/predict", body=b"[1]", headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    assert reply.status == 200 and reply.getheader("Connection") != "close"
    reply.read()
    return conn


def test_the_server_serves_until_sigterm_and_then_drains_open_connections(start_server):
    server = start_server(EchoModel, artifacts={"greeting": b"hi"})
    server.wait_state()
    idle = keep_alive(server)  # a client (a proxy, kube-proxy's conntrack) keeps its connection open
    for _ in range(20):  # the preStop delay: nothing has told the server anything, it serves as usual
        assert post_json(server, "/predict", [2])[0] == 200
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # a request already on its way over the open connection is answered, and that connection then closed
    idle.request("POST", "/predict", body=b"[3]", headers={"Content-Type": "application/json"})
    reply = idle.getresponse()
    assert reply.status == 200 and json.loads(reply.read()) == {"echo": [3], "greeting": "hi"}
    assert reply.getheader("Connection") == "close"
    refused = None
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    except OSError as exc:
        refused = exc
    assert refused is not None, "new connections are refused once SIGTERM arrived"
    assert server.proc.wait(15) == 0
    events = [r["event"] for r in server.log_records()]
    assert events.index("signal") < events.index("draining") < events.index("stopped")
