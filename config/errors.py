"""The API's mapping of errors to HTTP.

Services raise :class:`core.errors.DomainError` (or a subclass) with a message a person
can act on; views, admin actions and tasks catch it. The API's exception handler turns it into
400 (invalid input) or 409 (:class:`Conflict`: the action does not fit the current state),
with the message and, when given, field errors, like DRF's own validation errors.
A database outage met inside DRF answers 503 with ``Retry-After`` (``config.middleware``).

Every error of the API has one shape, whatever raised it (DRF, a service, Django, the
404 and 500 handlers in ``config.middleware``)::

    {"detail": "A sentence for a person.", "code": "machine_readable"}

except invalid input to a serializer or a service's field error, which keeps DRF's
field-error shape (400)::

    {"field": ["Ensure this field has no more than 200 characters."], "other": ["..."]}

Codes in use: ``parse_error``, ``invalid_characters``, ``too_deep``, ``too_long``, ``invalid``,
``not_authenticated``, ``authentication_failed``, ``permission_denied``, ``not_found``,
``method_not_allowed``, ``conflict`` / ``invalid_transition`` / ``protected`` (409),
``csrf_failed`` (403), ``request_too_large`` (413),
``unsupported_media_type``, ``throttled`` (429, with ``Retry-After``), ``server_error``,
``service_unavailable`` (503, with ``Retry-After``).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config import middleware as database
from core.errors import Conflict, DomainError, NotPermitted  # noqa: F401 (the API maps them)


def error_payload(detail: str, code: str) -> dict:
    return {"detail": str(detail), "code": code}


def too_large_payload() -> dict:
    from django.conf import settings

    return error_payload(
        "The request body is too large (at most "
        f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes besides attached files).",
        "request_too_large",
    )


def bad_request_payload(exc: BaseException) -> tuple[dict, int]:
    """What Django's ``SuspiciousOperation`` family means for an API client."""
    if isinstance(exc, RequestDataTooBig):
        return too_large_payload(), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return error_payload(
            "Too many fields or files in one request.", "too_many_fields"
        ), status.HTTP_400_BAD_REQUEST
    return error_payload("Bad request.", "bad_request"), status.HTTP_400_BAD_REQUEST


def _one_shape(exc: exceptions.APIException, data):
    """DRF's answer in the one shape: ``{"detail", "code"}`` unless it is field errors."""
    if isinstance(data, dict):
        if "detail" in data and "code" not in data:
            detail = data["detail"]
            code = getattr(detail, "code", None) or exc.default_code
            if isinstance(exc, exceptions.PermissionDenied) and str(detail).startswith("CSRF"):
                code = "csrf_failed"  # DRF's SessionAuthentication, as CSRF_FAILURE_VIEW says
            data = {**data, "code": code}
        return data
    if isinstance(data, list):
        # ValidationError("…") raised outside a serializer: a list of messages.
        messages = [str(item) for item in data] or [str(exc.default_detail)]
        code = getattr(data[0], "code", None) if data else None
        return error_payload(" ".join(messages), code or exc.default_code)
    return error_payload(str(data), exc.default_code)


def api_exception_handler(exc, context):
    if database.is_database_down(exc):
        database.log_database_down(context["request"], exc)
        return Response(
            database.unavailable_payload(),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(database.RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, ProtectedError):
        return Response(
            {
                "detail": "Still in use; move or remove what refers to it first.",
                "code": "protected",
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            error_payload(" ".join(exc.messages), getattr(exc, "code", None) or "invalid"),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, SuspiciousOperation):
        # Raised while reading the body (too large, too many fields): Django would answer
        # an HTML 400 page.
        payload, code = bad_request_payload(exc)
        return Response(payload, status=code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = _one_shape(exc, response.data)
    return response
