"""``vci verify``: what is signed, by which key, and what each attestation says (changes nothing)."""

from __future__ import annotations

import click

from ..config import load_settings
from ..errors import VerificationError
from ..sign.keys import load_public_keys
from ..verification import verify
from .output import emit, output_option


@click.command("verify")
@click.argument("what", metavar="IMAGE@DIGEST|RUN")
@click.option(
    "--key", "keys", multiple=True, type=click.Path(dir_okay=False), help="A trusted public key (PEM); repeat."
)
@click.option("--env", default=None, help="Check this environment's verify: policy (its keys unless --key is given).")
@click.option("--insecure", is_flag=True, default=None, help="Plain-HTTP / unverified registry.")
@output_option
def verify_cmd(what, keys, env, insecure, output):
    """Verify an image's signatures and attestations (cosign's .sig/.att tags) or a run's signature.

    Exits 0 when a trusted key signed it (and, with --env, when the environment's policy holds), 16
    otherwise; the report is printed either way."""
    settings = load_settings()
    report = verify(settings, what, keys=load_public_keys(keys), env=env, insecure=insecure)
    emit(output, report, _text(report))
    if not report["verified"]:
        raise VerificationError(f"{what}: {report['problem']}")


def _text(report: dict) -> str:
    lines = [f"{report['kind']} {report['subject']}: {'verified' if report['verified'] else 'NOT verified'}"]
    for s in report["signatures"]:
        lines.append(
            f"  signature: {'valid, key ' + s['key_id'] if s['valid'] else 'invalid: ' + s.get('problem', '?')}"
        )
    for a in report["attestations"]:
        state = f"valid, key {a['key_id']}" if a["valid"] else "invalid: " + a.get("problem", "?")
        lines.append(f"  attestation {a['predicate_type']}: {state}{_summary(a)}")
    if report["problem"]:
        lines.append(f"  problem: {report['problem']}")
    return "\n".join(lines)


def _state(entry: dict) -> str:
    return f"valid, key {entry['key_id']}" if entry["valid"] else "invalid: " + entry.get("problem", "?")


def _summary(attestation: dict) -> str:
    predicate = attestation.get("predicate") or {}
    if "components" in predicate:
        return f" ({len(predicate['components'])} components)"
    external = (predicate.get("buildDefinition") or {}).get("externalParameters") or {}
    if external:
        builder = ((predicate.get("runDetails") or {}).get("builder") or {}).get("id")
        return f" (run {external.get('run')}, model {str(external.get('modelDigest'))[:19]}, builder {builder})"
    return ""
