"""Merge and split on the ticket page (``_merge_split.html``).

"Merge this ticket into …" takes the survivor's reference (the browser asks to confirm);
"Split off" takes a checkbox per message and an optional subject. Both are entries of
:data:`support.admin.tickets.TICKET_ACTIONS` calling ``ticket_merge`` / ``ticket_split``.
The page says where a merged ticket went ("Merged into HD-…"), which tickets were merged
into this one, and the tickets a split links (:data:`TICKET_PAGE_CONTEXT`).
"""

from __future__ import annotations

from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html

from core.errors import DomainError
from support import services
from support.admin.tickets import TICKET_ACTIONS, TICKET_PAGE_CONTEXT
from support.models import Ticket


def _link(ticket: Ticket):
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:support_ticket_change", args=[ticket.pk]),
        ticket.reference,
    )


def _ticket_by_reference(value: str) -> Ticket:
    reference = (value or "").strip().upper()
    if not reference:
        raise DomainError("Name the ticket to merge this one into (HD-…).", field="into")
    found = Ticket.objects.filter(reference=reference).first()
    if found is None:
        raise DomainError(f"There is no ticket {reference}.", field="into")
    return found


def _merge(ticket: Ticket, request) -> str:
    survivor = services.ticket_merge(
        ticket=ticket, into=_ticket_by_reference(request.POST.get("into", "")), actor=request.user
    )
    return format_html(
        "{} was merged into {} and closed; the customer was told there.",
        ticket.reference,
        _link(survivor),
    )


def _split(ticket: Ticket, request) -> str:
    new = services.ticket_split(
        ticket=ticket,
        message_ids=request.POST.getlist("messages"),
        actor=request.user,
        subject=request.POST.get("subject", ""),
    )
    return format_html("Split off into {} (assigned to you).", _link(new))


def _page_context(ticket: Ticket, request) -> dict:
    """Where a merge or split left this ticket, and the messages a split can take."""
    merged_into = None
    if ticket.merged_into_id:
        merged_into = Ticket.objects.filter(pk=ticket.merged_into_id).first()
    split_choices = []
    if merged_into is None:
        split_choices = [
            {
                "pk": message.pk,
                "who": (
                    message.author.get_full_name() or message.author.get_username()
                    if message.author
                    else message.get_sender_kind_display()
                ),
                "kind": message.get_sender_kind_display(),
                "internal": message.is_internal,
                "at": message.created_at,
                "excerpt": truncatechars(" ".join(message.body.split()), 80),
            }
            for message in ticket.messages.select_related("author").order_by("created_at", "id")
        ]
    return {
        "merge_merged_into": merged_into,
        "merge_merged_in": list(
            ticket.merged_tickets.order_by("pk").only("pk", "reference", "subject")
        ),
        "merge_split_from": (
            Ticket.objects.filter(pk=ticket.split_from_id).only("pk", "reference").first()
            if ticket.split_from_id
            else None
        ),
        "merge_split_off": list(
            ticket.split_tickets.order_by("pk").only("pk", "reference", "subject")
        ),
        "merge_split_choices": split_choices,
    }


TICKET_ACTIONS.update({"merge": _merge, "split": _split})
TICKET_PAGE_CONTEXT.append(_page_context)
