"""An image vci did not build: a model server in busybox shell (Debian's busybox-static), made with umoci.

    layout = foreign_image(tmp_path / "img", factor=2)               # OCI layout, tag "foreign"
    ref = push_layout(layout, f"{registry.host}/ml/shell-staging")   # -> HOST/ml/shell-staging@sha256:...

The server answers vci's serving contract: GET /healthz, GET /readyz, POST /predict (a list of numbers ->
each times ``factor``, computed by awk; anything else 422), on $VCI_PORT, as user 65532, on a read-only
root. ``predict=False`` leaves POST /predict out (404), to see the contract check name it. busybox's
``nc -ll -e`` runs the handler once per connection; PID 1 is a shell that stops nc on SIGTERM.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SERVE = """#!/bin/sh
trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
/bin/busybox nc -ll -p "${VCI_PORT:-8080}" -e /srv/handler &
child=$!
wait "$child"
"""
HANDLER = """#!/bin/sh
cr=$(printf '\\r')
read -r method path _
length=0
while read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && break
  case "$line" in [Cc]ontent-[Ll]ength:*) length=$(( ${line#*:} + 0 ));; esac
done
body=""
[ "$length" -gt 0 ] && body=$(head -c "$length")
respond() {
  printf 'HTTP/1.1 %s\\r\\nContent-Type: application/json\\r\\n' "$1"
  printf 'Content-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s' "${#2}" "$2"
}
scaled() {
  printf '%s' "$body" | awk -v f="$FACTOR" '{ s = s $0 } END {
    gsub(/[][ \\t\\r\\n]/, "", s); if (s == "") { print "[]"; exit }
    n = split(s, a, ","); o = "["
    for (i = 1; i <= n; i++) {
      if (a[i] !~ /^-?[0-9]+(\\.[0-9]+)?$/) { print "refused"; exit }
      o = o (i > 1 ? ", " : "") a[i] * f
    }
    print o "]" }'
}
case "$method ${path%%\\?*}" in
  "GET /healthz") respond "200 OK" '{"status": "alive"}' ;;
  "GET /readyz") respond "200 OK" '{"status": "ready"}' ;;
PREDICT  *) respond "404 Not Found" "{\\"error\\": \\"no route $method ${path%%\\?*}\\"}" ;;
esac
"""
PREDICT = """  "POST /predict")
    out=$(scaled)
    if [ "$out" = refused ]; then respond "422 Unprocessable Entity" '{"error": "expected a list of numbers"}'
    else respond "200 OK" "$out"; fi ;;
"""


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout


def foreign_image(directory: Path, *, factor: int = 2, predict: bool = True) -> Path:
    """An OCI layout at ``directory`` (tag ``foreign``) holding the busybox server; no daemon, no Python."""
    layout, bundle = directory / "layout", directory / "bundle"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:foreign")
    _run("umoci", "unpack", "--image", f"{layout}:foreign", str(bundle))
    root = bundle / "rootfs"
    for sub in ("bin", "srv", "tmp"):
        (root / sub).mkdir(exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")  # busybox-static: needs no library
    (root / "bin" / "sh").symlink_to("busybox")
    for name, text in {"serve": SERVE, "handler": HANDLER.replace("PREDICT", PREDICT if predict else "")}.items():
        (root / "srv" / name).write_text(text)
        (root / "srv" / name).chmod(0o755)
    _run("umoci", "repack", "--image", f"{layout}:foreign", str(bundle))
    _run(
        "umoci", "config", "--image", f"{layout}:foreign", "--config.user", "65532:65532",
        "--config.env", f"FACTOR={factor}", "--config.env", "VCI_PORT=8080",
        "--config.entrypoint", "/bin/sh", "--config.cmd", "/srv/serve", "--config.workingdir", "/srv",
    )  # fmt: skip
    return layout


def push_layout(layout: Path, repository: str) -> str:
    """``repository@digest`` of the layout's image, copied there with skopeo (plain HTTP registry)."""
    digest_file = layout.parent / "digest"
    _run(
        "skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"--digestfile={digest_file}",
        f"oci:{layout}:foreign", f"docker://{repository}:foreign",
    )  # fmt: skip
    return f"{repository}@{digest_file.read_text().strip()}"
