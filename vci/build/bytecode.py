"""Bytecode compiled ahead into the image's layers, reproducibly: same source + same Python -> same bytes.

Images run with a read-only root and ``PYTHONDONTWRITEBYTECODE``, so without ``.pyc`` files every start
compiles every module it imports (numpy, scipy and scikit-learn: about half of a cold start). The
dependency and runtime layers therefore carry ``__pycache__/*.pyc`` written by ``compileall
--invalidation-mode unchecked-hash``: the header holds a hash of the source instead of its mtime (so
nothing depends on file times) and the interpreter never re-checks it (the layer is immutable). The
compiler runs in its own interpreter with ``PYTHONHASHSEED=0`` (sets of constants are marshalled in
hash order) and ``-d`` naming the files' paths in the image (code objects record them). Bytecode is
only written when this interpreter is the image's CPython minor version (its magic number and cache
tag); otherwise the layer has none and the image compiles at start, as before.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError

log = logging.getLogger("vci")


def bytecode_tag(python: str) -> str | None:
    """What identifies the bytecode this interpreter writes for an image of CPython ``python`` (X.Y), or
    None when it cannot write any the image would load (another implementation or minor version)."""
    if sys.implementation.name != "cpython" or f"{sys.version_info[0]}.{sys.version_info[1]}" != python:
        return None
    return f"{sys.implementation.cache_tag}-{sys.version.split()[0]}-unchecked-hash"


def compile_tree(directory: Path, image_root: str, python: str) -> int:
    """Write ``.pyc`` files beside every ``.py`` under ``directory`` (to be ``image_root`` in the image);
    returns how many modules failed to compile (kept as source: some packages ship templates or
    Python 2 files as ``.py``). Nothing happens when ``bytecode_tag(python)`` is None."""
    if bytecode_tag(python) is None:
        log.info("no bytecode for CPython %s: this is %s", python, sys.version.split()[0])
        return 0
    argv = [sys.executable, "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    argv += ["-d", image_root, str(directory)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)  # .pyc files must land in __pycache__ beside their source
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    failed = proc.stdout.count("*** Error compiling")
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not failed):
        raise BuildError(f"compiling bytecode for the image failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    if failed:
        log.info("%d modules under %s do not compile; they stay source only", failed, image_root)
    return failed
