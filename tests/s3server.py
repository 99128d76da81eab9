"""A real moto S3 server for tests and benchmarks, on 127.0.0.1 with a free port and dummy credentials.

    server, endpoint = start_moto()            # in this process (a thread); server.stop() ends it
    proc, endpoint = start_moto_process()      # in its own process; stop_process(proc) ends it
    reset_moto(endpoint)                       # forget every bucket and object (POST /moto-api/reset)

Credentials are fixed dummies (``testing``), never real ones: ``dummy_aws_env()`` is what to set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def dummy_aws_env() -> dict[str, str]:
    """Environment variables that point boto3 at dummy credentials and away from any real AWS config."""
    return dict(DUMMY_AWS_ENV)


def start_moto():
    """Start a ThreadedMotoServer in this process; return ``(server, endpoint_url)``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _wait_ready(endpoint, timeout=10)
    return server, endpoint


def start_moto_process(timeout: float = 30.0):
    """Start ``python -m moto.server`` in its own process (no shared GIL); return ``(process, endpoint_url)``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(endpoint, timeout, proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, endpoint


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a server started by ``start_moto_process`` by its PID, bounded in time."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def dummy_client(endpoint: str):
    """A boto3 S3 client for the moto server at ``endpoint``, with the dummy credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_bucket(endpoint: str, bucket: str) -> str:
    """Create ``bucket`` on the moto server at ``endpoint``; return its name."""
    dummy_client(endpoint).create_bucket(Bucket=bucket)
    return bucket


def bucket_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix`` in a moto bucket, read with the dummy credentials."""
    listing = dummy_client(endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def reset_moto(endpoint: str) -> None:
    """Forget every bucket and object on the server."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(endpoint: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2) as reply:
                reply.read()
            return
        except OSError as exc:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode} before it answered") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server at {endpoint} did not answer within {timeout}s") from exc
            time.sleep(0.1)
