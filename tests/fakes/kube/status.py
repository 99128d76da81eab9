"""Status bodies and the errors that carry them, shaped like the real API server's (kind Status, v1).

Every refusal the fake makes is an ``ApiError`` whose ``body`` is what a kube-apiserver sends for the same
case: ``{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message", "reason",
"details", "code"}``; the constructors below produce the real messages, word for word where the official
client or kubectl shows them to users.
"""

from __future__ import annotations

from .resources import Resource

MODIFIED_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


class ApiError(Exception):
    """A request the fake refuses; ``code`` is the HTTP status, ``body`` the Status JSON."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details)


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if not reason:  # storage errors come without one
        del body["reason"]
    if details:
        body["details"] = details
    return body


def success_body(resource: Resource, name: str, uid: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": resource.group, "kind": resource.plural, "uid": uid},
    }


def _details(resource: Resource, name: str | None) -> dict:
    details = {"group": resource.group, "kind": resource.plural}
    if name:
        details["name"] = name
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource: Resource, name: str, why: str = MODIFIED_MESSAGE) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        _details(resource, name),
    )


def terminating(resource: Resource, name: str, namespace: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{resource.qualified} "{name}" is forbidden: unable to create new content '
        f"in namespace {namespace} because it is being terminated",
        _details(resource, name),
    )


def invalid(resource: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (field, message) pairs as the server's field validation words them."""
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    details = {
        **_details(resource, name),
        "kind": resource.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
    }
    return ApiError(
        422, "Invalid", f"{resource.kind}.{resource.group or ''}".rstrip(".") + f' "{name}" is invalid: {text}', details
    )


def version_on_create() -> ApiError:
    """What etcd storage answers (500, no reason) when a create carries a resourceVersion."""
    return ApiError(500, "", "resourceVersion should not be set on objects to be created")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def undecodable(resource: Resource, why: str) -> ApiError:
    """What the server answers when the body does not decode into the kind (e.g. a bad resource quantity)."""
    return bad_request(f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: {why}')


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(
    user: str,
    verb: str,
    resource: Resource | None,
    subresource: str,
    name: str | None,
    namespace: str | None,
    path: str = "",
) -> ApiError:
    if resource is None:
        return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{path}"', {})
    what = resource.plural + (f"/{subresource}" if subresource else "")
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    where = f' in the namespace "{namespace}"' if namespace and resource.namespaced else ""
    scope = "" if where else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{what}" in API group '
        f'"{resource.group}"{where}{scope}'
    )
    return ApiError(403, "Forbidden", message, _details(resource, name))


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted "
        f"media types include: application/json-patch+json, application/merge-patch+json, "
        f"application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})",
    )


def gone(resource_version: str, oldest: int) -> dict:
    return status_body(410, "Expired", f"too old resource version: {resource_version} ({oldest})")
