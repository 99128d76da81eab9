"""Run real OCI images in tests: a cached Debian+python3 base layout, and containers started with runc.

    layout = base_image_layout()                  # scripts/build-base-image.sh, cached outside the checkout
    with run_image(layout, args=["python3", "-m", "http.server", "8000"], port=8000) as box:
        wait_http(box.url + "/", timeout=20, container=box); box.logs()
    run_image("127.0.0.1:5000/ml/iris@sha256:...")    # a registry ref (skopeo copy); also "oci:DIR:TAG", DIR

Only standard tools (skopeo, umoci, runc), nothing from vci.oci. How a container runs (workarounds included):
- registry refs: ``skopeo copy --src-tls-verify=false docker://REF oci:DIR:run`` (skipped when a ref's
  digest was already unpacked by this process);
- ``umoci unpack --image DIR:TAG`` (as root: layer owners kept; image config -> config.json with user, env,
  cwd, args, HOME from /etc/passwd), once per manifest digest per process (4.5 s idle, 20+ s under load),
  or once for good for layouts in the test cache (the base image: kept in LAYOUT-unpacked/).
  Containers share that rootfs (root.path points at it, runc remounts it read-only in the container only);
  ``read_only=False`` gets an overlay mount on it (upper dir in the bundle), or a copy without overlayfs;
- config.json: ``process.terminal=false`` (no TTY with -d; TERM dropped), network namespace removed (host
  network; each container gets its own port via VCI_PORT), ``env`` over the image's env, ``args``/``user``
  only when given (else the image's user, 65532 for vci images), ``root.readonly`` + tmpfs /tmp (the vci
  image contract);
- ``runc run -d --pid-file PIDFILE NAME``, stdin /dev/null, stdout/stderr to NAME.log beside the bundle.
No cgroup workaround was needed (runc 1.1.5, cgroup v1, no systemd): umoci's spec has no cgroupsPath and
only a device rule in linux.resources, which runc's cgroupfs driver accepts. A Python PID 1 ignores SIGTERM
without a handler, so ``stop`` sends TERM, waits, then KILL, then ``runc delete -f``; containers are also
stopped at the end of ``with`` and at exit. Every wait is bounded.
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

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build-base-image.sh"
_LIVE: dict[str, RunningContainer] = {}
_NAMES = itertools.count(1)


def require_tools(*commands: str) -> None:
    """Raise a clear error naming the Debian packages to install when a command is missing."""
    missing = [c for c in commands if shutil.which(c) is None]  # each tool's Debian package has its name
    if missing:
        names = " ".join(missing)
        raise DeployError(f"{names} not installed", hint=f"apt-get install -y {names}")


@functools.cache
def base_image_layout(timeout: float = 900, *, languages: bool = False) -> Path:
    """The OCI layout (tag ``base``) of Debian bookworm minbase + python3, built once and cached;
    ``languages``: the base with R (and Debian's rpy2) and a JRE beside python3."""
    flags = ["--languages"] if languages else []
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), *flags], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BuildError(
            f"building the base image failed: {proc.stderr.strip()[-500:]}",
            hint=f"run {BUILD_SCRIPT} by hand to see the whole log",
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def layout_manifest(layout: Path, tag: str | None = None) -> tuple[str, str]:
    """(tag, manifest digest) of the image named ``tag`` in ``layout``; without a tag the only one there."""
    index = json.loads((Path(layout) / "index.json").read_text())
    named = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
        if "org.opencontainers.image.ref.name" in m.get("annotations", {})
    }
    tag = next(iter(named)) if tag is None and len(named) == 1 else tag
    if tag not in named:
        raise DeployError(
            f"no image tagged {tag!r} in {layout} (tags: {sorted(named)})",
            hint="pass tag= or use a layout with exactly one tagged image",
        )
    return tag, named[tag]


def _tool(cmd: list[str], failure: str, hint: str, timeout: float = 300) -> None:
    require_tools(cmd[0])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise DeployError(f"{failure}: {proc.stderr.strip()[-300:]}", hint=hint)


def fetch_image(ref: str, directory: Path, *, insecure: bool = True, authfile: Path | None = None) -> Path:
    """Copy a registry image into an OCI layout at ``directory`` (tag ``run``) with skopeo; ``authfile`` is a
    containers-auth.json with the registry's credentials (never on the command line)."""
    auth = [f"--src-authfile={authfile}"] if authfile else []
    _tool(
        [
            "skopeo",
            "copy",
            "--quiet",
            f"--src-tls-verify={str(not insecure).lower()}",
            *auth,
            f"docker://{ref}",
            f"oci:{directory}:run",
        ],
        f"skopeo could not copy {ref}",
        "check the ref and the registry",
    )
    return directory


@functools.cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="vci-runc-"))
    atexit.register(shutil.rmtree, path, True)
    atexit.register(stop_all)  # atexit runs last-registered first: containers stop before their files go
    return path


def cache_root() -> Path:
    """Where the base image (and its unpacked bundle) are kept between test runs."""
    return Path(os.environ.get("VCI_TEST_CACHE") or Path.home() / ".cache" / "vci-test").resolve()


def unpacked_already(digest: str) -> Path | None:
    """A bundle of this exact image (same manifest digest) unpacked before, in the test cache or here."""
    name = digest.replace(":", "-")
    found = [_scratch() / name, *cache_root().glob(f"*-unpacked/{name}")]
    return next((path for path in found if (path / "config.json").is_file()), None)


def shared_bundle(layout: Path, tag: str, digest: str) -> Path:
    """An umoci bundle of ``digest``, unpacked once: beside the layout for layouts in the test cache (kept
    between runs), else in this process's scratch dir. Containers never write to it."""
    layout = Path(layout).resolve()
    home = layout.with_name(layout.name + "-unpacked") if layout.is_relative_to(cache_root()) else _scratch()
    shared = unpacked_already(digest) or home / digest.replace(":", "-")
    if not shared.exists():
        tmp = home / f".{shared.name}.tmp.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        _tool(
            ["umoci", "unpack", "--image", f"{layout}:{tag}", str(tmp)],
            f"umoci could not unpack {layout}:{tag}",
            "check the layout with skopeo inspect oci:DIR:TAG",
        )
        try:
            tmp.rename(shared)
        except OSError:  # another process finished the same unpack first
            shutil.rmtree(tmp, ignore_errors=True)
    return shared


def container_spec(
    spec: dict,
    *,
    env: dict[str, str],
    args: list[str] | None,
    user: tuple[int, int] | None,
    read_only: bool,
    rootfs: Path,
) -> dict:
    """``spec`` (umoci's config.json) edited for a detached, host-network test container (pure)."""
    spec = json.loads(json.dumps(spec))
    process = spec["process"]
    process["terminal"] = False
    image_env = [e for e in process.get("env", []) if not e.startswith("TERM=")]
    merged = dict(e.split("=", 1) for e in image_env) | env
    process["env"] = [f"{k}={v}" for k, v in sorted(merged.items())]
    if args is not None:
        process["args"] = list(args)
    if user is not None:
        process["user"] = {"uid": user[0], "gid": user[1]}
    linux = spec.setdefault("linux", {})
    linux["namespaces"] = [ns for ns in linux.get("namespaces", []) if ns["type"] != "network"]
    spec["root"] = {"path": str(rootfs), "readonly": read_only}
    mounts = [m for m in spec.get("mounts", []) if m["destination"] != "/tmp"]
    spec["mounts"] = mounts + [
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=256m"],
        }
    ]
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

    def wait_stopped(self, timeout: float) -> bool:
        """Whether its process has ended (or it was deleted) within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status() in ("stopped", "gone"):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10) -> str:
        """SIGTERM, wait up to ``timeout`` s, SIGKILL, delete. Returns what ended it: ``"TERM"``, ``"KILL"``,
        ``"exited"`` (it had ended by itself) or ``"none"`` (stopped before)."""
        if self.name not in _LIVE:
            return "none"
        signal = "exited"
        try:
            if self.status() in ("stopped", "gone"):
                return signal
            for signal, wait in (("TERM", timeout), ("KILL", 10)):
                subprocess.run(["runc", "kill", self.name, signal], capture_output=True, timeout=30)
                if self.wait_stopped(wait):
                    break
        finally:
            subprocess.run(["runc", "delete", "-f", self.name], capture_output=True, timeout=60)
            _LIVE.pop(self.name, None)
            remove_bundle(self.bundle)
        return signal

    def __enter__(self) -> RunningContainer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_all() -> None:
    """Stop every container this process started and has not stopped yet."""
    for box in list(_LIVE.values()):
        box.stop(timeout=2)


def run_image(
    layout_or_ref: str | Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    name: str | None = None,
    insecure: bool = True,
    args: list[str] | None = None,
    user: tuple[int, int] | None = None,
    read_only: bool = True,
    tag: str | None = None,
    authfile: Path | None = None,
) -> RunningContainer:
    """Start an image (layout dir, ``oci:DIR:TAG`` or registry ref) with runc on the host network. ``port``
    (free by default) goes in VCI_PORT unless ``env`` sets it; ``args``/``user`` override the image's."""
    require_tools("runc", "umoci")
    name = name or f"vci-test-{os.getpid()}-{next(_NAMES)}"
    bundle = _scratch() / "containers" / name
    bundle.mkdir(parents=True)
    try:
        layout, tag, digest = _locate(str(layout_or_ref), tag, bundle / "image", insecure, authfile)
        unpacked = shared_bundle(layout, tag, digest)
        rootfs = unpacked / "rootfs" if read_only else writable_rootfs(unpacked / "rootfs", bundle)
        port = port or free_port()
        env = {"VCI_PORT": str(port), **(env or {})}
        spec = container_spec(
            json.loads((unpacked / "config.json").read_text()),
            env=env,
            args=args,
            user=user,
            read_only=read_only,
            rootfs=rootfs,
        )
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        return _start(name, bundle, port)
    except BaseException:
        remove_bundle(bundle)
        raise


def _locate(
    source: str, tag: str | None, fetch_dir: Path, insecure: bool, authfile: Path | None = None
) -> tuple[Path, str | None, str]:
    """(layout, tag, manifest digest) of a layout dir, ``oci:DIR[:TAG]`` or registry ref (fetched if new)."""
    path, _, named = source[4:].partition(":") if source.startswith("oci:") else (source, "", "")
    layout, tag, digest = Path(path), named or tag, source.rpartition("@")[2]
    if "@sha256:" in source and unpacked_already(digest):
        return layout, tag, digest  # this exact image is unpacked already: no need to fetch it again
    if not (layout / "index.json").is_file():
        layout = fetch_image(source, fetch_dir, insecure=insecure, authfile=authfile)
    return (layout, *layout_manifest(layout, tag))


def writable_rootfs(lower: Path, bundle: Path) -> Path:
    """A private writable root: an overlay on the shared rootfs, or a copy of it without overlayfs."""
    merged = bundle / "rootfs"
    for part in ("upper", "work", "rootfs"):
        (bundle / part).mkdir()
    opts = f"lowerdir={lower},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
    if (
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], capture_output=True, timeout=30
        ).returncode
        != 0
    ):
        subprocess.run(["cp", "-a", "--reflink=auto", f"{lower}/.", str(merged)], check=True, timeout=600)
    return merged


def remove_bundle(bundle: Path) -> None:
    """Unmount a bundle's overlay root (if any) and delete the bundle."""
    if os.path.ismount(bundle / "rootfs"):
        if subprocess.run(["umount", str(bundle / "rootfs")], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(bundle / "rootfs")], capture_output=True, timeout=30)
    shutil.rmtree(bundle, ignore_errors=True)


def _start(name: str, bundle: Path, port: int) -> RunningContainer:
    log_path = bundle.with_name(name + ".log")  # outside the bundle: readable after stop()
    with open(log_path, "ab") as log:
        proc = subprocess.run(
            ["runc", "run", "-d", "--pid-file", str(bundle / "pid"), name],
            cwd=bundle,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            timeout=60,
        )
    if proc.returncode != 0:
        subprocess.run(["runc", "delete", "-f", name], capture_output=True, timeout=60)
        raise DeployError(
            f"runc could not start {name}: {log_path.read_text(errors='replace')[-500:]}",
            hint="see the module docstring of tests/images.py for the runc set-up used",
        )
    box = RunningContainer(name, bundle, log_path, port)
    _LIVE[name] = box
    return box


def runc_names() -> list[str]:
    """Names of the containers runc knows about (any state)."""
    proc = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True, timeout=30)
    return [c["id"] for c in json.loads(proc.stdout or "null") or []]


def wait_http(url: str, timeout: float = 30, container: RunningContainer | None = None) -> tuple[int, bytes]:
    """Poll ``url`` until it answers (any HTTP status); (status, body). Raises after ``timeout`` s, or
    as soon as ``container`` (when given) has stopped, with its logs in the message."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if container is not None and container.status() in ("stopped", "gone"):
            raise DeployError(
                f"container {container.name} stopped before {url} answered: {container.logs()[-800:]}",
                hint="its command failed; see the log above",
            )
        try:
            with urllib.request.urlopen(url, timeout=min(5.0, max(0.1, deadline - time.monotonic()))) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
    raise DeployError(
        f"{url} did not answer within {timeout} s (last error: {last})", hint="look at the container's logs()"
    )


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


def scratch_base_layout(directory: Path) -> str:
    """An empty base layout labelled with this Python (``oci:DIR:base``): enough to build, push and
    inspect an image, not to run one."""
    import platform

    from vci.oci.image import ContainerConfig, append_layers, scratch_image
    from vci.oci.layout import write_layout

    py = ".".join(platform.python_version().split(".")[:2])
    image = append_layers(scratch_image(), [], epoch=0, config=ContainerConfig(labels={"vci.python": py}))
    write_layout(directory, image, "base")
    return f"oci:{directory}:base"


def index_base_layout(directory: Path, amd64: str | None = None) -> str:
    """A base image index (``oci:DIR:base``): ``amd64`` (an ``oci:DIR:TAG`` base, else an empty one) for
    linux/amd64, and an empty image labelled with this Python for linux/arm64.

    Nothing runs arm64 here (no QEMU, and debootstrap's second stage runs the target's binaries), so the
    arm64 base is empty rather than the amd64 rootfs relabelled: that would put x86-64 objects in an
    arm64 image. The tests of an index check what vci adds on the base (the dependency layer's objects,
    the shared layers), never the base's contents."""
    import platform

    from vci.oci.image import ContainerConfig, append_layers, image_index, scratch_image
    from vci.oci.layout import read_layout, write_layout

    labels = ContainerConfig(labels={"vci.python": ".".join(platform.python_version().split(".")[:2])})
    if amd64:
        path, _, tag = amd64.removeprefix("oci:").partition(":")
        x86 = read_layout(path, tag or None)
    else:
        x86 = append_layers(scratch_image("linux/amd64"), [], epoch=0, config=labels)
    arm = append_layers(scratch_image("linux/arm64"), [], epoch=0, config=labels)
    write_layout(directory, image_index([x86, arm]), "base")
    return f"oci:{directory}:base"
