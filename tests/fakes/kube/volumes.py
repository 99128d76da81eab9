"""The kubelet's configMap and secret volumes for process pods, laid out and updated as the kubelet does it.

Each volume is a host directory: the keys are symlinks ``KEY -> ..data/KEY``, ``..data`` a symlink to a
timestamped directory holding the files, and an update writes a new timestamped directory and swaps
``..data`` in one rename (the kubelet's AtomicWriter), so a reader sees the old content or the new, never a
mix, and the file's inode changes. The kubelet resyncs mounted ConfigMaps and Secrets periodically (about
a minute, compressed here to ``sync`` seconds): an update, a key removed, an optional source created or
deleted reach the running pod without a restart. A missing source that is not ``optional`` keeps the pod
from starting (``FailedMount``), as the kubelet does; a missing optional one is an empty directory.
Mounts: the container's ``volumeMounts`` of these volumes (``subPath`` is not modelled: such a mount
never updates in a real cluster either).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

from .resources import BY_KIND

SOURCES = {"configMap": (BY_KIND["ConfigMap"], "name"), "secret": (BY_KIND["Secret"], "secretName")}


class PodVolumes:
    """The configMap and secret volumes of one pod, under ``root``."""

    def __init__(self, store, pod: dict, root: Path):
        self.store, self.namespace, self.root = store, pod["metadata"]["namespace"], root
        self.volumes = [v for v in pod["spec"].get("volumes") or [] if any(k in v for k in SOURCES)]
        self.written: dict[str, dict] = {}  # volume name -> the payload written last

    def mounts(self, container: dict) -> dict[str, str]:
        """mountPath -> host directory, for the container's mounts of these volumes."""
        names = {v["name"] for v in self.volumes}
        mounts = container.get("volumeMounts") or []
        return {m["mountPath"]: str(self.root / m["name"]) for m in mounts if m["name"] in names}

    def missing(self) -> list[str]:
        """Volumes whose source does not exist and is not optional (the pod cannot start)."""
        return [name for name, payload in self._payloads().items() if payload is None]

    def sync(self) -> None:
        """Bring every volume's directory to its source's current content (a no-op when nothing changed)."""
        for name, payload in self._payloads().items():
            if payload is not None and payload != self.written.get(name):
                write_atomically(self.root / name, payload)
                self.written[name] = payload

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _payloads(self) -> dict[str, dict | None]:
        out: dict[str, dict | None] = {}
        for volume in self.volumes:
            kind = next(k for k in SOURCES if k in volume)
            source = volume[kind]
            resource, key = SOURCES[kind]
            obj = self.store.find(resource, self.namespace, source.get(key, ""))
            if obj is None:
                out[volume["name"]] = {} if source.get("optional") else None
                continue
            files = {k: v.encode() for k, v in (obj.get("data") or {}).items()} if kind == "configMap" else {}
            binary = obj.get("binaryData") if kind == "configMap" else obj.get("data")
            files.update({k: base64.b64decode(v) for k, v in (binary or {}).items()})
            items = source.get("items")
            out[volume["name"]] = {i["path"]: files[i["key"]] for i in items if i["key"] in files} if items else files
        return out


def write_atomically(directory: Path, payload: dict[str, bytes]) -> None:
    """The kubelet's AtomicWriter: a new ``..<timestamp>`` directory, ``..data`` swapped to it by a rename,
    key symlinks added or removed, the old directory deleted."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    fresh = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    fresh.mkdir()
    for path, content in payload.items():
        (fresh / path).parent.mkdir(parents=True, exist_ok=True)
        (fresh / path).write_bytes(content)
    link = directory / "..data_tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(fresh.name)
    link.rename(data)
    tops = {Path(path).parts[0] for path in payload}
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    for top in tops:
        if not (directory / top).is_symlink():
            (directory / top).symlink_to(f"..data/{top}")
    if old:
        shutil.rmtree(directory / old, ignore_errors=True)
