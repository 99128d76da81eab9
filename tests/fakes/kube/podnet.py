"""Run a Python module as a process pod with the cluster's Service addresses reachable (network.py).

``python podnet.py NETWORK_FILE MODULE [ARGS...]`` makes ``socket.create_connection`` (what http.client and
urllib use) connect to ``NAME.NAMESPACE.svc[.cluster.local]:PORT`` and Services' cluster IPs through the
fake's forwarders, then runs MODULE as ``python -m MODULE ARGS`` would. Other addresses are untouched.
"""

import sys

sys.path.pop(0)  # this directory's modules (selectors.py, events.py...) must not shadow the standard library's

import json  # noqa: E402
import runpy  # noqa: E402
import socket  # noqa: E402

NETWORK, MODULE = sys.argv[1], sys.argv[2]
_connect = socket.create_connection


def _through_network(address, *args, **kwargs):
    try:
        with open(NETWORK) as f:
            there = json.load(f).get(f"{address[0]}:{address[1]}")
    except (OSError, ValueError):
        there = None
    if there:
        host, _, port = there.rpartition(":")
        address = (host, int(port))
    return _connect(address, *args, **kwargs)


socket.create_connection = _through_network
sys.argv = [MODULE, *sys.argv[3:]]
runpy.run_module(MODULE, run_name="__main__", alter_sys=True)
