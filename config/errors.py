"""The one domain error type, and its mapping to HTTP for the API.

Services raise :class:`DomainError` (or a subclass) with a message a person can act on;
views, admin actions and tasks catch it. The API's exception handler turns it into
400 (invalid input) or 409 (:class:`Conflict`: the action does not fit the current state),
with the message and, when given, field errors, like DRF's own validation errors.
A database outage met inside DRF answers 503 with ``Retry-After`` (``config.middleware``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config import middleware as database


class DomainError(Exception):
    """A rule of the domain refused an action; nothing was changed."""

    http_status = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def as_dict(self) -> dict:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message, "code": self.code}


class Conflict(DomainError):
    """The action is not allowed in the object's current state (e.g. a status change)."""

    http_status = status.HTTP_409_CONFLICT
    code = "conflict"


class NotPermitted(DomainError):
    """The actor may not do this to this object."""

    http_status = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


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
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
