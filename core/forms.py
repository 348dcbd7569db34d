"""What every app's forms share: a service's :class:`core.errors.DomainError` shown on the
form field it names (or on the form)."""

from __future__ import annotations

from core.errors import DomainError


class DomainErrorFormMixin:
    def add_domain_error(self, error: DomainError) -> None:
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)
