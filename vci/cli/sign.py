"""``vci sign``: sign an image by digest with the configured key (cosign's .sig tag), e.g. one built elsewhere."""

from __future__ import annotations

import click

from ..config import load_settings
from ..verification import sign_reference
from .output import emit, output_option


@click.command("sign")
@click.argument("image", metavar="IMAGE@DIGEST")
@click.option("--insecure", is_flag=True, default=None, help="Plain-HTTP / unverified registry.")
@output_option
def sign_cmd(image, insecure, output):
    """Sign IMAGE@DIGEST with the configured signing key and attach the signature beside it.

    The key comes from VCI_SIGNING_KEY (its PEM), VCI_SIGNING_KEY_FILE or the signing_key: setting, never
    from the command line. For an image vci did not build (any language: see `vci deploy IMAGE@DIGEST`):
    vci packages sign their images themselves. Signing again with the same key adds nothing. Only a
    signature is attached: vci did not build the image, so it attests no SBOM or provenance of it."""
    result = sign_reference(load_settings(), image, insecure=insecure)
    emit(output, result, f"{result['subject']}: signed by key {result['key_id']}")
