"""Signing and evidence formats (no I/O beyond key files): keys, DSSE envelopes, in-toto statements with
SLSA provenance, cosign's simple-signing payload and CycloneDX SBOMs. Importing this package imports none
of them; ``cryptography`` and ``cyclonedx`` are imported inside the functions that need them."""

from __future__ import annotations

import json


def canonical_json(value) -> bytes:
    """The bytes vci signs for a document: sorted keys, no whitespace, UTF-8 (as ``vci.oci`` writes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
