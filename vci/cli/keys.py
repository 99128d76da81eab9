"""``vci keys generate`` and ``vci keys show``: a signing key pair, and what a public key is."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..sign.keys import ALGORITHMS, ECDSA_P256, PASSWORD_VARIABLE, generate_key_pair, load_public_key
from .output import emit, output_option


@click.group("keys")
def keys_group():
    """Make a signing key pair and show public keys (for `vci package` signing and `vci verify`)."""


@keys_group.command("generate")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False), help="Where.")
@click.option("--name", default="vci", show_default=True, help="NAME.key (private, 0600) and NAME.pub.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default=ECDSA_P256, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing pair of that name.")
@output_option
def generate_cmd(directory, name, algorithm, force, output):
    """Write a new key pair: NAME.key (PKCS#8 PEM, created 0600; encrypted when VCI_SIGNING_KEY_PASSWORD
    is set) and NAME.pub. Prints the paths and the key id, never the private key: give NAME.key to CI
    as a secret (VCI_SIGNING_KEY holds the PEM, or VCI_SIGNING_KEY_FILE its path) and NAME.pub to the
    environments that verify."""
    password = os.environ.get(PASSWORD_VARIABLE) or None
    private, public = generate_key_pair(
        Path(directory), name, overwrite=force, algorithm=algorithm, password=password.encode() if password else None
    )
    key = load_public_key(public)
    result = {
        "private_key": str(private),
        "public_key": str(public),
        "key_id": key.key_id,
        "algorithm": key.algorithm,
        "encrypted": password is not None,
    }
    emit(output, result)


@keys_group.command("show")
@click.argument("public_key", metavar="PUB.pem")
@output_option
def show_cmd(public_key, output):
    """Print a public key's id (sha256 of its DER SubjectPublicKeyInfo) and algorithm."""
    key = load_public_key(Path(public_key))
    emit(output, {"public_key": public_key, "key_id": key.key_id, "algorithm": key.algorithm})
