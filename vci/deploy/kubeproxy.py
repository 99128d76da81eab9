"""Requests through the API server's proxy: a session with the kubeconfig's credentials and TLS settings."""

from __future__ import annotations

from .kubeapi import status_error


def proxy_session(cfg):
    """A requests session carrying the API client's credentials, proxy and TLS settings (CA, client
    certificate, and the kubeconfig's ``tls-server-name``: the name the server's certificate is checked
    against and sent as SNI), as the Kubernetes client uses them. Like that client it ignores the
    environment: REQUESTS_CA_BUNDLE would otherwise replace the cluster's CA, HTTPS_PROXY its proxy."""
    import requests

    session = requests.Session()
    session.trust_env = False
    if cfg.proxy:
        session.proxies = {"http": cfg.proxy, "https": cfg.proxy}
    if getattr(cfg, "tls_server_name", None):
        session.mount("https://", server_name_adapter(cfg.tls_server_name))
    auth = cfg.auth_settings().get("BearerToken") or {}
    if auth.get("value"):
        session.headers["Authorization"] = auth["value"]
    elif cfg.username and cfg.password:
        session.auth = (cfg.username, cfg.password)
    session.verify = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
    if cfg.cert_file:
        session.cert = (cfg.cert_file, cfg.key_file)
    session.hooks["response"].append(_refused_by_api_server)
    return session


def _refused_by_api_server(response, *args, **kwargs):
    """Raise the API server's own 401/403 (a ``Status``, not the model's answer) as an AuthError naming
    what to grant: the proxy subresources need RBAC rights of their own."""
    if response.status_code not in (401, 403):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("kind") == "Status":
        path = response.request.path_url.split("?")[0]
        raise status_error(
            response.status_code, body.get("message") or response.reason, f"{response.request.method} {path}"
        )


def server_name_adapter(server_name: str):
    """A requests adapter whose TLS connections use ``server_name`` for SNI and certificate checks."""
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs.update(server_hostname=server_name, assert_hostname=server_name)
            super().init_poolmanager(*args, **kwargs)

    return Adapter()
