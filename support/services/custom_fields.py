"""Custom fields: their definitions (managers) and their values on tickets.

- ``custom_field_save``: create or change a definition. The ``key`` never changes once
  created (it names the values, the API and saved filters); a choice field needs choices;
  a field that already holds values keeps its kind. Removing a choice leaves the tickets
  that use it as they are (their values stay readable, new ones cannot use it).
- ``custom_field_delete``: a field no ticket uses is deleted; a field with values is
  deactivated instead (hidden from forms, rules and customers; staff still read its
  values), so no recorded fact is lost.
- ``ticket_set_custom_fields``: a partial update of a ticket's values (``None`` removes
  one), each changed key one ``field_changed`` event.

The rules of the values themselves are in :mod:`support.custom_fields`.
"""

from __future__ import annotations

from django.db import transaction

from core.errors import Conflict, DomainError, NotPermitted
from core.roles import is_agent, is_manager
from support import custom_fields as cf
from support import events
from support.models import CustomField, Ticket, TicketStatus
from support.services._validation import full_clean
from support.services.tickets import _lock
from support.side_effects import after_commit

__all__ = [
    "custom_field_check",
    "custom_field_delete",
    "custom_field_save",
    "ticket_set_custom_fields",
]

Kind = CustomField.Kind
CHOICE_KINDS = frozenset({Kind.CHOICE, Kind.MULTI_CHOICE})


def _managers_only(actor) -> None:
    if not is_manager(actor):
        raise NotPermitted("Only managers can change custom fields.")


def _in_use(key: str) -> bool:
    return Ticket.objects.filter(custom_fields__has_key=key).exists()


def custom_field_check(*, field: CustomField) -> CustomField:
    """What ``custom_field_save`` refuses, checked without saving (forms call it to put
    the reason on the field): choices tidied (trimmed, no repeats; none for other kinds),
    a choice field without choices, a changed key, a changed kind while tickets hold
    values, then the model's own validation."""
    field.label = (field.label or "").strip()
    choices, seen = [], set()
    for choice in field.choices or []:
        choice = (choice or "").strip()
        if choice and choice not in seen:
            seen.add(choice)
            choices.append(choice)
    field.choices = choices if field.kind in CHOICE_KINDS else []
    if field.kind in CHOICE_KINDS and not field.choices:
        raise DomainError("A choice field needs at least one choice.", field="choices")
    field.required_for_types = sorted(set(field.required_for_types or []))
    if field.customer_editable:
        field.customer_visible = True  # what the customer fills in, they see
    if field.pk is not None:
        stored = CustomField.objects.filter(pk=field.pk).values("key", "kind").first()
        if stored is not None:
            if stored["key"] != field.key:
                raise DomainError(
                    "The key of a custom field cannot change (the API, filters and the "
                    "tickets' values use it); add a new field instead.",
                    field="key",
                )
            if stored["kind"] != field.kind and _in_use(stored["key"]):
                raise DomainError(
                    "Tickets hold values of this field: its kind cannot change.", field="kind"
                )
    full_clean(field)
    return field


@transaction.atomic
def custom_field_save(*, field: CustomField, actor) -> CustomField:
    """Create or change a custom field definition (managers)."""
    _managers_only(actor)
    if field.pk is not None:
        CustomField.objects.select_for_update().filter(pk=field.pk).first()
    custom_field_check(field=field)
    field.save()
    return field


@transaction.atomic
def custom_field_delete(*, field: CustomField, actor) -> bool:
    """Delete a field no ticket uses (True); deactivate one that holds values (False)."""
    _managers_only(actor)
    field = CustomField.objects.select_for_update().get(pk=field.pk)
    if _in_use(field.key):
        if field.is_active:
            field.is_active = False
            field.save(update_fields=["is_active"])
        return False
    field.delete()
    return True


@transaction.atomic
def ticket_set_custom_fields(*, ticket: Ticket, values: dict, actor, actor_kind=None) -> Ticket:
    """Set some of ``ticket``'s custom field values (``None`` or ``""`` removes one).

    Staff (and rules, with ``actor=None``) set any active field; a customer only the
    customer-editable fields of their own ticket, while it is not closed. A value
    required for the ticket's type cannot be removed. Each changed key writes one
    ``field_changed`` event (internal unless customers see the field)."""
    customer = actor is not None and not is_agent(actor)
    if customer and ticket.requester_id != actor.pk:
        raise NotPermitted("Only the requester can fill in this ticket's fields.")
    fields = cf.active_fields()
    cleaned = cf.clean_values(
        values, fields=fields, ticket_type=ticket.type, for_customer=customer, partial=True
    )
    ticket = _lock(ticket)
    if customer and ticket.status == TicketStatus.CLOSED:
        raise Conflict("This ticket is closed.")
    by_key = {f.key: f for f in fields}
    stored = dict(ticket.custom_fields or {})
    removed_required = [
        by_key[key]
        for key, value in cleaned.items()
        if value is None
        and ticket.type in by_key[key].required_for_types
        and not cf.is_empty(stored.get(key))
    ]
    if removed_required:
        raise cf.required_error(ticket.type, removed_required)
    changed = []
    for key, value in cleaned.items():
        old = stored.get(key)
        if value is None:
            if key not in stored:
                continue
            del stored[key]
        elif old == value and type(old) is type(value):
            continue
        else:
            stored[key] = value
        field = by_key[key]
        changed.append(key)
        events.custom_field_changed_event(
            ticket=ticket,
            actor=actor,
            key=key,
            old=cf.display(field, old),
            new=cf.display(field, value),
            visible=field.customer_visible or field.customer_editable,
            actor_kind=actor_kind,
        )
    if changed:
        ticket.custom_fields = stored
        ticket.save(update_fields=["custom_fields", "updated_at"])
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket
