"""Credentials kept out of what vci prints, logs and records: recognised by name or look, masked, refused.

Three uses, one rule set:

- ``mask_url`` and ``redact`` make a URL or any text fit for an error message or a log line: no
  ``user:password@``, no Authorization or ``X-Amz-Security-Token`` value, no signature, no token of
  a known shape (JWT, ``ghp_``, ``xox*``, ``AKIA...``, PEM), and none of the values ``remember``
  was given (the registry password, a bearer token, the AWS keys: whatever vci holds);
- ``RedactingFormatter`` applies ``redact`` to every log record (messages, arguments, tracebacks),
  botocore's and urllib3's included, so ``--debug`` prints no credential at any level;
- ``refuse_secret_variable`` keeps secrets out of a run's environment (which is written in clear to
  the manifest and the image config): a name that looks like a secret's, or a value that looks like
  a credential, is refused with the variable's name and never its value.

A value shorter than ``MIN_REMEMBERED`` characters is not remembered (masking it everywhere would
mask ordinary words).
"""

from __future__ import annotations

import logging
import math
import os
import re
import string
import threading
from collections import Counter
from collections.abc import Mapping
from itertools import pairwise
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import UsageError

MASK = "***"
MIN_REMEMBERED = 8
PUBLIC_QUERY = {"digest", "mount", "from", "n", "last", "service", "scope"}  # registry query values shown

# A name is a secret's when one of its words (split at _ - .) is one of these ...
SECRET_WORDS = {
    "PASS", "PWD", "KEY", "KEYS", "PAT", "AUTH", "AUTHN", "AUTHZ", "AUTHORIZATION", "OAUTH", "DSN",
    "SESSION", "SESSIONID", "JWT", "BEARER", "OTP", "SALT", "CERTKEY",
}  # fmt: skip
# ... or it contains one of these anywhere (PGPASSWORD, APIKEY, SLACK_WEBHOOK_URL, GOOGLE_CREDENTIALS) ...
SECRET_PARTS = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|APIKEY|ACCESSKEY|PRIVATE|WEBHOOK|COOKIE|"
    r"DATABASE_?URL|DB_?URL|CONNECTION_?STRING|CONN_?STR",
    re.IGNORECASE,
)
# ... unless its last word says it is about the secret, not the secret (SESSION_TIMEOUT, TOKEN_TTL, and
# VCI_SIGNING_KEY_FILE: where the key is, not the key).
HARMLESS_LAST_WORDS = {"TIMEOUT", "TTL", "LENGTH", "SIZE", "COUNT", "LIMIT", "ENABLED", "DISABLED", "TYPE"} | {
    "FILE",
    "PATH",
}
SHELL_NAMES = {"PWD", "OLDPWD"}  # the shell's working directories, not MYSQL_PWD's kind

# Values that are credentials whatever their variable is called: (what it is, pattern).
CREDENTIAL_SHAPES = [
    ("a URL with user info (a password or token)", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]+@")),
    (
        "a PEM block (a key or certificate)",
        re.compile(r"-----BEGIN [A-Z0-9 ]+-----(?:.*?-----END [A-Z0-9 ]+-----)?", re.S),
    ),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook", re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/_-]*", re.IGNORECASE)),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("an OpenAI key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    (  # a credential has a digit, an = or a capital inside: "Basic authentication" is no header value
        "an Authorization header value",
        re.compile(r"\b(?:Bearer|Basic)\s+(?=\S*(?:[0-9=]|[a-z][A-Z]))[A-Za-z0-9+/=._~-]{8,}"),
    ),
]
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_~.-]{20,}")
_HEXLIKE = re.compile(r"(?:sha256:|sha512:)?[0-9a-fA-F-]+")
_WORD = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{3,}(?![a-z])")

# What masks text: user info in URLs, header and query values, and signatures in debug dumps.
_TEXT_RULES = [
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*b?['\"]?)[^'\"\r\n]+"), r"\1" + MASK),
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^\s'\",&]+"), r"\1" + MASK),
    (re.compile(r"(?i)(x-amz-signature['\"]?\s*[:=]\s*b?['\"]?)[^\s'\",&]+"), r"\1" + MASK),
    (re.compile(r"(?i)((?<![a-z])signature['\"]?\s*[:=]\s*b?['\"]?\s*)[0-9a-f]{16,}"), r"\1" + MASK),
    (re.compile(r"(?i)(x-amz-credential['\"]?\s*[:=]\s*b?['\"]?|\bCredential=)[^/\s'\",&]+"), r"\1" + MASK),
    (re.compile(r"(?i)((?:cookie|x-registry-auth|x-api-key)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\r\n]+"), r"\1" + MASK),
]
_remembered: set[str] = set()
_lock = threading.Lock()


def secret_name(name: str) -> bool:
    """True when an environment variable called ``name`` would, by its name, hold a secret."""
    words = [w for w in re.split(r"[_.\-]+", name.upper()) if w]
    if name in SHELL_NAMES or (words and words[-1] in HARMLESS_LAST_WORDS):
        return False
    return bool(SECRET_PARTS.search(name)) or any(w in SECRET_WORDS for w in words)


def credential_kind(value: str) -> str | None:
    """What ``value`` looks like when it looks like a credential (``"a JSON Web Token"``), else None."""
    for kind, pattern in CREDENTIAL_SHAPES:
        if pattern.search(value):
            return kind
    with _lock:
        if any(secret in value for secret in _remembered):
            return "a credential vci holds"
    if any(_random_looking(c) for c in _CANDIDATE.findall(value)):
        return "a long random string (a key or token)"
    return None


def _random_looking(text: str) -> bool:
    """20+ characters of three kinds (lower, upper, digit, symbol) at near the most entropy their length
    allows, with few word-like runs or frequent switches between lower case, upper case and digits.
    Tuned on 3,000 random tokens (92-99 % caught, by length 20-64) against 33 model names, paths and
    settings (none caught); hex (digests, UUIDs, git commits) is never counted."""
    if _HEXLIKE.fullmatch(text):
        return False
    kinds = sum(any(test(c) for c in text) for test in (str.islower, str.isupper, str.isdigit))
    kinds += any(not c.isalnum() for c in text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in Counter(text).values())
    if kinds < 3 or entropy < 0.8 * math.log2(len(text)):
        return False
    wordy = sum(len(w) for w in _WORD.findall(text)) / len(text)
    return wordy < 0.3 or _class_switches(text) >= 0.45


def _class_switches(text: str) -> float:
    """The share of neighbouring letters/digits that switch between lower case, upper case and digit."""
    kind = {**dict.fromkeys(string.ascii_lowercase, 0), **dict.fromkeys(string.ascii_uppercase, 1)}
    pairs = [(a, b) for run in re.findall(r"[A-Za-z0-9]+", text) for a, b in pairwise(run)]
    return sum(kind.get(a, 2) != kind.get(b, 2) for a, b in pairs) / max(len(pairs), 1)


def refuse_secret_variable(name: str, value: str) -> None:
    """Raise UsageError (naming ``name``, never showing ``value``) for a secret's name or a credential."""
    kind = None if secret_name(name) else credential_kind(value)
    if secret_name(name) or kind:
        why = f"its value looks like {kind}" if kind else "by its name"
        raise UsageError(
            f"environment variable {name} looks like a secret ({why}) and is not recorded: a run's environment "
            "is written in clear to its manifest and image config",
            hint="give secrets to the deployment, not the run (a Kubernetes Secret, the CI's credentials); "
            "a setting that is no secret needs a name and value that do not look like one",
        )


def remember(*values: str | None) -> None:
    """Mask these values wherever ``redact`` meets them from now on (a password, a token, a key)."""
    with _lock:
        _remembered.update(v for v in values if v and len(v) >= MIN_REMEMBERED)


def remember_environment(environ: Mapping[str, str] | None = None) -> None:
    """Remember the values of the variables whose names are a secret's (AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, VCI_REGISTRY_PASSWORD, VCI_TOKEN, JENKINS_TOKEN, ...)."""
    environ = os.environ if environ is None else environ
    remember(*(value for name, value in environ.items() if secret_name(name)))


def mask_url(url: str) -> str:
    """A URL fit for messages and logs: no user info, query values other than a registry's public
    ones (digest, scope, ...) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    query = [(k, v if k in PUBLIC_QUERY else MASK) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=":/,*"), ""))


def redact(text: str) -> str:
    """``text`` with every credential vci can recognise replaced by ``***``."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    for _, pattern in CREDENTIAL_SHAPES[1:]:
        text = pattern.sub(MASK, text)
    with _lock:
        remembered = sorted(_remembered, key=len, reverse=True)
    for secret in remembered:
        text = text.replace(secret, MASK)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments, traceback) has gone through ``redact``."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
