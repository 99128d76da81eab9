"""One exception tree for vci: every failure a user can meet, each class carrying its exit code.

    VciError (1)
    ├── UsageError (2)               bad input: arguments, files, references
    │   ├── ConfigError (3)          vci.yaml, VCI_* variables, unknown environment
    │   ├── ModelValidationError (4) a model class that cannot work
    │   └── RequirementError (5)     a malformed or unresolvable requirement
    ├── NotFoundError (6)            a run, artifact, blob or deployment that does not exist
    ├── ConflictError (7)            someone else wrote first (run id, ledger record, resourceVersion)
    ├── StoreError (8)               the artifact store failed (I/O, S3)
    │   └── IntegrityError (9)       bytes whose digest does not match what was recorded
    ├── RegistryError (10)           an OCI registry failed or refused
    ├── AuthError (11)               credentials missing or rejected (registry, S3, cluster, Jenkins)
    ├── BuildError (12)              an image could not be assembled
    ├── DeployError (13)             a deployment failed, timed out or was rolled back
    ├── ServeError (14)              the model server could not load or serve a model
    ├── RemoteError (15)             a deployed model answered with an error (client side)
    └── VerificationError (16)       a policy's requirement that does not hold: a signature or attestation
                                     missing, wrong or untrusted; a digest that has not soaked long enough

A failure that may pass (a refused connection, a 429 or 503) is raised as the transient twin of its
class: ``TransientRegistryError``, ``TransientRemoteError``. A twin has ``TransientError`` among its bases
(what ``vci/retry.py`` retries; nothing else is retried) and keeps its class's exit code and ``code``.

ModelError is not a VciError: a model raises it from predict() to answer its caller with a 4xx.
Aborted is not one either: like KeyboardInterrupt it derives from BaseException, so that no
``except Exception`` swallows the SIGTERM or SIGINT that stops a release (exit code 128 + signal).
Adapters raise the matching class ``from`` the library exception so ``--debug`` shows the cause.
"""

from __future__ import annotations


class VciError(Exception):
    """Base of every error vci raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        return f"{self.message}\n  ({self.hint})" if "\n" in self.message else f"{self.message} ({self.hint})"

    @property
    def code(self) -> str:
        """A stable machine-readable name for JSON output, e.g. ``not_found``."""
        name = type(self).__name__.removeprefix("Transient").removesuffix("Error") or "Vci"
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class UsageError(VciError):
    exit_code = 2


class ConfigError(UsageError):
    exit_code = 3


class ModelValidationError(UsageError):
    exit_code = 4


class RequirementError(UsageError):
    exit_code = 5


class NotFoundError(VciError):
    exit_code = 6


class ConflictError(VciError):
    exit_code = 7


class StoreError(VciError):
    exit_code = 8


class IntegrityError(StoreError):
    exit_code = 9


class RegistryError(VciError):
    exit_code = 10


class AuthError(VciError):
    exit_code = 11


class BuildError(VciError):
    exit_code = 12


class DeployError(VciError):
    exit_code = 13


class ServeError(VciError):
    exit_code = 14


class RemoteError(VciError):
    """A deployed model answered with an error; ``status`` is the HTTP status when there was one."""

    exit_code = 15

    def __init__(
        self, message: str, *, status: int | None = None, request_id: str | None = None, hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.status = status
        self.request_id = request_id


class VerificationError(VciError):
    """What an environment's policy asks for does not hold: unsigned, an untrusted key, a digest mismatch,
    a missing attestation, a digest that has not soaked as long as ``min_soak`` asks."""

    exit_code = 16


class TransientError(VciError):
    """Mixed in first, before the class it makes transient: the same call may succeed when tried again.

    ``retry_after`` is the pause (seconds) the server asked for with ``Retry-After``, when it did.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class TransientRegistryError(TransientError, RegistryError):
    """The registry could not be reached, or answered 429 or 5xx."""


class TransientRemoteError(TransientError, RemoteError):
    """The model server could not be reached, or answered 429, 502, 503 or 504."""


class ModelError(Exception):
    """Raised by a model's predict() to reject a request: the server answers ``status`` (a 4xx)."""

    def __init__(self, message: str, status: int = 400):
        if not 400 <= status < 500:
            raise ValueError(f"ModelError status must be a 4xx, got {status}")
        super().__init__(message)
        self.message = message
        self.status = status


class Aborted(BaseException):
    """A release stopped by SIGTERM or SIGINT (a cancelled CI job, Ctrl-C) after its cleanup ran."""

    code = "aborted"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.message = message
        self.signum = signum
        self.exit_code = 128 + signum

    def __str__(self) -> str:
        return self.message
