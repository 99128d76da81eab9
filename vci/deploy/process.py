"""Local model server processes: start, probe, stop, and their state files and locks (the local target's I/O).

State lives under the settings' state directory::

    state/deployments/<env>.json   what runs: pid, port, url, run id, model version, release id, log file
    state/locks/<env>.lock         held while an environment changes (flock)
    state/logs/<env>-<release>.log the server's output
    state/work/<env>-<release>/    the server's work directory (extracted artifacts), removed with it

A new deployment starts beside the old one on a fresh port; only once its ``/readyz`` answers 200 is
the state switched to it and the old process stopped, so a failed deploy leaves the old one serving. The
wait ends as soon as the server reports a state it cannot leave (its model failed to load, or its
self-test failed) or exits, with the reason read from its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .. import logview
from ..errors import ConflictError, DeployError, NotFoundError
from ..files import write_replacing

log = logging.getLogger("vci")
TERMINAL_STATES = ("self_test_failed", "load_failed")  # what /readyz reports when no wait can help


def _dirs(state_dir: Path) -> dict[str, Path]:
    dirs = {name: Path(state_dir) / name for name in ("deployments", "locks", "logs", "work")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs


@contextlib.contextmanager
def environment_lock(state_dir: Path, env: str, timeout: float = 30.0):
    """Hold the environment's lock; a second writer waits up to ``timeout`` then fails clearly."""
    path = _dirs(state_dir)["locks"] / f"{env}.lock"
    with open(path, "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError(
                        f"environment {env!r} is being changed by another vci process",
                        hint="wait for it to finish and try again",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_deployment(state_dir: Path, env: str) -> dict | None:
    """The record of ``env``'s local deployment (None when there is none); a record that is not a JSON
    object (an edited or truncated file) is a DeployError naming the file, not a traceback."""
    path = _dirs(state_dir)["deployments"] / f"{env}.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeployError(
            f"the local deployment record {path} is not valid JSON ({exc})",
            hint=f"stop the server it names by hand if one runs, then remove {path} and deploy again",
        ) from None
    if not isinstance(record, dict):
        raise DeployError(f"the local deployment record {path} is not a JSON object", hint=f"remove {path}")
    return record


def _write_deployment(state_dir: Path, env: str, record: dict | None) -> None:
    path = _dirs(state_dir)["deployments"] / f"{env}.json"
    if record is None:
        path.unlink(missing_ok=True)
        return
    write_replacing(path, json.dumps(record, indent=2, sort_keys=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_server_process(pid: int | None) -> bool:
    """True when ``pid`` is alive and is a vci model server (guards against a reused pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"vci.serve" in cmdline


def probe_ready(url: str, timeout: float = 2.0) -> bool:
    return probe_state(url, timeout) == "ready"


def probe_state(url: str, timeout: float = 2.0) -> str | None:
    """The server's state from ``/readyz`` (``ready``, ``loading``, ``self_test_failed``, ...), None when
    it does not answer."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/readyz", timeout=timeout) as resp:
            return "ready" if resp.status == 200 else None
    except urllib.error.HTTPError as exc:
        try:
            return str(json.loads(exc.read()).get("state")) or None
        except (OSError, ValueError, AttributeError):
            return None
    except OSError:
        return None


# What a local server inherits from the deploying process (nothing else: no AWS keys, registry passwords
# or tokens reach the model's code or /proc/PID/environ). VCI_* are the server's tuning knobs (see
# vci.serve.__main__); ports, the model dir and the ready file are the deploy's own, passed as flags.
INHERITED = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP",
    "PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV",
    "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
    "KERAS_BACKEND", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
    "VCI_WORKERS", "VCI_THREADS", "VCI_INLINE_BELOW_MS", "VCI_MAX_BODY_BYTES", "VCI_MAX_BUFFERED_BYTES",
    "VCI_REQUEST_TIMEOUT", "VCI_DRAIN_TIMEOUT", "VCI_BACKLOG", "VCI_MAX_BATCH_SIZE", "VCI_MAX_LATENCY_MS",
    "VCI_VALIDATE",
    "VCI_AUTH_TOKEN_FILE", "VCI_AUTH_ALL_ROUTES",  # not VCI_AUTH_TOKEN: a deployer's secret never reaches a server
)  # fmt: skip
INHERITED_PREFIXES = ("LC_",)


def server_environment(environ: Mapping[str, str], settings_env: Mapping[str, object], **own: str) -> dict[str, str]:
    """A local server's environment: the allowlisted part of ``environ``, then the environment's ``env:``
    setting (as a pod gets it), then ``own`` (VCI_WORK_DIR, VCI_RELEASE_ID)."""
    kept = {k: v for k, v in environ.items() if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
    return {**kept, **{k: str(v) for k, v in settings_env.items()}, **own}


def start_server(
    model_dir: Path,
    state_dir: Path,
    env: str,
    release_id: str,
    port: int | None = None,
    settings_env: Mapping[str, object] | None = None,
) -> dict:
    """Spawn ``python -m vci.serve`` detached from this process; return its record (not yet ready).
    ``settings_env`` is the environment's ``env:`` setting."""
    dirs = _dirs(state_dir)
    port = port or free_port()
    log_path = dirs["logs"] / f"{env}-{release_id}.log"
    work = dirs["work"] / f"{env}-{release_id}"
    server_env = server_environment(os.environ, settings_env or {}, VCI_WORK_DIR=str(work), VCI_RELEASE_ID=release_id)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vci.serve",
                "--model-dir",
                str(model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=server_env,
            start_new_session=True,
        )
    return {
        "pid": proc.pid,
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "log": str(log_path),
        "work_dir": str(work),
    }


def wait_ready(record: dict, timeout: float) -> None:
    """Wait for ``/readyz`` until it is ready, reports a terminal state, the process exits or ``timeout``
    passes; on failure stop the new process and raise DeployError saying why (see :func:`start_failure`)."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = probe_state(record["url"], timeout=1.0)
        if state == "ready":
            return
        if state in TERMINAL_STATES or not _alive(record["pid"]):
            break
        time.sleep(0.1)
    exited = not _alive(record["pid"])
    retire(record, Path(record["work_dir"]).parent)  # the record start_server made, not one read back
    raise start_failure(record["log"], "exited" if exited else f"was not ready after {timeout:.0f}s")


def start_failure(log_path: str, fallback: str) -> DeployError:
    """The DeployError of a server that did not become ready: what failed (load or self-test), the
    exception and the frames of the user's code, from its log; else ``fallback`` and the last log lines.
    One fact a line."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        text = ""
    failure = logview.start_failure(text)
    if failure is not None:
        head, details = "the new model server never became ready", logview.describe_failure(failure)
    else:
        head = f"the new model server {fallback}"
        details = ["last log lines:", *logview.last_lines(text)] if text.strip() else ["(its log is empty)"]
    lines = [f"{head}; the previous deployment keeps serving", *details, f"full log: {log_path}"]
    return DeployError("\n  ".join(lines))


def _alive(pid: int) -> bool:
    """Alive and a model server. Our own child is asked with waitpid (its cmdline is the parent's until
    it execs, so a cmdline check right after spawning would call it dead); any other pid by its cmdline."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return is_server_process(pid)


def stop_server(pid: int | None, timeout: float = 20.0) -> bool:
    """SIGTERM (graceful drain), then SIGKILL after ``timeout``. Returns whether a process was stopped."""
    if pid is None or not is_server_process(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def retire(record: dict, work_root: Path) -> None:
    """Stop a deployment's server and, once it has exited, remove its work directory (its extracted
    artifacts: a copy of the run's directories per deployment) if it lies in ``work_root``."""
    stop_server(record.get("pid"))
    work = Path(record.get("work_dir") or "")
    if not record.get("work_dir") or work.parent.resolve() != Path(work_root).resolve():
        return  # a record from before work directories were recorded, or one that names another place
    if record.get("pid") and _alive(record["pid"]):
        log.warning("the model server %s is still running; its work directory %s stays", record["pid"], work)
        return
    shutil.rmtree(work, ignore_errors=True)


def require_deployment(state_dir: Path, env: str) -> dict:
    record = read_deployment(state_dir, env)
    if record is None:
        raise NotFoundError(f"nothing is deployed to {env!r}", hint=f"deploy first: vci deploy RUN_ID --env {env}")
    return record


def replace_deployment(state_dir: Path, env: str, new: dict) -> dict | None:
    """Switch the environment to ``new`` and stop what ran before; returns the old record."""
    old = read_deployment(state_dir, env)
    _write_deployment(state_dir, env, new)
    if old and old.get("pid") != new.get("pid"):
        retire(old, _dirs(state_dir)["work"])
    return old


def switch_deployment(state_dir: Path, env: str, new: dict) -> dict | None:
    """Point ``env`` at ``new`` in one write (an atomic rename), stopping nothing; returns the old record."""
    old = read_deployment(state_dir, env)
    _write_deployment(state_dir, env, new)
    return old


def forget_deployment(state_dir: Path, env: str) -> None:
    """Drop ``env``'s record, stopping nothing (its server is now recorded under another name)."""
    _write_deployment(state_dir, env, None)


def remove_deployment(state_dir: Path, env: str) -> dict:
    record = require_deployment(state_dir, env)
    retire(record, _dirs(state_dir)["work"])
    _write_deployment(state_dir, env, None)
    return record
