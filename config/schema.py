"""The API's error answers in its OpenAPI schema (a drf-spectacular postprocessing hook).

Views declare their success answers; this hook adds, to every operation, each error status
a client can receive there with the body it carries, so a generated client (or schemathesis)
knows what to expect:

- every error body is ``{"detail": str, "code": str}`` (:data:`ERROR`); a 400 that rejects
  fields is ``{field: [messages]}`` instead (:data:`VALIDATION_ERROR`);
- 400 (malformed or invalid input), 401 (missing or bad credentials: token authentication is
  tried first, so even open operations refuse a bad token), 429 (a rate limit; every API
  view is throttled), 500 and 503 (the database is away; ``Retry-After``) everywhere;
- 403 unless the operation is a read anyone may make (a permission, or the CSRF check of a
  session-authenticated write);
- 404 on operations with a path parameter (the object does not exist or is not yours) and on
  paginated lists (a page past the end);
- 409 on writes (the action does not fit the object's current state: ``config.errors``);
- 413 and 415 on operations with a request body (too large; a media type not parsed).

An answer a view documents itself is kept as it is.

Request bodies are documented as JSON, plus ``multipart/form-data`` where a file can be
sent: form encodings carry no types (``is_internal=0`` is a string there), so the contract
is JSON's. ``page`` and ``page_size`` are positive integers (``config.pagination`` refuses
others with 400).
"""

from __future__ import annotations

import json
import re
import threading

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

ERROR = {
    "type": "object",
    "description": "An error: a message for people and a stable code for programs.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "A stable code, e.g. not_found."},
    },
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": "Rejected fields: each one's messages (``non_field_errors`` for the whole).",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {}},
            {"type": "object"},
        ]
    },
}
BAD_REQUEST = {"anyOf": [{"$ref": "#/components/schemas/Error"}, VALIDATION_ERROR]}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
DESCRIPTIONS = {
    "400": "The request is malformed or its data is invalid.",
    "401": "Credentials are missing or invalid.",
    "403": "You may not do this.",
    "404": "Not found, or not yours to see.",
    "409": "The action does not fit the object's current state.",
    "413": "The request body is too large.",
    "415": "The request body's media type is not supported.",
    "429": "Too many requests: slow down (see Retry-After).",
    "500": "A server error.",
    "503": "The service is temporarily unavailable (see Retry-After).",
}


def _view_opens_to_anonymous(view, method: str) -> bool:
    """Whether every permission of the view lets an anonymous ``method`` request through."""
    request = Request(getattr(APIRequestFactory(), method.lower())("/"))
    request.user = AnonymousUser()
    view.request = request
    try:
        return all(p.has_permission(request, view) for p in view.get_permissions())
    except Exception:  # a permission that needs more than a request: assume it can refuse
        return False


def _sends_files(body: dict, schemas: dict) -> bool:
    for content in body.get("content", {}).values():
        schema = content.get("schema", {})
        if "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        if '"binary"' in json.dumps(schema):
            return True
    return False


def _json_contract(operation: dict, schemas: dict) -> None:
    body = operation.get("requestBody")
    if body:
        content = body.get("content", {})
        keep = {"application/json"}
        if _sends_files(body, schemas):
            keep.add("multipart/form-data")
        if keep & set(content):
            body["content"] = {media: value for media, value in content.items() if media in keep}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter["name"] in {"page", "page_size"}:
            parameter.setdefault("schema", {})["minimum"] = 1


def _key(path: str) -> str:
    return re.sub(r"{[^}]+}", "{}", path)


def add_error_responses(result, generator, request, public):
    views = {}
    for path, _regex, method, view in generator._get_paths_and_endpoints():
        views[_key(path), method.lower()] = view

    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((_key(path), method))
            _json_contract(operation, schemas)
            parameters = operation.get("parameters", [])
            has_path_parameter = "{" in path
            paginated = any(p.get("in") == "query" and p["name"] == "page" for p in parameters)
            safe = method.upper() in SAFE_METHODS
            statuses = ["400", "401", "429", "500", "503"]
            if not (safe and view is not None and _view_opens_to_anonymous(view, method)):
                statuses.append("403")
            if has_path_parameter or paginated:
                statuses.append("404")
            if not safe:
                statuses.append("409")
            if "requestBody" in operation:
                statuses += ["413", "415"]
            responses = operation.setdefault("responses", {})
            for code in sorted(statuses):
                if code in responses:
                    continue
                answer = {"description": DESCRIPTIONS[code]}
                if code == "400":
                    answer["content"] = {"application/json": {"schema": BAD_REQUEST}}
                else:
                    answer["content"] = error
                if code in {"429", "503"}:
                    answer["headers"] = RETRY_AFTER
                responses[code] = answer
    return result


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: drf-spectacular's view, one generation at a time per process.

    drf-spectacular loads its extensions lazily on the first generation, and two threads
    doing that at once make it fail (``AttributeError`` inside ``_load_class``, a 500 to
    every concurrent first caller): a client that fetches the schema while another does
    got a 500 from a freshly started server."""

    _generating = threading.Lock()

    @extend_schema(exclude=True)  # as drf-spectacular's own view: not an API operation
    def get(self, request, *args, **kwargs):
        with self._generating:
            return super().get(request, *args, **kwargs)
