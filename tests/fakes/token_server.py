"""A registry bearer-token server for tests: checks basic credentials, issues RS256 JWTs a registry trusts.

The CNCF distribution registry's ``auth: token`` mode validates tokens against ``rootcertbundle``; this
server makes an RSA key and a self-signed certificate (with ``cryptography``), names the key in the JWT
header by its libtrust key id (``kid``), and grants each known user the actions it is allowed::

    with TokenServer(tmp_path, users={"ci": ("secret", {"pull", "push"})}) as tokens:
        registry = RegistryServer(tmp_path / "reg", token=tokens.registry_auth_config()).start()

``issued`` records every token request (user, scopes asked, access granted) so tests can count them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ISSUER = "vci-test-token-issuer"
SERVICE = "vci-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key) -> str:
    """The key id docker/libtrust derives from a public key: base32 of 240 bits of sha256(DER), in 4s."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def make_signing_cert(directory: Path) -> tuple[object, Path]:
    """An RSA private key and the path of its self-signed certificate (the registry's rootcertbundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vci test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = Path(directory) / "token-signer.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


class TokenServer:
    """A thread serving ``GET /token?service=&scope=`` on 127.0.0.1 with a free port."""

    def __init__(
        self,
        directory: str | Path,
        users: dict[str, tuple[str, set[str]]],
        *,
        lifetime: int = 300,
        anonymous_actions: set[str] = frozenset(),
    ):
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.users = users
        self.lifetime = lifetime
        self.anonymous_actions = set(anonymous_actions)
        self.key, self.cert_path = make_signing_cert(Path(directory))
        self.kid = libtrust_key_id(self.key.public_key())
        self.issued: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth_config(self) -> dict:
        return {
            "realm": self.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(self.cert_path),
        }

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def sign(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        """The access entries for ``user``: each requested action it is allowed."""
        allowed = self.users[user][1] if user else self.anonymous_actions
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and granted:
                access.append({"type": kind, "name": name, "actions": granted})
        return access

    def issue(self, user: str | None, service: str, scopes: list[str]) -> dict:
        now = int(time.time())
        access = self.grant(user, scopes)
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": service,
            "exp": now + self.lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        self.issued.append({"user": user, "scopes": scopes, "access": access})
        token = self.sign(claims)
        return {"token": token, "access_token": token, "expires_in": self.lifetime}

    def _authenticate(self, header: str | None) -> tuple[bool, str | None]:
        if not header:
            return True, None
        if not header.startswith("Basic "):
            return False, None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user in self.users and self.users[user][0] == password), user

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    return self._reply(404, {"error": "not found"})
                ok, user = server._authenticate(self.headers.get("Authorization"))
                if not ok:
                    return self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                query = parse_qs(parts.query)
                service = (query.get("service") or [SERVICE])[0]
                self._reply(200, server.issue(user, service, query.get("scope", [])))

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
