"""Key pairs for the signing tests: one of each algorithm vci signs with, made once per session."""

import pytest

from vci.sign.keys import ECDSA_P256, ED25519, generate_key_pair, signer_from


@pytest.fixture(scope="session", params=[ECDSA_P256, ED25519])
def pair(request, tmp_path_factory):
    """``(private path, public path, signer)`` for each algorithm."""
    directory = tmp_path_factory.mktemp(f"keys-{request.param}")
    private, public = generate_key_pair(directory, algorithm=request.param)
    return private, public, signer_from(str(private), {})


@pytest.fixture(scope="session")
def other_signer(tmp_path_factory):
    private, _ = generate_key_pair(tmp_path_factory.mktemp("other"))
    return signer_from(str(private), {})
