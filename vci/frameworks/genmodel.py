"""H2O's MOJO scorer (h2o-genmodel) as a small jar, cut out of the installed ``h2o`` package's server jar.

Maven Central (where h2o-genmodel.jar is published) may be out of reach, and the ``h2o`` package on PyPI
carries the scorer only inside ``h2o/backend/bin/h2o.jar``, the whole H2O server (279 MB for 3.46). What a
MOJO needs of it is ``hex/genmodel/**`` and what those classes import from the server's other modules
(``ENTRIES``: measured with ``jdeps`` on 3.46.0.11; the optional tools' jgrapht, opencsv and the MOJO
pipeline runtime are left out): 707 entries, 1.7 MB. The jar is written deterministically (sorted entries,
fixed timestamps and modes, stored rather than deflated, so no zlib build changes a byte): the same h2o
gives the same bytes, hence the same model digest. It is cached under ``VCI_CACHE_DIR`` by the digest of
the server jar it came from.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

from ..digests import hex_of, sha256_file
from ..errors import ModelValidationError
from ..files import cache_root, replacing

ENTRIES = (
    "hex/genmodel/",  # MojoModel, easy/EasyPredictModelWrapper, the algorithms' readers, tools/PredictCsv
    "hex/ModelCategory.class",
    "water/genmodel/",  # IGeneratedModel, BuildVersion
    "water/logging/",  # the tree models' logger (a console logger without slf4j)
    "ai/h2o/algos/tree/",  # the tree API the tree MOJOs implement
    "biz/k11i/xgboost/",  # XGBoost MOJOs' pure-Java predictor (60 KB)
    "com/google/gson/",  # the MOJOs' JSON details
    "META-INF/services/hex.genmodel.",  # the service-loaded readers (XGBoost) and printers
)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
HINT = "pip install h2o (its server jar holds the scorer), or pass genmodel_jar= an h2o-genmodel.jar from Maven"


def server_jar() -> Path:
    """The installed ``h2o`` package's ``backend/bin/h2o.jar``, found without importing h2o."""
    spec = importlib.util.find_spec("h2o")
    if spec is None or not spec.origin:
        raise ModelValidationError("the h2o package is not installed: it carries H2O's MOJO scorer", hint=HINT)
    jar = Path(spec.origin).parent / "backend" / "bin" / "h2o.jar"
    if not jar.is_file():
        raise ModelValidationError(f"the h2o package has no server jar at {jar}", hint=HINT)
    return jar


def genmodel_jar(source: Path | None = None) -> Path:
    """The scorer's jar cut from ``source`` (default: the installed h2o's server jar), cached by its digest."""
    source = source or server_jar()
    digest, _ = sha256_file(source)
    cached = cache_root() / "h2o-genmodel" / f"{hex_of(digest)[:32]}.jar"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with replacing(cached) as out:
            extract(source, out)
    return cached


def extract(source: Path, out) -> int:
    """Write the ``ENTRIES`` of the jar ``source`` as a jar to the binary file ``out``; the number written."""
    try:
        with zipfile.ZipFile(source) as jar, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as cut:
            names = sorted(n for n in jar.namelist() if n.startswith(ENTRIES) and not n.endswith("/"))
            if not any(n.startswith("hex/genmodel/") for n in names):
                raise ModelValidationError(f"{source} holds no H2O MOJO scorer (hex/genmodel/)", hint=HINT)
            for name in names:
                entry = zipfile.ZipInfo(name, FIXED_TIME)
                entry.create_system, entry.external_attr = 3, 0o100644 << 16
                cut.writestr(entry, jar.read(name))
    except zipfile.BadZipFile as exc:
        raise ModelValidationError(f"{source} is not a jar: {exc}", hint=HINT) from exc
    return len(names)
