"""Object and DNS names as the API server checks them (apimachinery's IsDNS1123Subdomain and friends), with
its messages: ``name_problems`` for an object's name, ``subdomain_problems`` and ``wildcard_problems`` for
the host names and references inside a spec.
"""

from __future__ import annotations

import re

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MSG_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
WILDCARD = re.compile(r"^\*\." + SUBDOMAIN.pattern[1:])
MSG_WILDCARD = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist "
    "of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. "
    "'*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def bad_value(field: str, value, why: str) -> tuple[str, str]:
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    return field, f"Invalid value: {shown}: {why}"


def name_problems(kind: str, name: str, field: str = "metadata.name") -> list[tuple[str, str]]:
    pattern, message, limit = {"Namespace": (LABEL, MSG_LABEL, 63), "Service": (DNS1035, MSG_1035, 63)}.get(
        kind, (SUBDOMAIN, MSG_SUBDOMAIN, 253)
    )
    if len(name) > limit:
        return [bad_value(field, name, f"must be no more than {limit} characters")]
    return [] if pattern.match(name) else [bad_value(field, name, message)]


def subdomain_problems(value: str, field: str) -> list[tuple[str, str]]:
    """IsDNS1123Subdomain: each message on its own, as the server lists them (length first)."""
    found = [bad_value(field, value, "must be no more than 253 characters")] if len(value) > 253 else []
    return found + ([] if SUBDOMAIN.match(value) else [bad_value(field, value, MSG_SUBDOMAIN)])


def wildcard_problems(value: str, field: str) -> list[tuple[str, str]]:
    """IsWildcardDNS1123Subdomain: ``*.`` and a subdomain (for a host that contains a ``*`` anywhere)."""
    found = [bad_value(field, value, "must be no more than 253 characters")] if len(value) > 253 else []
    return found + ([] if WILDCARD.match(value) else [bad_value(field, value, MSG_WILDCARD)])


def dns1035_problems(value: str, field: str) -> list[tuple[str, str]]:
    """NameIsDNS1035Label (a Service name referred to)."""
    found = [bad_value(field, value, "must be no more than 63 characters")] if len(value) > 63 else []
    return found + ([] if DNS1035.match(value) else [bad_value(field, value, MSG_1035)])
