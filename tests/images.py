"""Run real OCI images in tests: a cached Debian+python3 base layout, and containers started with runc.

    layout = base_image_layout()                     # scripts/build-base-image.sh, cached outside the checkout
    with run_image(layout, env={"VCI_PORT": "0"}, args=["python3", "-m", "http.server"]) as box:
        wait_http(box.url + "/", timeout=20); box.logs()
    run_image("127.0.0.1:5000/ml/iris@sha256:...")    # a registry ref: skopeo copy to a layout first

Only standard tools are used (skopeo, umoci, runc), so nothing here depends on vci.oci. How a container runs:
- ``skopeo copy --src-tls-verify=false docker://REF oci:DIR:run`` for registry refs (``insecure=True``);
- ``umoci unpack --image DIR:TAG BUNDLE`` (as root, so owners in the layers are kept). umoci already turns
  the image config into BUNDLE/config.json (user, env, cwd, args; HOME from the image's /etc/passwd).
  A read-only container's rootfs is unpacked once per manifest digest per test process and shared
  (root.path points at it; runc remounts it read-only inside the container only): saves ~4.5 s a run;
- config.json edits: ``process.terminal=false`` (no TTY under -d; TERM dropped from env), the network
  namespace removed (host network: each container gets its own port through VCI_PORT), ``env`` added over
  the image's env, ``args``/``user`` overrides only when given (else the image's user stays, 65532 for vci
  images), ``root.readonly`` plus a tmpfs at /tmp (the vci image contract: read-only root, writable /tmp);
- ``runc run -d --pid-file PIDFILE NAME`` with stdin from /dev/null and stdout/stderr to a log file.
No cgroup workaround was needed with runc 1.1.5 on these machines (cgroup v1, no systemd): umoci's spec has
no cgroupsPath and only a device rule under linux.resources, and runc's default cgroupfs driver accepts it.
A Python PID 1 ignores SIGTERM unless it installs a handler, so ``stop`` sends TERM, waits, then KILL.
Every container is deleted (``runc delete -f``) and its bundle removed on stop, at the end of a ``with``
block, and at interpreter exit. All waits are bounded.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from registry import free_port
from vci.errors import BuildError, DeployError

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-base-image.sh"
BASE_TAG = "base"
TOOLS = {"runc": "runc", "umoci": "umoci", "skopeo": "skopeo"}  # command -> Debian package
_LIVE: dict[str, "RunningContainer"] = {}
_NAMES = itertools.count(1)


def ensure_tools(*commands: str) -> None:
    """Install the Debian packages of missing commands (apt-get, as root); raise if that is impossible."""
    missing = [TOOLS.get(c, c) for c in commands if shutil.which(c) is None]
    if not missing:
        return
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise BuildError(f"cannot install {' '.join(missing)}: {proc.stderr.strip()[-300:]}",
                         hint="run scripts/test.sh as root, or apt-get install them yourself")


@functools.lru_cache(maxsize=None)
def base_image_layout(timeout: float = 900) -> Path:
    """The OCI layout (tag ``base``) of Debian bookworm minbase + python3, built once and cached."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BuildError(f"building the base image failed: {proc.stderr.strip()[-500:]}",
                         hint=f"run {BUILD_SCRIPT} by hand to see the whole log")
    return Path(proc.stdout.strip().splitlines()[-1])


def layout_manifest(layout: Path, tag: str | None = None) -> tuple[str, str]:
    """(tag, manifest digest) of the image named ``tag`` in ``layout``; without a tag the only one there."""
    index = json.loads((Path(layout) / "index.json").read_text())
    named = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"]
             for m in index["manifests"]}
    named.pop(None, None)
    if tag is None and len(named) == 1:
        tag = next(iter(named))
    if tag not in named:
        raise DeployError(f"no image tagged {tag!r} in {layout} (tags: {sorted(named)})",
                          hint="pass tag= or use a layout with exactly one tagged image")
    return tag, named[tag]


def fetch_image(ref: str, directory: Path, *, insecure: bool = True, timeout: float = 300) -> Path:
    """Copy a registry image into an OCI layout at ``directory`` (tag ``run``) with skopeo."""
    ensure_tools("skopeo")
    cmd = ["skopeo", "copy", "--quiet", f"--src-tls-verify={str(not insecure).lower()}",
           f"docker://{ref}", f"oci:{directory}:run"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise DeployError(f"skopeo could not copy {ref}: {proc.stderr.strip()[-300:]}",
                          hint="check the reference and that the registry is running")
    return directory


def _unpack(layout: Path, tag: str, bundle: Path) -> None:
    ensure_tools("umoci")
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise DeployError(f"umoci could not unpack {layout}:{tag}: {proc.stderr.strip()[-300:]}",
                          hint="check the layout with skopeo inspect oci:DIR:TAG")


@functools.lru_cache(maxsize=None)
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="vci-runc-"))
    atexit.register(shutil.rmtree, path, True)
    atexit.register(stop_all)  # atexit runs last-registered first: containers stop before their files go
    return path


def shared_bundle(layout: Path, tag: str, digest: str) -> Path:
    """An umoci bundle of ``digest`` unpacked once per process; read-only containers share its rootfs."""
    shared = _scratch() / "unpacked" / digest.replace(":", "-")
    if not shared.exists():
        tmp = shared.with_name(shared.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _unpack(layout, tag, tmp)
        tmp.rename(shared)
    return shared


def container_spec(spec: dict, *, env: dict[str, str], args: list[str] | None, user: tuple[int, int] | None,
                   read_only: bool, rootfs: Path) -> dict:
    """``spec`` (umoci's config.json) edited for a detached, host-network test container (pure)."""
    spec = json.loads(json.dumps(spec))
    process = spec["process"]
    process["terminal"] = False
    image_env = [e for e in process.get("env", []) if not e.startswith("TERM=")]
    keys = {e.split("=", 1)[0] for e in image_env} | set(env)
    merged = dict(e.split("=", 1) for e in image_env) | env
    process["env"] = [f"{k}={merged[k]}" for k in sorted(keys)]
    if args is not None:
        process["args"] = list(args)
    if user is not None:
        process["user"] = {"uid": user[0], "gid": user[1]}
    linux = spec.setdefault("linux", {})
    linux["namespaces"] = [ns for ns in linux.get("namespaces", []) if ns["type"] != "network"]
    spec["root"] = {"path": str(rootfs), "readonly": read_only}
    mounts = [m for m in spec.get("mounts", []) if m["destination"] != "/tmp"]
    spec["mounts"] = mounts + [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "mode=1777", "size=256m"]}]
    return spec


class RunningContainer:
    """A runc container started by :func:`run_image`; ``stop()`` (or leaving ``with``) deletes it."""

    def __init__(self, name: str, bundle: Path, log_path: Path, port: int):
        self.name, self.bundle, self.log_path, self.port = name, bundle, log_path, port
        self.url = f"http://127.0.0.1:{port}"
        self.pid = int((bundle / "pid").read_text().strip())

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self) -> str:
        """runc's status (``running``, ``stopped``, ...), or ``gone`` once deleted."""
        proc = subprocess.run(["runc", "state", self.name], capture_output=True, text=True, timeout=30)
        return json.loads(proc.stdout)["status"] if proc.returncode == 0 else "gone"

    def _wait_stopped(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status() in ("stopped", "gone"):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10) -> str:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; delete it. Returns the signal that ended it."""
        if self.name not in _LIVE:
            return "none"
        signal = "none"
        try:
            for signal, wait in (("TERM", timeout), ("KILL", 10)):
                subprocess.run(["runc", "kill", self.name, signal], capture_output=True, timeout=30)
                if self._wait_stopped(wait):
                    break
        finally:
            subprocess.run(["runc", "delete", "-f", self.name], capture_output=True, timeout=60)
            _LIVE.pop(self.name, None)
            shutil.rmtree(self.bundle, ignore_errors=True)
        return signal

    def __enter__(self) -> "RunningContainer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_all() -> None:
    """Stop every container this process started and has not stopped yet."""
    for box in list(_LIVE.values()):
        box.stop(timeout=2)


def run_image(layout_or_ref: str | Path, *, env: dict[str, str] | None = None, port: int | None = None,
              name: str | None = None, insecure: bool = True, args: list[str] | None = None,
              user: tuple[int, int] | None = None, read_only: bool = True, tag: str | None = None) -> RunningContainer:
    """Start an image (an OCI layout directory, or a registry ref) with runc on the host network.

    ``port`` (a free one by default) is passed as VCI_PORT unless ``env`` sets it; ``args`` and ``user``
    override the image's command and user; the container's root is read-only with a tmpfs /tmp.
    """
    ensure_tools("runc", "umoci")
    name = name or f"vci-test-{os.getpid()}-{next(_NAMES)}"
    bundle = _scratch() / name
    bundle.mkdir(parents=True)
    try:
        layout = Path(layout_or_ref)
        if not (layout / "index.json").is_file():
            layout = fetch_image(str(layout_or_ref), bundle / "image", insecure=insecure)
        tag, digest = layout_manifest(layout, tag)
        if read_only:
            unpacked = shared_bundle(layout, tag, digest)
        else:
            unpacked = bundle / "unpacked"
            _unpack(layout, tag, unpacked)
        port = port or free_port()
        env = {"VCI_PORT": str(port), **(env or {})}
        spec = container_spec(json.loads((unpacked / "config.json").read_text()), env=env, args=args,
                              user=user, read_only=read_only, rootfs=unpacked / "rootfs")
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        return _start(name, bundle, port)
    except BaseException:
        shutil.rmtree(bundle, ignore_errors=True)
        raise


def _start(name: str, bundle: Path, port: int) -> RunningContainer:
    log_path = bundle.with_name(name + ".log")  # outside the bundle: readable after stop()
    with open(log_path, "ab") as log:
        proc = subprocess.run(["runc", "run", "-d", "--pid-file", str(bundle / "pid"), name], cwd=bundle,
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60)
    if proc.returncode != 0:
        subprocess.run(["runc", "delete", "-f", name], capture_output=True, timeout=60)
        raise DeployError(f"runc could not start {name}: {log_path.read_text(errors='replace')[-500:]}",
                          hint="see the module docstring of tests/images.py for the runc set-up used")
    box = RunningContainer(name, bundle, log_path, port)
    _LIVE[name] = box
    return box


def runc_names() -> list[str]:
    """Names of the containers runc knows about (any state)."""
    proc = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True, timeout=30)
    return [c["id"] for c in json.loads(proc.stdout or "null") or []]


def wait_http(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """Poll ``url`` until it answers (any HTTP status); (status, body). Raises after ``timeout`` s."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=min(5.0, max(0.1, deadline - time.monotonic()))) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
    raise DeployError(f"{url} did not answer within {timeout} s (last error: {last})",
                      hint="look at the container's logs()")


@pytest.fixture(scope="session")
def base_layout() -> Path:
    """The cached base image layout (tag ``base``); built on first use (about 80 s), then instant."""
    return base_image_layout()


@pytest.fixture
def containers():
    """A ``run_image`` that stops, at the end of the test, every container it started."""
    started: list[RunningContainer] = []

    def start(*args, **kwargs) -> RunningContainer:
        started.append(run_image(*args, **kwargs))
        return started[-1]

    yield start
    for box in started:
        box.stop(timeout=2)
