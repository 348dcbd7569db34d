"""Model validation as a domain error (for the services of the desk's own records)."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from core.errors import DomainError


def full_clean(instance: models.Model, *, exclude=None) -> None:
    """Run the model's validation (fields, choices, validators, unique and check
    constraints); the first problem becomes a :class:`DomainError` on its field."""
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise DomainError(messages[0], field=None if field == NON_FIELD_ERRORS else field) from None
