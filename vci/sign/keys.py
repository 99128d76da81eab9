"""Signing keys: an ECDSA P-256 or Ed25519 pair, a ``Signer`` seam, and public keys that verify.

A private key is a PEM PKCS#8 file, optionally encrypted (its password in ``VCI_SIGNING_KEY_PASSWORD``,
never an argument on a command line). It is read from a file, from a variable holding the PEM itself
(what a CI credential binding gives), or from the ``signing_key`` setting (``configured_signer``). Its
bytes are never kept after loading, and never appear in an error, a log line or a ``repr``. A ``Signer``
is anything with ``key_id``, ``public_key`` and ``sign(payload)``: a KMS-backed signer implements the same
three and no caller changes. Signatures are what cosign makes for the same key: ECDSA P-256 is a DER
signature over SHA-256 of the payload, Ed25519 the raw 64 bytes. A key id is ``sha256:`` and the hex
sha256 of the DER SubjectPublicKeyInfo, the same for the private key and its public half.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, UsageError
from ..files import commit, temporary_for, write_new

PASSWORD_VARIABLE = "VCI_SIGNING_KEY_PASSWORD"
KEY_VARIABLE = "VCI_SIGNING_KEY"  # the PEM itself
KEY_FILE_VARIABLE = "VCI_SIGNING_KEY_FILE"  # a path to it
ECDSA_P256 = "ecdsa-p256"
ED25519 = "ed25519"
ALGORITHMS = (ECDSA_P256, ED25519)
PEM_START = b"-----BEGIN "
log = logging.getLogger("vci")


@dataclasses.dataclass(frozen=True)
class PublicKey:
    """A public key (SubjectPublicKeyInfo PEM) and its id; ``verify`` answers, never raises."""

    pem: bytes
    key_id: str

    @classmethod
    def from_pem(cls, pem: bytes, origin: str = "the public key") -> PublicKey:
        """The key in ``pem``; ConfigError naming ``origin`` when it is no P-256 or Ed25519 public key."""
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            private = b"PRIVATE KEY" in pem.split(b"\n", 1)[0]
            raise ConfigError(
                f"{origin} is not a PEM public key",
                hint="give NAME.pub, the public half that vci keys generate writes beside NAME.key"
                if private
                else "expected -----BEGIN PUBLIC KEY-----, as in the .pub file vci keys generate writes",
            ) from None
        _check_algorithm(key, origin)
        return cls._from_crypto(key)

    @classmethod
    def _from_crypto(cls, key: Any) -> PublicKey:
        from cryptography.hazmat.primitives import serialization

        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(pem, "sha256:" + hashlib.sha256(der).hexdigest())

    @property
    def algorithm(self) -> str:
        """``ecdsa-p256`` or ``ed25519``."""
        from cryptography.hazmat.primitives.asymmetric import ec

        return ECDSA_P256 if isinstance(self._key, ec.EllipticCurvePublicKey) else ED25519

    @functools.cached_property
    def _key(self) -> Any:
        from cryptography.hazmat.primitives import serialization

        return serialization.load_pem_public_key(self.pem)

    def verify(self, payload: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``payload``; False on any mismatch or malformed input."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            if isinstance(self._key, ec.EllipticCurvePublicKey):
                self._key.verify(bytes(signature), bytes(payload), ec.ECDSA(hashes.SHA256()))
            else:
                self._key.verify(bytes(signature), bytes(payload))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


class Signer(Protocol):
    """What signs: a key in a file or variable today (``KeySigner``), a KMS key later."""

    key_id: str
    public_key: PublicKey

    def sign(self, payload: bytes) -> bytes: ...


class KeySigner:
    """A PEM PKCS#8 private key (ECDSA P-256 or Ed25519), optionally encrypted with ``password``."""

    def __init__(self, pem: bytes | str, password: bytes | None = None, *, origin: str = "the signing key"):
        self._key = _load_private(pem.encode() if isinstance(pem, str) else pem, password, origin)
        self.public_key = PublicKey._from_crypto(self._key.public_key())
        self.key_id = self.public_key.key_id
        self.origin = origin

    def __repr__(self) -> str:
        return f"<KeySigner {self.public_key.algorithm} {self.key_id} from {self.origin}>"

    def sign(self, payload: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(bytes(payload), ec.ECDSA(hashes.SHA256()))
        return self._key.sign(bytes(payload))


def _load_private(pem: bytes, password: bytes | None, origin: str) -> Any:
    """The private key in ``pem``; ConfigError naming ``origin`` (never showing a byte of the key)."""
    from cryptography.hazmat.primitives import serialization

    if not pem.lstrip().startswith(PEM_START):
        raise ConfigError(f"{origin} is not a PEM private key", hint="expected -----BEGIN PRIVATE KEY-----")
    try:
        key = serialization.load_pem_private_key(pem, password=password or None)
    except TypeError:  # encrypted without a password given, or a password for a key that has none
        if password:
            raise ConfigError(
                f"{origin} is not encrypted, but {PASSWORD_VARIABLE} is set", hint=f"unset {PASSWORD_VARIABLE}"
            ) from None
        raise ConfigError(
            f"{origin} is encrypted and no password was given",
            hint=f"set {PASSWORD_VARIABLE} from a CI secret; never pass it on a command line",
        ) from None
    except ValueError:  # a wrong password, or bytes that are no key
        if password:
            raise ConfigError(
                f"{origin} cannot be decrypted with the password in {PASSWORD_VARIABLE} (or is malformed)",
                hint=f"check {PASSWORD_VARIABLE}",
            ) from None
        raise ConfigError(
            f"{origin} is not a readable PEM private key", hint="expected PKCS#8 PEM, as vci keys generate writes"
        ) from None
    _check_algorithm(key, origin)
    return key


def _check_algorithm(key: Any, origin: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name == "secp256r1":
            return
    elif isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    raise ConfigError(
        f"{origin} is {_describe(key)}; vci signs with ECDSA P-256 or Ed25519 keys",
        hint="make one with vci keys generate",
    )


def _describe(key: Any) -> str:
    curve = getattr(key, "curve", None)
    if curve is not None:
        return f"ECDSA {curve.name}"
    return type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey").lstrip("_")


def generate_key_pair(
    directory: Path,
    name: str = "vci",
    *,
    overwrite: bool = False,
    algorithm: str = ECDSA_P256,
    password: bytes | None = None,
) -> tuple[Path, Path]:
    """Write ``NAME.key`` (PKCS#8, encrypted with ``password`` when given; created 0600, never readable by
    others even for a moment) and ``NAME.pub`` in ``directory``; refuse to replace either unless asked."""
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown key algorithm {algorithm!r}", hint=f"one of {', '.join(ALGORITHMS)}")
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"not a key name: {name!r}", hint="a file name without / such as vci or release")
    directory = Path(directory)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not overwrite:
        verb = "exist" if len(existing) > 1 else "exists"
        raise UsageError(f"{' and '.join(existing)} {verb} already", hint="pass --force to replace the key pair")
    private_pem, public_pem = _new_pair(algorithm, password)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write(private_path, private_pem, overwrite, private=True)
        _write(public_path, public_pem, overwrite, private=False)
    except OSError as exc:
        raise UsageError(
            f"cannot write the key pair in {directory}: {exc.strerror or type(exc).__name__}",
            hint="give --dir a directory you can write to",
        ) from None
    return private_path, public_path


def _new_pair(algorithm: str, password: bytes | None) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key: Any = (
        ec.generate_private_key(ec.SECP256R1()) if algorithm == ECDSA_P256 else ed25519.Ed25519PrivateKey.generate()
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return private_pem, PublicKey._from_crypto(key.public_key()).pem


def _write(path: Path, data: bytes, overwrite: bool, *, private: bool) -> None:
    if not overwrite:
        try:
            write_new(path, data, private=private)
        except FileExistsError:
            raise UsageError(f"{path} exists already", hint="pass --force to replace the key pair") from None
        return
    with temporary_for(path, private=private) as tmp:
        tmp.write_bytes(data)
        commit(tmp, path)


def signer_from(source: str, environ: Mapping[str, str] = os.environ) -> Signer:
    """The signer ``source`` names: ``file:PATH``, ``env:VAR`` (the PEM itself in VAR) or a plain path;
    the password, when the key is encrypted, from ``VCI_SIGNING_KEY_PASSWORD``."""
    if source.startswith("env:"):
        variable = source.removeprefix("env:")
        value = environ.get(variable)
        if not value:
            raise ConfigError(f"the signing key variable {variable} is not set or empty", hint=_env_hint(variable))
        if not value.lstrip().startswith(PEM_START.decode()):
            raise ConfigError(f"{variable} does not hold a PEM private key", hint=_env_hint(variable))
        return KeySigner(value.encode(), _password(environ), origin=f"the signing key in {variable}")
    path = Path(source.removeprefix("file:")).expanduser()
    return _file_signer(path, environ, f"the signing key {path}")


def _read_pem(path: Path, what: str, hint: str) -> bytes:
    """A key file's bytes; ConfigError naming ``what`` (never the contents) when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or type(exc).__name__}", hint=hint) from None


def _file_signer(path: Path, environ: Mapping[str, str], origin: str) -> KeySigner:
    pem = _read_pem(path, origin, "give a readable PEM file, as vci keys generate writes")
    _warn_if_readable_by_others(path)
    return KeySigner(pem, _password(environ), origin=origin)


def _password(environ: Mapping[str, str]) -> bytes | None:
    password = environ.get(PASSWORD_VARIABLE)
    return password.encode() if password else None


def _env_hint(variable: str) -> str:
    return f"{variable} holds the PEM itself; a path goes in {KEY_FILE_VARIABLE} or file:PATH"


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o077:
        log.warning("the signing key %s can be read by other users (mode %o): chmod 600 it", path, mode & 0o777)


def configured_signer(setting: str | None, environ: Mapping[str, str] = os.environ) -> Signer | None:
    """The signer configured here: ``VCI_SIGNING_KEY`` (the PEM, as a CI credential binding gives it), then
    ``VCI_SIGNING_KEY_FILE``, then ``setting`` (the ``signing_key`` setting); None when none is."""
    if environ.get(KEY_VARIABLE):
        return signer_from(f"env:{KEY_VARIABLE}", environ)
    if environ.get(KEY_FILE_VARIABLE):  # the variable named too: its value is masked as a secret's in messages
        path = Path(environ[KEY_FILE_VARIABLE]).expanduser()
        return _file_signer(path, environ, f"the signing key file {KEY_FILE_VARIABLE} names ({path})")
    if setting:
        return signer_from(setting, environ)
    return None


def load_public_key(source: str | bytes | Path) -> PublicKey:
    """A public key from PEM bytes (or a PEM string), or from a file (a path, or ``file:PATH``)."""
    if isinstance(source, bytes):
        return PublicKey.from_pem(source)
    if isinstance(source, str) and source.lstrip().startswith(PEM_START.decode()):
        return PublicKey.from_pem(source.encode())
    path = Path(str(source).removeprefix("file:")).expanduser()
    pem = _read_pem(path, f"the public key {path}", "give the .pub file vci keys generate wrote")
    return PublicKey.from_pem(pem, origin=f"the public key {path}")


def load_public_keys(sources: Iterable) -> list[PublicKey]:
    """Each source's key (see ``load_public_key``), in order, each key once."""
    keys: dict[str, PublicKey] = {}
    for source in sources:
        key = load_public_key(source)
        keys.setdefault(key.key_id, key)
    return list(keys.values())


def trusted_key(keys: Sequence[PublicKey], payload: bytes, signature: bytes) -> PublicKey | None:
    """The first of ``keys`` whose signature over ``payload`` ``signature`` is; None when none's is."""
    return next((key for key in keys if key.verify(payload, signature)), None)
