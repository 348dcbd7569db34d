"""Custom fields: the rules of their values (no door, no write; ``support.services``
stores them).

A :class:`~support.models.CustomField` defines a fact a team records on tickets; the
values live in ``Ticket.custom_fields`` (JSONB keyed by the field's ``key``, GIN index
``jsonb_path_ops``). Stored shapes, whatever door they came through:

==============  ==================================================================
kind            value
==============  ==================================================================
text            a string of at most :data:`MAX_TEXT` characters (trimmed)
number          a JSON number (an integer when it is whole)
date            an ISO date string ``YYYY-MM-DD``
choice          one of the field's ``choices``
multi_choice    a non-empty list of its ``choices``, without repeats, in their order
boolean         ``true`` / ``false``
==============  ==================================================================

A value of ``None`` or ``""`` (or an empty list) removes the value. Forms send text, so
numbers may come as numeric strings and booleans as ``on`` / ``true`` / ``1`` (``off`` /
``false`` / ``0``). Customers may set only ``customer_editable`` fields and see only
``customer_visible`` ones. A removed choice leaves the values that use it readable
(:func:`display` shows them as stored).

Required values (``required_for_types``): the fields customers fill in are asked when the
ticket is opened through a form or the API (:func:`missing_required` with
``for_customer=True``); the fields only the team fills in must have a value before an
agent resolves the ticket (:func:`check_resolvable`; the AI and rules are not held back).

Filters (:func:`filter_q`, :func:`parse_filter`) turn ``key:value`` from a URL into a
``custom_fields__contains`` lookup, which PostgreSQL answers from the GIN index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date

from django.db.models import Q

from core.errors import DomainError
from support.models import CustomField, TicketType

Kind = CustomField.Kind

MAX_TEXT = 1000
TRUE_WORDS = frozenset({"true", "on", "1", "yes"})
FALSE_WORDS = frozenset({"false", "off", "0", "no"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

__all__ = [
    "MAX_TEXT",
    "CustomFieldError",
    "active_fields",
    "check_resolvable",
    "clean_values",
    "display",
    "filter_q",
    "is_empty",
    "missing_required",
    "parse_filter",
    "visible_values",
]


class CustomFieldError(DomainError):
    """Bad custom field values, by key: the API answers
    ``{"custom_fields": {"order_number": ["…"]}}``; the message names every field."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(
            " ".join(m for messages in errors.values() for m in messages), field="custom_fields"
        )
        self.errors = errors

    def as_dict(self) -> dict:
        return {"custom_fields": self.errors}


def active_fields() -> list[CustomField]:
    """The active definitions in their order (one query: callers reuse the list)."""
    return list(CustomField.objects.filter(is_active=True).order_by("position", "label", "pk"))


def is_empty(value) -> bool:
    return value is None or value == "" or value == [] or value == ()


def _type_label(ticket_type: str) -> str:
    try:
        return TicketType(ticket_type).label.lower()
    except ValueError:
        return ticket_type


# --------------------------------------------------------------------------------------
# One value
# --------------------------------------------------------------------------------------


def _number(value):
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
            raise ValueError
        value = float(text) if any(c in text for c in ".eE") else int(text)
    if not isinstance(value, int | float):
        raise ValueError
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError


def _date(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        return date.fromisoformat(value.strip()).isoformat()  # ValueError: 2026-02-30
    raise ValueError


def clean_value(field: CustomField, value):
    """``value`` in its stored shape; raises ``ValueError`` with a message naming the
    field when it does not fit the definition (None: remove the value)."""
    label = field.label
    if is_empty(value):
        return None
    kind = field.kind
    if kind == Kind.TEXT:
        if not isinstance(value, str):
            raise ValueError(f"{label}: give text.")
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise ValueError(f"{label}: at most {MAX_TEXT} characters.")
        return value or None
    if kind == Kind.NUMBER:
        try:
            return _number(value)
        except (ValueError, OverflowError):
            raise ValueError(f"{label}: give a number, not “{str(value)[:50]}”.") from None
    if kind == Kind.DATE:
        try:
            return _date(value)
        except ValueError:
            raise ValueError(
                f"{label}: give a date as YYYY-MM-DD, not “{str(value)[:50]}”."
            ) from None
    if kind == Kind.BOOLEAN:
        try:
            return _boolean(value)
        except ValueError:
            raise ValueError(f"{label}: give true or false.") from None
    if kind == Kind.CHOICE:
        if not isinstance(value, str) or value not in field.choices:
            raise ValueError(
                f"{label}: “{str(value)[:50]}” is not one of: {', '.join(field.choices)}."
            )
        return value
    if kind == Kind.MULTI_CHOICE:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"{label}: give a list of: {', '.join(field.choices)}.")
        wrong = [v for v in value if not isinstance(v, str) or v not in field.choices]
        if wrong:
            raise ValueError(
                f"{label}: “{str(wrong[0])[:50]}” is not one of: {', '.join(field.choices)}."
            )
        chosen = set(value)
        return [c for c in field.choices if c in chosen]
    raise ValueError(f"{label}: this field cannot hold values.")  # pragma: no cover


# --------------------------------------------------------------------------------------
# A set of values
# --------------------------------------------------------------------------------------


def clean_values(
    values,
    *,
    fields: Iterable[CustomField],
    ticket_type: str,
    for_customer: bool = False,
    partial: bool = False,
) -> dict:
    """``values`` checked against the definitions and put in their stored shape.

    ``partial`` (an update): a key whose value is empty maps to ``None`` (remove it);
    otherwise (a new ticket) empty values are left out. Raises :class:`CustomFieldError`
    with every problem by key: an unknown or inactive field, a value of the wrong kind,
    a field the customer may not fill in (``for_customer``). ``ticket_type`` is the
    ticket's type (kept for the callers' required checks)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise DomainError(
            "Custom fields are an object of values by field key.", field="custom_fields"
        )
    by_key = {f.key: f for f in fields}
    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    for key, value in values.items():
        field = by_key.get(key)
        if field is None:
            errors[str(key)[:50]] = [f"There is no custom field “{str(key)[:50]}”."]
            continue
        if for_customer and not field.customer_editable:
            errors[key] = [f"{field.label}: only the support team fills this in."]
            continue
        try:
            value = clean_value(field, value)
        except ValueError as error:
            errors[key] = [str(error)]
            continue
        if value is not None or partial:
            cleaned[key] = value
    if errors:
        raise CustomFieldError(errors)
    return cleaned


def missing_required(
    ticket_type: str,
    values: dict,
    fields: Iterable[CustomField],
    *,
    for_customer: bool | None = None,
) -> list[CustomField]:
    """The fields required for ``ticket_type`` that have no value in ``values``:
    ``for_customer=True`` only those the customer fills in, ``False`` only those the
    team fills in, ``None`` all."""
    values = values or {}
    return [
        f
        for f in fields
        if f.is_active
        and ticket_type in (f.required_for_types or [])
        and (for_customer is None or f.customer_editable == for_customer)
        and is_empty(values.get(f.key))
    ]


def required_error(ticket_type: str, missing: list[CustomField]) -> CustomFieldError:
    kind = _type_label(ticket_type)
    return CustomFieldError(
        {f.key: [f"{f.label} is required for {kind} tickets."] for f in missing}
    )


def check_resolvable(ticket, fields: Iterable[CustomField] | None = None) -> None:
    """Before an agent resolves: the team's required fields must be filled in."""
    fields = active_fields() if fields is None else fields
    missing = missing_required(ticket.type, ticket.custom_fields, fields, for_customer=False)
    if missing:
        names = ", ".join(f.label for f in missing)
        raise DomainError(
            f"Fill in {names} before resolving: required for {_type_label(ticket.type)} tickets.",
            field="custom_fields",
        )


def visible_values(values: dict, fields: Iterable[CustomField], *, for_customer: bool) -> dict:
    """The values a reader may see: staff every stored key, customers the keys of
    active customer-visible fields."""
    values = values or {}
    if not for_customer:
        return dict(values)
    shown = {f.key for f in fields if f.is_active and (f.customer_visible or f.customer_editable)}
    return {k: v for k, v in values.items() if k in shown}


# --------------------------------------------------------------------------------------
# Filters and display
# --------------------------------------------------------------------------------------


def filter_q(field: CustomField, raw: str) -> Q:
    """Tickets whose ``field`` holds ``raw`` (text from a URL): a containment lookup
    (``@>``) the GIN index answers; for a multiple choice, tickets having that option.
    A value that does not fit the field raises :class:`DomainError`."""
    if raw is None or not str(raw).strip():
        raise DomainError(f"{field.label}: give a value to filter by.", field="custom_field")
    raw = str(raw).strip()
    try:
        if field.kind == Kind.MULTI_CHOICE:
            value = clean_value(field, [raw])
        elif field.kind == Kind.CHOICE:
            if raw not in field.choices:
                raise ValueError(
                    f"{field.label}: “{raw[:50]}” is not one of: {', '.join(field.choices)}."
                )
            value = raw
        else:
            value = clean_value(field, raw)
    except ValueError as error:
        raise DomainError(str(error), field="custom_field") from None
    return Q(custom_fields__contains={field.key: value})


def parse_filter(raw: str, fields: Iterable[CustomField]) -> Q:
    """``key:value`` (``?custom_field=plan_tier:enterprise``) as a filter."""
    key, sep, value = (raw or "").partition(":")
    if not sep:
        raise DomainError(
            "Filter custom fields as key:value (for example order_number:A-1001).",
            field="custom_field",
        )
    field = next((f for f in fields if f.key == key.strip()), None)
    if field is None:
        raise DomainError(f"There is no custom field “{key.strip()[:50]}”.", field="custom_field")
    return filter_q(field, value)


def display(field: CustomField | None, value) -> str:
    """The value as a person reads it ("" when there is none)."""
    if is_empty(value):
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
