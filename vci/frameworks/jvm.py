"""The process's one JVM, shared by the adapters that score on it (PMML, H2O MOJO): each adds its jars to it.

JPype starts one JVM per process, and a JVM cannot be started again. An adapter that started it with only
its own class path would leave the next one without its classes, so every adapter names its jars here:
before the start they go on the class path, after it into JPype's class loader (``jpype.addClassPath``).
That loader is made the JVM's system class loader, so that what finds classes by the thread's context loader
or the system's (JAXB's implementation for JPMML, ``ServiceLoader``'s MOJO readers for H2O) sees the jars added
later too (with JPype's default one, JPMML after an H2O MOJO failed: ClassNotFoundException ContextFactory).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType

from ..errors import ModelValidationError
from .base import require

HINT = (
    "install a JRE (Debian: apt-get install openjdk-17-jre-headless) or serve from a base that has one "
    "(scripts/build-base-image.sh --languages, or your own named by `base:`)"
)
JVM_OPTIONS = (
    "-Djava.system.class.loader=org.jpype.JPypeClassLoader",
    "-Xshare:off",  # class data sharing is off with that loader anyway: this says so without the JVM's warning
)
_LOCK = threading.Lock()
_ADDED: set[str] = set()


def with_jars(jars: list[str | Path]) -> ModuleType:
    """JPype, the JVM started (once per process) and every jar of ``jars`` on its class path."""
    jpype = require("jpype", "jpype1")
    with _LOCK:
        for jar in (str(Path(j).resolve()) for j in jars):
            if jar not in _ADDED:
                jpype.addClassPath(jar)
                _ADDED.add(jar)
        if not jpype.isJVMStarted():
            try:
                jpype.startJVM(*JVM_OPTIONS, convertStrings=False)
            except (OSError, RuntimeError, ValueError) as exc:  # JPype: JVMNotFoundException is a ValueError
                raise ModelValidationError(f"cannot start a JVM: {exc}", hint=HINT) from exc
    return jpype
