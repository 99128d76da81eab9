"""DeployedModel: call a deployed model server over HTTP with retries, a bearer token and request ids.

Retry policy (``vci.retry``): connection failures, timeouts and answers 429, 502, 503, 504 are
``TransientRemoteError``s, retried with exponential backoff and jitter (``Retry-After`` honoured) until
the total ``deadline`` of the call is spent; any other 4xx and 500 are answered at once, and so is a
failed connection to a server that its launcher knows is gone (``down``: a local server whose process
exited does not come back). One
``X-Request-Id`` is sent with every attempt of a call so the server's logs correlate. Request bodies
are gzipped only when ``gzip_min_bytes`` is set, and then the server must accept
``Content-Encoding: gzip`` (after a 415 the client sends plain JSON).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import RemoteError, TransientRemoteError, UsageError
from .jsonwire import encode_compact
from .redact import mask_url, redact, remember
from .retry import RetryPolicy, backoff_delay, retry_after_seconds, retrying

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
REQUEST_ID_HEADER = "X-Request-Id"
PROXY_TOKEN_HEADER = "X-Vci-Authorization"  # the model server's token where Authorization is a proxy's (serve.auth)
UNREACHABLE_HINT = "is the model deployed and running? check `vci status` and the URL"
STATUS_HINTS = {
    401: "check the token (VCI_TOKEN or token=)",
    403: "check the token (VCI_TOKEN or token=)",
    404: "is the URL the model server's root?",
    503: "the model may still be loading, or its self-test failed: see `vci status`",
}


def server_message(body: bytes, limit: int = 300) -> tuple[str, str | None]:
    """The server's error text and request id from an error body: JSON ``{"error", "request_id"}``
    when it is that, else the body's first ``limit`` characters (an HTML page from a proxy, say)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        return str(data["error"]), data.get("request_id")
    text = " ".join(body.decode("utf-8", "replace").split()) or "(empty body)"
    return (text[:limit] + "...") if len(text) > limit else text, None


def transport_reason(exc: BaseException) -> str:
    """A short reason for a failed connection, e.g. ``[Errno 111] Connection refused``."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if match:
        return match.group(0).strip()
    if "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return "timed out"
    return f"{type(exc).__name__}: {text[:200]}"


def encode_json(data) -> bytes:
    """Compact JSON bytes of a model input; UsageError for what JSON cannot carry."""
    try:
        return encode_compact(data)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"the model input cannot be sent as JSON: {exc}",
            hint="pass lists, dicts, numbers and strings (numpy arrays are converted)",
        ) from exc


class DeployedModel:
    """A client for one deployed model server (``/predict``, ``/batch-predict``, ``/readyz``...).

    ``session`` is any ``requests.Session``-like object (e.g. one carrying cluster credentials for a
    Kubernetes service-proxy URL); it is never closed by this client. ``timeout`` bounds each
    attempt, ``deadline`` a whole call with its retries. The token (argument, else ``VCI_TOKEN``
    unless the session carries its own ``Authorization``) goes out as ``Authorization: Bearer ...``
    and is never logged nor shown by ``repr``. ``down``, asked after a failed connection, returns why
    the server cannot come back (the call then fails at once with that reason), or None to retry.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        session=None,
        timeout: float = 30.0,
        deadline: float = 60.0,
        gzip_min_bytes: int | None = None,
        headers: dict | None = None,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        down: Callable[[], str | None] | None = None,
        token_header: str = "Authorization",
    ):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"not a model server URL: {mask_url(url or '')!r}", hint="use http(s)://HOST:PORT")
        self.url = url.rstrip("/")
        if token is None and token_header not in getattr(session, "headers", {}):
            token = os.environ.get("VCI_TOKEN")  # never over a session's own credentials
        self._token, self.token_header = token or None, token_header
        remember(self._token)  # kept out of every message and log line from now on
        self._session, self._own_session = session, session is None
        self.timeout, self.deadline = float(timeout), float(deadline)
        self.gzip_min_bytes = gzip_min_bytes
        self.headers = dict(headers or {})
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.down = down

    def __repr__(self) -> str:
        token = "'***'" if self._token else "None"
        return f"DeployedModel({mask_url(self.url)!r}, token={token}, deadline={self.deadline})"

    @property
    def session(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session and self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the serving contract ------------------------------------------------------------------------

    def predict(self, data):
        """The model's output for one JSON-able input."""
        return self.predict_with_id(data)[0]

    def predict_with_id(self, data, request_id: str | None = None):
        """``(output, request_id)``: the id the server logged this call under, to quote in a report."""
        response, request_id = self._call("POST", "/predict", encode_json(data), request_id)
        return self._json(response, request_id), response.headers.get(REQUEST_ID_HEADER) or request_id

    def batch_predict(self, items) -> list:
        """One output per input, in order (a single request to ``/batch-predict``)."""
        items = list(items)
        response, request_id = self._call("POST", "/batch-predict", encode_json(items))
        outputs = self._json(response, request_id)
        if not isinstance(outputs, list) or len(outputs) != len(items):
            got = f"{len(outputs)} outputs" if isinstance(outputs, list) else type(outputs).__name__
            raise RemoteError(
                f"model server at {mask_url(self.url)} answered {len(items)} inputs with {got}",
                status=response.status_code,
                request_id=request_id,
                hint="the model's batch_predict must return one output per input",
            )
        return outputs

    def metadata(self) -> dict:
        """The server's ``/metadata``: run id, model digest, image digest, vci version, state."""
        response, request_id = self._call("GET", "/metadata")
        return self._json(response, request_id)

    def health(self) -> dict:
        """One look at ``/readyz`` and ``/metadata``, no retries: ``{"ready", "status", "reason",
        "metadata"}``; raises RemoteError only when the server cannot be reached at all."""
        once = min(self.timeout, self.deadline)
        response, _ = self._call("GET", "/readyz", deadline=once, retry=False, raise_status=False)
        ready = response.status_code == 200
        try:
            meta, request_id = self._call("GET", "/metadata", deadline=once, retry=False)
            meta = self._json(meta, request_id)
        except RemoteError:
            meta = None
        return {
            "ready": ready,
            "status": response.status_code,
            "metadata": meta if isinstance(meta, dict) else None,
            "reason": "ready" if ready else server_message(response.content)[0],
        }

    def wait_ready(self, timeout: float | None = None) -> dict:
        """Poll :meth:`health` until ready (unreachable counts as not yet) and return it; after
        ``timeout`` seconds (default: ``deadline``) raise RemoteError with the last reason seen."""
        limit = time.monotonic() + (self.deadline if timeout is None else timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                health = self.health()
                if health["ready"]:
                    return health
                reason = f"answered {health['status']}: {health['reason']}"
            except TransientRemoteError as exc:  # anything else (a server known to be gone) ends the wait
                reason = exc.message
            pause = backoff_delay(attempt, self.backoff, min(self.max_backoff, 1.0))
            if time.monotonic() + pause > limit:
                raise RemoteError(
                    f"model server at {mask_url(self.url)} was not ready after {attempt} checks: {reason}",
                    hint=UNREACHABLE_HINT,
                )
            time.sleep(pause)

    # -- transport -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        request_id: str | None = None,
        *,
        deadline: float | None = None,
        retry: bool = True,
        raise_status: bool = True,
    ):
        """Send one call, retrying per the module's policy; return ``(response, request_id)``."""
        deadline = self.deadline if deadline is None else deadline
        call = _Call(method, path, body, request_id or uuid.uuid4().hex, time.monotonic(), deadline)
        policy = RetryPolicy(
            attempts=None if retry else 1, backoff=self.backoff, max_backoff=self.max_backoff, deadline=deadline
        )
        what = f"{method} {path} (request id {call.request_id})"
        response = retrying(lambda: self._attempt(call, raise_status), policy, what=what, logger=log)
        return response, call.request_id

    def _attempt(self, call: _Call, raise_status: bool):
        """One request: its response, or the RemoteError it comes to (transient when worth retrying)."""
        import requests

        call.attempts += 1
        try:
            response = self._exchange(call)
        except requests.exceptions.SSLError as exc:
            raise RemoteError(
                f"TLS with model server at {mask_url(self.url)} failed: {redact(str(exc))}",
                request_id=call.request_id,
                hint="check the server certificate (REQUESTS_CA_BUNDLE)",
            ) from exc
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            ConnectionError,
            TimeoutError,
        ) as exc:
            raise self._unreachable(call, exc) from exc
        except requests.RequestException as exc:
            raise RemoteError(
                f"request to model server at {mask_url(self.url)} failed: {redact(str(exc))}",
                request_id=call.request_id,
                hint=UNREACHABLE_HINT,
            ) from exc
        if raise_status and response.status_code >= 400:
            raise self._status_error(response, call.request_id, call.attempts)
        return response

    def _exchange(self, call: _Call):
        """Send once; a server that refuses gzip (415) gets the body again as plain JSON, then always."""
        gzipped = self._gzipped(call.body)
        response = self._send(call.method, call.path, call.body, call.request_id, call.remaining(), gzipped)
        if response.status_code == 415 and gzipped:
            self.gzip_min_bytes = None
            log.info("model server refused gzip; resending plain (request id %s)", call.request_id)
            response = self._send(call.method, call.path, call.body, call.request_id, call.remaining(), False)
        return response

    def _unreachable(self, call: _Call, failure: BaseException) -> RemoteError:
        """The error of a failed connection: transient, unless ``down`` says the server is gone."""
        gone = self.down() if self.down is not None else None
        if gone:
            return RemoteError(
                f"{gone} ({call.method} {call.path}: {transport_reason(failure)})", request_id=call.request_id
            )
        elapsed = time.monotonic() - call.start
        return TransientRemoteError(
            f"cannot reach model server at {mask_url(self.url)} ({call.method} {call.path}) after "
            f"{call.attempts} attempt(s) in {elapsed:.1f}s: {transport_reason(failure)}",
            request_id=call.request_id,
            hint=UNREACHABLE_HINT,
        )

    def _gzipped(self, body: bytes | None) -> bool:
        return body is not None and self.gzip_min_bytes is not None and len(body) >= self.gzip_min_bytes

    def _send(self, method, path, body, request_id, timeout, gzipped):
        headers = {**self.headers, REQUEST_ID_HEADER: request_id, "Accept": "application/json"}
        if self._token:  # the model server's bearer token (vci.serve.auth), in X-Vci-Authorization through a proxy
            headers[self.token_header] = f"Bearer {self._token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            if gzipped:
                body = gzip.compress(body, compresslevel=6, mtime=0)
                headers["Content-Encoding"] = "gzip"
        return self.session.request(
            method, self.url + path, data=body, headers=headers, timeout=min(self.timeout, timeout)
        )

    def _status_error(self, response, request_id: str, attempts: int = 1) -> RemoteError:
        """The server's answer as a RemoteError carrying its message, status and request id; a
        TransientRemoteError (with the ``Retry-After`` it asked for) for a status worth retrying."""
        message, server_id = server_message(response.content)
        request_id = server_id or response.headers.get(REQUEST_ID_HEADER) or request_id
        status = response.status_code
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        text = f"model server at {mask_url(self.url)} answered {status}{tries}: {message}"
        if status not in RETRY_STATUSES:
            return RemoteError(text, status=status, request_id=request_id, hint=STATUS_HINTS.get(status))
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        hint = (
            STATUS_HINTS.get(status)
            if retry_after is None
            else (f"the server asked to retry after {retry_after:.0f}s, beyond this call's deadline")
        )
        return TransientRemoteError(text, status=status, request_id=request_id, hint=hint, retry_after=retry_after)

    def _json(self, response, request_id: str):
        try:
            return response.json() if response.content else None
        except ValueError as exc:
            text, _ = server_message(response.content, limit=120)
            raise RemoteError(
                f"model server at {mask_url(self.url)} answered {response.status_code} "
                f"with a body that is not JSON: {text}",
                status=response.status_code,
                request_id=response.headers.get(REQUEST_ID_HEADER) or request_id,
                hint="is the URL a vci model server?",
            ) from exc


@dataclass
class _Call:
    """One call of ``DeployedModel`` across its attempts: what is sent, when it began, how many tries."""

    method: str
    path: str
    body: bytes | None
    request_id: str
    start: float
    deadline: float
    attempts: int = 0

    def remaining(self) -> float:
        """Seconds left for the next request (at least a sliver, so that it is sent at all)."""
        return max(self.start + self.deadline - time.monotonic(), 0.05)
