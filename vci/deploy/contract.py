"""vci's serving contract, checked on an image vci did not build once its pods are ready: which route is missing.

An image built elsewhere (any language) can be deployed, tested, promoted and rolled back like vci's own
if it answers what vci and Kubernetes ask of it: ``GET /healthz`` (liveness), ``GET /readyz`` (readiness),
and a way to predict, ``POST /predict`` (JSON) or the Open Inference Protocol (``GET /v2/health/ready``).
The pods' probes have already called ``/readyz``; this asks the rest through the service, the way
``vci test`` and ``vci predict`` will. A route answers "missing" with 404, 405 (not for that method) or 501
(502-504: nothing answered); any other status (a 422 for the empty probe body, a 401 without a token, a
500) means the route is there. vci's own images keep the contract by construction and are not probed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DeployError

MISSING = (404, 405, 501)
UNREACHED = (502, 503, 504)  # the proxy's or the pod's gateway answering for a server that did not
TIMEOUT = 10.0
PROBES = (  # (method, path, what it is for)
    ("GET", "/healthz", "liveness"),
    ("GET", "/readyz", "readiness"),
    ("POST", "/predict", "JSON predictions"),
    ("GET", "/v2/health/ready", "Open Inference Protocol (V2)"),
)
CONTRACT_HINT = (
    "an image built outside vci must answer GET /healthz and GET /readyz with 200, and POST /predict (JSON) "
    "or the V2 routes (/v2/health/ready, /v2/models/NAME/infer): see docs/serving.md"
)


@dataclass(frozen=True)
class Answer:
    """What one probe got: the HTTP status, or None when the request did not get an answer."""

    method: str
    path: str
    status: int | None
    problem: str = ""

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def problems(answers: list[Answer]) -> list[str]:
    """What the answers say is missing from the contract (pure); empty when it holds."""
    by_path = {a.path: a for a in answers}
    found = []
    for path in ("/healthz", "/readyz"):
        answer = by_path[path]
        if answer.status != 200:
            found.append(f"{answer.route} answered {_said(answer)} (200 expected)")
    predict, v2 = by_path["/predict"], by_path["/v2/health/ready"]
    if not _present(predict) and v2.status != 200:
        found.append(f"no way to predict: {predict.route} answered {_said(predict)} and {v2.route} {_said(v2)}")
    return found


def _present(answer: Answer) -> bool:
    return answer.status is not None and answer.status not in MISSING + UNREACHED


def _said(answer: Answer) -> str:
    return str(answer.status) if answer.status is not None else f"nothing ({answer.problem})"


def probe(request: Callable[..., object], base_url: str) -> list[Answer]:
    """Ask every route of the contract once through ``request`` (``requests.Session.request``-like)."""
    answers = []
    for method, path, _ in PROBES:
        body: dict[str, object] = {"json": []} if method == "POST" else {}
        try:
            response = request(method, base_url + path, timeout=TIMEOUT, **body)
            answers.append(Answer(method, path, getattr(response, "status_code", None)))
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            answers.append(Answer(method, path, None, type(exc).__name__))
    return answers


def check_contract(request: Callable[..., object], base_url: str, image: str) -> None:
    """DeployError naming every missing route when the image at ``base_url`` does not keep the contract."""
    found = problems(probe(request, base_url))
    if found:
        raise DeployError(f"{image} does not implement vci's serving contract: {'; '.join(found)}", hint=CONTRACT_HINT)
