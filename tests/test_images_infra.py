"""The image test infrastructure itself: the cached base image layout and containers run with runc."""

from __future__ import annotations

import errno
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from images import BUILD_SCRIPT, base_layout, container_spec, containers, layout_manifest, runc_names, wait_http
from registry import RegistryServer
from vci.errors import DeployError

__all__ = ["base_layout", "containers"]  # fixtures used below

# A tiny server run as the container's PID 1: it reports who it runs as and what it may write; drains on TERM.
PROBE = r"""
import errno, http.server, json, os, signal, sys
def probe():
    existed = os.path.exists("/etc/vci-probe")
    try:
        open("/etc/vci-probe", "w").close(); root = "writable"
    except OSError as exc:
        root = errno.errorcode[exc.errno]
    with open("/tmp/written-by", "w") as f:
        f.write(str(os.getuid()))
    return {"uid": os.getuid(), "gid": os.getgid(), "root": root, "existed": existed,
            "tmp": open("/tmp/written-by").read(),
            "env": {k: os.environ.get(k) for k in ("VCI_PORT", "GREETING", "PATH", "TERM")}}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(probe()).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
def drain(*_):
    print("got SIGTERM", flush=True); os._exit(0)
signal.signal(signal.SIGTERM, drain)
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["VCI_PORT"])), Handler)
print("serving on", server.server_address[1], flush=True)
server.serve_forever()
"""


def _image_config(layout: Path) -> dict:
    proc = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{layout}:base"], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_base_layout_is_cached_and_inspectable(base_layout):
    again = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=60, check=True)
    assert Path(again.stdout.strip()) == base_layout
    assert "debootstrap" not in again.stderr  # served from the cache, not rebuilt
    inspect = json.loads(
        subprocess.run(
            ["skopeo", "inspect", f"oci:{base_layout}:base"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    assert (inspect["Architecture"], inspect["Os"], len(inspect["Layers"])) == ("amd64", "linux", 1)
    config = _image_config(base_layout)["config"]
    assert config["Cmd"] == ["python3"]
    assert any(e.startswith("PATH=") and "/usr/bin" in e for e in config["Env"])
    assert config["Labels"]["vci.python.version"].startswith(config["Labels"]["vci.python"] + ".")


@pytest.mark.slow
def test_base_layer_is_reproducible_in_form(base_layout):
    _, digest = layout_manifest(base_layout, "base")
    blobs = base_layout / "blobs" / "sha256"
    manifest = json.loads((blobs / digest.split(":")[1]).read_text())
    layer = blobs / manifest["layers"][0]["digest"].split(":")[1]
    with open(layer, "rb") as f:
        header = f.read(10)
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(layer, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {m.mtime for m in members} == {0}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    assert "usr/bin/python3" in names and "etc/ssl/certs/ca-certificates.crt" in names
    assert not [n for n in names if n.split("/")[0] in ("dev", "proc", "sys", "tmp") and "/" in n]
    assert not [n for n in names if n.startswith(("var/lib/apt/lists/", "usr/share/doc/"))]
    home = next(m for m in members if m.name == "home/nonroot")
    assert (home.uid, home.gid) == (65532, 65532)


@pytest.mark.slow
def test_probe_runs_as_nonroot_with_readonly_root(base_layout, containers):
    box = containers(base_layout, args=["python3", "-c", PROBE], user=(65532, 65532), env={"GREETING": "hi"})
    status, body = wait_http(box.url + "/", timeout=30)
    seen = json.loads(body)
    assert status == 200
    assert (seen["uid"], seen["gid"], seen["tmp"]) == (65532, 65532, "65532")
    assert seen["root"] == errno.errorcode[errno.EROFS]
    assert seen["env"]["VCI_PORT"] == str(box.port) and seen["env"]["GREETING"] == "hi"
    assert "/usr/bin" in seen["env"]["PATH"] and seen["env"]["TERM"] is None
    assert box.name in runc_names() and box.status() == "running"
    assert box.stop(timeout=10) == "TERM"
    assert "serving on" in box.logs() and "got SIGTERM" in box.logs()
    assert box.name not in runc_names() and not box.bundle.exists()


@pytest.mark.slow
def test_pid1_without_handler_is_killed_and_deleted(base_layout, containers):
    box = containers(base_layout, args=["python3", "-c", "import time; print('up'); time.sleep(600)"])
    assert box.status() == "running"
    assert box.stop(timeout=0.5) == "KILL"
    assert box.name not in runc_names() and box.status() == "gone"
    assert box.stop() == "none"  # stopping twice is harmless


@pytest.mark.slow
def test_a_container_that_exits_is_reported_with_its_logs(base_layout, containers):
    box = containers(base_layout, args=["python3", "-c", "import sys; sys.exit('no model here')"])
    with pytest.raises(DeployError, match="no model here"):
        wait_http(box.url + "/", timeout=30, container=box)
    assert box.wait_stopped(5) and box.stop() == "exited"
    assert box.name not in runc_names()


@pytest.mark.slow
def test_writable_root_runs_image_user_and_keeps_base_clean(base_layout, containers):
    box = containers(base_layout, args=["python3", "-c", PROBE], read_only=False)
    seen = json.loads(wait_http(box.url + "/", timeout=30)[1])
    assert (seen["uid"], seen["root"], seen["existed"]) == (0, "writable", False)  # the image's user: root
    assert json.loads(wait_http(box.url + "/", timeout=30)[1])["existed"] is True  # it really wrote /etc
    box.stop()
    again = containers(base_layout, args=["python3", "-c", PROBE], user=(65532, 65532))
    seen = json.loads(wait_http(again.url + "/", timeout=30)[1])
    assert (seen["root"], seen["existed"]) == (errno.errorcode[errno.EROFS], False)


@pytest.mark.slow
def test_runs_an_image_pulled_from_a_real_registry(base_layout, containers, tmp_path):
    with RegistryServer(tmp_path / "registry") as reg:
        ref = f"{reg.host}/vci/base:1"
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{base_layout}:base", f"docker://{ref}"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        box = containers(ref, args=["python3", "-c", PROBE], user=(65532, 65532))
        status, body = wait_http(box.url + "/", timeout=30, container=box)
        assert status == 200 and json.loads(body)["uid"] == 65532
        inspect = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        digest = json.loads(inspect.stdout)["Digest"]
        by_digest = containers(f"{reg.host}/vci/base@{digest}", args=["python3", "-c", PROBE])
        assert wait_http(by_digest.url + "/", timeout=30, container=by_digest)[0] == 200


def test_container_spec_edits_only_what_the_contract_needs():
    spec = {
        "process": {
            "terminal": True,
            "env": ["PATH=/bin", "TERM=xterm", "HOME=/root"],
            "args": ["python3"],
            "user": {"uid": 65532, "gid": 65532},
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "bind", "source": "/host/tmp"},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}]},
    }
    out = container_spec(
        spec, env={"VCI_PORT": "9000", "HOME": "/tmp"}, args=None, user=None, read_only=True, rootfs=Path("/x/rootfs")
    )
    assert out["process"]["terminal"] is False
    assert out["process"]["env"] == ["HOME=/tmp", "PATH=/bin", "VCI_PORT=9000"]
    assert out["process"]["user"] == {"uid": 65532, "gid": 65532} and out["process"]["args"] == ["python3"]
    assert [ns["type"] for ns in out["linux"]["namespaces"]] == ["pid", "mount"]
    assert out["root"] == {"path": "/x/rootfs", "readonly": True}
    assert [(m["destination"], m["type"]) for m in out["mounts"]] == [("/proc", "proc"), ("/tmp", "tmpfs")]
    assert spec["process"]["terminal"] is True  # the input is not modified
