"""The domain's error types. Services raise :class:`DomainError` (or a subclass) with a
message a person can act on; views, admin actions, consumers and tasks catch it. Each door
shows it its own way: the API (``config.errors``) as 400/403/409 JSON, forms on their
fields (:class:`core.forms.DomainErrorFormMixin`), admin as a message, sockets as an error
frame."""

from __future__ import annotations

from rest_framework import status


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
