"""Image references (``host[:port]/path/name[:tag][@sha256:hex]``): parse, validate and print them.

The grammar follows the distribution reference grammar: the first path component is a registry host
when it contains ``.`` or ``:`` or is ``localhost``; otherwise the reference is on Docker Hub, where
single names live under ``library/``. Repositories are lower case; tags are 1 to 128 ASCII letters,
digits, underscores, dots and dashes, not starting with a dot or dash (what registries accept). A
reference carrying ``user:password@`` or a URL scheme is refused, the password never repeated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .digests import check_digest
from .errors import UsageError

DOCKER_HUB = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?$"
)
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # ASCII only: a registry refuses any other tag
_DIGEST_AFTER_AT = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:(?![0-9]+$)[A-Za-z0-9=_-]*")  # not host:port
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HINT = "expected host[:port]/path/name[:tag][@sha256:<64 hex>], e.g. registry.example.com/ml/iris:1.0"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; ``tag`` and ``digest`` are each optional."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = self.context()
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def context(self) -> str:
        """``registry/repository``, the name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=_checked_digest(digest))

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=_checked_tag(tag))


def parse_reference(text: str) -> Reference:
    """Parse an image reference, raising UsageError that names what is wrong with a malformed one."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty image reference", hint=_HINT)
    text = text.strip()
    _refuse_scheme_and_credentials(text)
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        digest = _checked_digest(digest, text)
    registry, remainder = _split_registry(name, text)
    repository, tag = _split_tag(remainder, text)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return Reference(registry, repository, tag, digest)


def digest_of(reference: str) -> str | None:
    """The ``sha256:...`` a reference pins (``repo@sha256:...``), None for a tag or a run id."""
    return reference.rsplit("@", 1)[1] if "@" in reference else None


def is_image_reference(text: str) -> bool:
    """True for image references, False for run ids: an image reference has ``@sha256:`` or a ``/``."""
    return "@sha256:" in text or "/" in text


def split_repository(text: str) -> tuple[str, str]:
    """Split ``host/path/name`` (no tag, no digest) into ``(registry, repository)``."""
    ref = parse_reference(text)
    if ref.tag or ref.digest:
        raise UsageError(
            f"{text!r} is a repository: it must not carry a tag or digest",
            hint="give the repository alone, e.g. registry.example.com/ml/iris",
        )
    return ref.registry, ref.repository


def check_tag(tag: str) -> str:
    """``tag`` when a registry will accept it (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``); else UsageError."""
    return _checked_tag(tag)


def masked_reference(text: str) -> str:
    """``text`` as messages show it: any ``user:password@`` before the host replaced by ``***@`` (the
    last ``@`` that no digest follows ends the user info, so a password may hold ``/`` or ``@``)."""
    scheme = _SCHEME.match(text)
    start = scheme.end() if scheme else 0
    ats = [i for i in range(start, len(text)) if text[i] == "@" and not _DIGEST_AFTER_AT.fullmatch(text[i + 1 :])]
    if not ats:
        return text
    user, host = text[start : ats[-1]], text[ats[-1] + 1 :]
    if "/" in user.partition(":")[0]:  # a repository path before the @, not a user name
        return text
    looks_like_host = "/" in host or re.fullmatch(r"[^:/]+:[0-9]{1,5}", host)
    return f"{text[:start]}***@{host}" if ":" in user or looks_like_host else text


def _refuse_scheme_and_credentials(text: str) -> None:
    shown = masked_reference(text)
    if shown != text:
        raise UsageError(
            f"image reference {shown!r} carries credentials",
            hint="never put a password in a reference: set VCI_REGISTRY_USER/VCI_REGISTRY_PASSWORD or docker login",
        )
    if "://" in text:
        raise UsageError(f"image reference {text!r} has a URL scheme", hint=_HINT + " (no https://)")


def _split_registry(name: str, text: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST.fullmatch(first):
            raise UsageError(f"image reference {text!r}: {first!r} is not a valid registry host", hint=_HINT)
        host = DOCKER_HUB if first in _HUB_ALIASES else first
        return host, rest
    host_part, colon, port = first.rpartition(":")
    if not sep and colon and port.isdigit() and ("." in host_part or host_part == "localhost"):
        raise UsageError(f"image reference {text!r} has a registry host but no repository", hint=_HINT)
    return DOCKER_HUB, name


def _split_tag(remainder: str, text: str) -> tuple[str, str | None]:
    repository, tag = remainder, None
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = remainder.rsplit(":", 1)
        tag = _checked_tag(tag, text)
    if not repository:
        raise UsageError(f"image reference {text!r} has no repository name", hint=_HINT)
    if len(repository) > 255:
        raise UsageError(f"image reference {text!r}: repository name longer than 255 characters", hint=_HINT)
    for component in repository.split("/"):
        if not _COMPONENT.fullmatch(component):
            problem = "upper-case letters" if component.lower() != component else "invalid characters"
            raise UsageError(
                f"image reference {text!r}: repository component {component!r} has {problem}",
                hint="repository names are lower-case letters, digits and . _ - separators",
            )
    return repository, tag


def _checked_digest(digest: str, text: str | None = None) -> str:
    try:
        return check_digest(digest)
    except UsageError:
        raise UsageError(
            f"image reference {text or digest!r}: bad digest {digest!r}",
            hint="a digest is sha256: followed by 64 lower-case hex digits",
        ) from None


def _checked_tag(tag: str, text: str | None = None) -> str:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        where = f"image reference {text!r}: " if text else ""
        raise UsageError(
            f"{where}bad tag {tag!r}",
            hint="a tag is 1 to 128 ASCII letters, digits, _ . -, not starting with . or -",
        )
    return tag
