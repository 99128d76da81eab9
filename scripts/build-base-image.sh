#!/usr/bin/env bash
# Build (once, then cached) a Debian bookworm minbase + python3 base image as an OCI image layout tagged `base`.
#
# Usage: scripts/build-base-image.sh [--languages] [OUT_DIR]   prints the layout path (use it as oci:PATH:base)
#   --languages: the "other languages" base, with R (r-base-core, Debian's python3-rpy2 built for its R) and a
#   JRE (openjdk-17-jre-headless) beside python3, for vci.frameworks.r and vci.frameworks.pmml models.
#   OUT_DIR defaults to ${VCI_TEST_CACHE:-$HOME/.cache/vci-test}/base-bookworm-<py3|languages>-<KEY>, where KEY
#   hashes the recipe (RECIPE version, suite, variant, package list, mirror, epoch): a changed recipe builds anew.
# An existing OUT_DIR is reused as is (it only ever appears complete: the build happens in a temporary
# directory beside it that is renamed at the end; a lock serialises concurrent builds; an interrupted build
# leaves only a temporary directory that the next run removes).
# The image: one reproducible gzip layer (sorted entries, fixed mtimes, numeric owners, no user/group names,
# gzip without name or timestamp), /dev /proc /sys /tmp /run empty, apt lists/caches, docs, man pages and
# locales removed, a `nonroot` user 65532 (the vci image contract); config Env PATH/LANG, Cmd python3,
# labels vci.python=<major.minor> and vci.python.version=<full version> read from the python3 inside.
# Needs root (debootstrap, chroot); installs debootstrap, and umoci/skopeo/runc for the tests, if missing.
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
INCLUDE=python3,ca-certificates
FLAVOUR=py3
if [ "${1:-}" = "--languages" ]; then
  shift
  FLAVOUR=languages   # rpy2 from Debian: it matches Debian's R (PyPI's 3.6 needs R 4.5; its 3.5 is an sdist)
  INCLUDE=$INCLUDE,r-base-core,python3-rpy2,python3-cffi-backend,openjdk-17-jre-headless   # debootstrap resolves no virtual package: cffi named
fi
EPOCH=${SOURCE_DATE_EPOCH:-0}

mirror_of_apt() {  # the Debian mirror apt uses here (deb822 .sources first, then sources.list), else deb.debian.org
  local uri
  uri=$(awk 'tolower($1)=="uris:" {u=$2} tolower($1)=="suites:" && u!="" && $0 ~ / '"$SUITE"'( |$)/ {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="'"$SUITE"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR=${VCI_DEBIAN_MIRROR:-$(mirror_of_apt)}
RECIPE=1   # bump when the steps below change what goes into the image
KEY=$(echo "$RECIPE $SUITE $VARIANT $INCLUDE $MIRROR $EPOCH" | sha256sum | cut -c1-12)
OUT=${1:-${VCI_TEST_CACHE:-$HOME/.cache/vci-test}/base-$SUITE-$FLAVOUR-$KEY}
OUT=$(realpath -m "$OUT")

install_missing() {  # the tools that build (debootstrap) and run (umoci, skopeo, runc) images in tests
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "build-base-image: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}
PATH=$PATH:/usr/sbin:/sbin
install_missing umoci skopeo runc || echo "build-base-image: could not install umoci/skopeo/runc (tests need them)" >&2
if [ -f "$OUT/index.json" ]; then echo "$OUT"; exit 0; fi
install_missing debootstrap
[ "$(id -u)" -eq 0 ] || { echo "build-base-image: debootstrap needs root (run as root or via sudo)" >&2; exit 1; }

if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  echo "build-base-image: $OUT exists and is not an image layout; remove it or choose another OUT_DIR" >&2; exit 1
fi
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock -w 900 9 || { echo "build-base-image: another build holds $OUT.lock for more than 15 min" >&2; exit 1; }
if [ -f "$OUT/index.json" ]; then echo "$OUT"; exit 0; fi   # built by whoever held the lock

remove_tree() {  # unmount whatever debootstrap left mounted inside, then delete without crossing filesystems
  local dir=$1
  [ -e "$dir" ] || return 0
  awk '{print $2}' /proc/mounts | grep -F "$dir/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$dir"
}
for stale in "$OUT".tmp.*; do remove_tree "$stale"; done   # left by interrupted builds (we hold the lock)

WORK="$OUT.tmp.$$"
CHILD=""
on_signal() {  # debootstrap runs in its own session: stop it (bash alone would wait for it to finish)
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$CHILD" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$CHILD" 2>/dev/null || true
  fi
  exit 130
}
trap 'remove_tree "$WORK"' EXIT
trap on_signal INT TERM
mkdir -p "$WORK/layout"
ROOTFS="$WORK/rootfs"

echo "build-base-image: debootstrap $SUITE ($VARIANT, +$INCLUDE) from $MIRROR" >&2
setsid debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" \
  </dev/null >"$WORK/debootstrap.log" 2>&1 &
CHILD=$!
wait "$CHILD" || { tail -20 "$WORK/debootstrap.log" >&2; echo "build-base-image: debootstrap failed" >&2; exit 1; }
CHILD=""

PY_FULL=$(chroot "$ROOTFS" python3 -c 'import platform; print(platform.python_version())')
PY_MINOR=${PY_FULL%.*}
echo "build-base-image: python3 inside is $PY_FULL" >&2
LABELS="{}"; ENVS="[]"; WITH=python3   # the languages base says which R and Java it has, and where they live
if [ "$FLAVOUR" = languages ]; then
  R_VERSION=$(chroot "$ROOTFS" Rscript -e 'cat(as.character(getRversion()))')
  JAVA_HOME_IN=$(dirname "$(dirname "$(chroot "$ROOTFS" readlink -f /usr/bin/java)")")
  JAVA_VERSION=$(chroot "$ROOTFS" dpkg-query -W -f '${Version}' openjdk-17-jre-headless)   # java needs /proc
  echo "build-base-image: R $R_VERSION, Java $JAVA_VERSION ($JAVA_HOME_IN) inside" >&2
  LABELS="{\"vci.r\": \"$R_VERSION\", \"vci.java\": \"$JAVA_VERSION\"}"
  ENVS="[\"R_HOME=/usr/lib/R\", \"JAVA_HOME=$JAVA_HOME_IN\"]"
  WITH="python3 + R $R_VERSION + Java $JAVA_VERSION"
fi

# the non-root user of the vci image contract
grep -q '^nonroot:' "$ROOTFS/etc/passwd" || echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin' >>"$ROOTFS/etc/passwd"
grep -q '^nonroot:' "$ROOTFS/etc/group" || echo 'nonroot:x:65532:' >>"$ROOTFS/etc/group"
grep -q '^nonroot:' "$ROOTFS/etc/shadow" || echo 'nonroot:!:0::::::' >>"$ROOTFS/etc/shadow"
install -d -o 65532 -g 65532 -m 0750 "$ROOTFS/home/nonroot"

# reproducible: no ldconfig aux cache (holds inode times), no build-day password-change dates
rm -f "$ROOTFS/var/cache/ldconfig/aux-cache"
LASTCHG=""; [ "$EPOCH" -gt 0 ] && LASTCHG=$((EPOCH / 86400))
sed -i -E "s/^([^:]*:[^:]*:)[0-9]*:/\1$LASTCHG:/" "$ROOTFS/etc/shadow"

# shrink: package caches and lists, docs, man pages, locales, logs; empty the API filesystems' mount points
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/* "$ROOTFS"/var/lib/dpkg/*-old
for d in dev proc sys tmp run; do
  find "$ROOTFS/$d" -mindepth 1 -xdev -delete 2>/dev/null || true
done

ARCH=$(dpkg --print-architecture)
python3 - "$ROOTFS" "$WORK/layout" "$ARCH" "$PY_MINOR" "$PY_FULL" "$EPOCH" "$SUITE" "$WITH" "$LABELS" "$ENVS" <<'PY'
"""Write ROOTFS as a one-layer OCI image layout tagged `base` (stdlib only, reproducible)."""
import gzip, hashlib, json, os, sys, tarfile, time

rootfs, layout, arch, py_minor, py_full, epoch, suite, with_ = sys.argv[1:9]
labels, envs = json.loads(sys.argv[9]), json.loads(sys.argv[10])
epoch = int(epoch)
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


class HashingWriter:
    """A write-only file object that hashes and counts what passes through to ``sink``."""
    def __init__(self, sink):
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.sink.write(data) if self.sink else len(data)

    def flush(self):
        pass


def entries(top, rel=""):
    """Every path under ``top`` in sorted, parents-first order (relative names)."""
    for entry in sorted(os.scandir(os.path.join(top, rel) if rel else top), key=lambda e: e.name):
        name = f"{rel}/{entry.name}" if rel else entry.name
        yield name
        if entry.is_dir(follow_symlinks=False):
            yield from entries(top, name)


def add(tar, name):
    info = tar.gettarinfo(os.path.join(rootfs, name), arcname=name)
    if info is None:  # sockets and the like
        return
    info.mtime, info.uname, info.gname = epoch, "", ""
    if info.isreg():
        with open(os.path.join(rootfs, name), "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


tmp_blob = os.path.join(blobs, "layer.tmp")
with open(tmp_blob, "wb") as raw:
    compressed = HashingWriter(raw)
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=6, mtime=0) as gz:
        plain = HashingWriter(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in entries(rootfs):
                add(tar, name)
layer_digest = "sha256:" + compressed.sha.hexdigest()
os.rename(tmp_blob, os.path.join(blobs, compressed.sha.hexdigest()))


def put(obj):
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}


created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
config = {
    "architecture": arch, "os": "linux", "created": created,
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", *envs],
               "Cmd": ["python3"],
               "Labels": {"vci.python": py_minor, "vci.python.version": py_full, **labels,
                          "org.opencontainers.image.base.name": f"debian:{suite} minbase + {with_}"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + plain.sha.hexdigest()]},
    "history": [{"created": created, "created_by": f"debootstrap --variant=minbase --include={with_} {suite}"}],
}
manifest = {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest, "size": compressed.size}],
}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest),
     "platform": {"architecture": arch, "os": "linux"},
     "annotations": {"org.opencontainers.image.ref.name": "base"}}]}
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(index, f, sort_keys=True, separators=(",", ":"))
print(f"build-base-image: layer {layer_digest} {compressed.size / 1e6:.1f} MB gzip, "
      f"{plain.size / 1e6:.1f} MB tar", file=sys.stderr)
PY

rmdir "$OUT" 2>/dev/null || true   # an empty directory may be given as OUT_DIR; anything else is refused above
mv "$WORK/layout" "$OUT"
echo "$OUT"
