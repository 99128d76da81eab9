"""vci: a model class plus its artifacts becomes an image, runs in staging, and is promoted by digest.

This module imports nothing heavy: names resolve lazily so ``vci --help`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "init": "vci.runs",
    "get_run": "vci.runs",
    "list_runs": "vci.runs",
    "Run": "vci.runs",
    "DeployedModel": "vci.client",
    "load_settings": "vci.config",
    "validate_model_class": "vci.model",
}

from .errors import (  # noqa: E402  (errors is light and always needed)
    AuthError,
    BuildError,
    ConfigError,
    ConflictError,
    DeployError,
    IntegrityError,
    ModelError,
    ModelValidationError,
    NotFoundError,
    RegistryError,
    RemoteError,
    RequirementError,
    ServeError,
    StoreError,
    UsageError,
    VciError,
)

__all__ = [
    "__version__",
    *_LAZY,
    "ModelError",
    "VciError",
    "UsageError",
    "ConfigError",
    "ModelValidationError",
    "RequirementError",
    "NotFoundError",
    "ConflictError",
    "StoreError",
    "IntegrityError",
    "RegistryError",
    "AuthError",
    "BuildError",
    "DeployError",
    "ServeError",
    "RemoteError",
]


def __getattr__(name: str):
    import importlib

    if name == "frameworks":  # vci.frameworks.r("model.rds") after a plain `import vci`
        return importlib.import_module("vci.frameworks")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vci' has no attribute {name!r}")

    return getattr(importlib.import_module(module), name)
