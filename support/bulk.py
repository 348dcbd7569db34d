"""Bulk actions on a selection of tickets: the queue's actions in admin and
``POST /api/tickets/bulk/`` share this one runner.

:func:`run` first checks the actor (staff only), the size of the selection (at most
:data:`MAX_TICKETS`) and the action's parameters (an unknown agent, status, priority or
saved reply, a bad tag name, a merge target that does not exist…): any of these raises
one ``DomainError`` before a single ticket is touched. Then each ticket goes through its
service (``support.services``) in its own transaction, so one refusal never undoes or
blocks the others: a ``DomainError``'s message is the reason it was refused, anything
unexpected is logged and reported as "failed: internal error". The result lists what was
done (reference, note) and what was refused (reference, reason), in the selection's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from core.errors import DomainError, NotPermitted
from core.roles import is_agent
from support import services
from support.models import SavedReply, Tag, Ticket, TicketPriority, TicketStatus

logger = logging.getLogger(__name__)

#: The largest selection one bulk action takes.
MAX_TICKETS = 500

#: What the status action can make of a ticket; each target has its own service.
STATUS_TARGETS = {
    TicketStatus.AWAITING_CUSTOMER.value: "Awaiting customer",
    TicketStatus.RESOLVED.value: "Resolved",
    TicketStatus.CLOSED.value: "Closed",
    "reopen": "Reopened",
}

#: The note of a ticket that was refused because of a bug, not a rule.
INTERNAL_ERROR = "failed: internal error"

Apply = Callable[[Ticket], str]


@dataclass
class BulkResult:
    """What a bulk action did: ``done`` and ``refused`` as (reference, note or reason)."""

    action: str
    done: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class BulkAction:
    """One bulk action: its label, and ``prepare`` that validates the parameters (raising
    ``DomainError`` naming the parameter) and returns what to do to each ticket."""

    label: str
    prepare: Callable[..., Apply]


# ======================================================================================
# The actions: prepare(params, *, actor, tickets) -> apply(ticket) -> note
# ======================================================================================


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def _agent(raw, *, actor):
    """``"me"`` → the actor; ``None``/``""``/``"none"`` → nobody; an id → that agent."""
    if raw == "me":
        return actor
    if raw in (None, "", "none"):
        return None
    if isinstance(raw, bool) or not str(raw).isdigit():
        raise DomainError("Choose an agent, “me” or nobody.", field="assignee")
    user = get_user_model().objects.filter(pk=int(raw)).first()
    if user is None or not is_agent(user):
        raise DomainError(f"There is no active agent with id {raw}.", field="assignee")
    return user


def _prepare_assign(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    if "assignee" not in params:
        raise DomainError("Choose whom to assign: an agent, “me” or nobody.", field="assignee")
    assignee = _agent(params["assignee"], actor=actor)
    target_id = getattr(assignee, "pk", None)
    who = "you" if assignee == actor else (_person(assignee) if assignee else None)

    def apply(ticket: Ticket) -> str:
        if ticket.assignee_id == target_id:
            return f"already assigned to {who}" if who else "already unassigned"
        services.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
        return f"assigned to {who}" if who else "unassigned"

    return apply


def _prepare_status(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    target = params.get("status") or ""
    if target not in STATUS_TARGETS:
        raise DomainError(
            f"Choose a status: {', '.join(STATUS_TARGETS)}.",
            field="status",
        )

    def apply(ticket: Ticket) -> str:
        if target == TicketStatus.RESOLVED:
            services.ticket_resolve(ticket=ticket, actor=actor)
            return "resolved"
        if target == TicketStatus.CLOSED:
            services.ticket_close(ticket=ticket, actor=actor)
            return "closed"
        if target == "reopen":
            services.ticket_reopen(ticket=ticket, actor=actor)
            return "reopened"
        if ticket.status == target:
            return "already awaiting the customer"
        services.ticket_set_status(ticket=ticket, status=target, actor=actor)
        return "now awaiting the customer"

    return apply


def _prepare_priority(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    priority = params.get("priority") or ""
    if priority not in TicketPriority.values:
        raise DomainError(
            f"Choose a priority: {', '.join(TicketPriority.values)}.", field="priority"
        )
    label = TicketPriority(priority).label.lower()

    def apply(ticket: Ticket) -> str:
        if ticket.priority == priority:
            return f"already {label}"
        services.ticket_change_priority(ticket=ticket, priority=priority, actor=actor)
        return f"priority {label}"

    return apply


def _tag_names(raw, *, field: str) -> list[str]:
    """Names from a list or a comma-separated text, normalized, without repeats."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list | tuple):
        raise DomainError("Give tag names as a list.", field=field)
    names: list[str] = []
    for name in raw:
        try:
            normal = services.tag_normalize(name)
        except DomainError as error:
            raise DomainError(error.message, field=field) from None
        if normal not in names:
            names.append(normal)
    return names


def _prepare_tags(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    add = _tag_names(params.get("add_tags"), field="add_tags")
    remove = _tag_names(params.get("remove_tags"), field="remove_tags")
    if not add and not remove:
        raise DomainError("Name at least one tag to add or to remove.", field="add_tags")
    both = sorted(set(add) & set(remove))
    if both:
        raise DomainError(
            f"Add or remove “{both[0]}”, not both.",
            field="remove_tags",
        )
    if add and not settings.HELPDESK_TAGS_FREE:
        known = set(Tag.objects.filter(name__in=add).values_list("name", flat=True))
        unknown = [name for name in add if name not in known]
        if unknown:
            raise DomainError(
                f"“{unknown[0]}” is not in the list of tags; a manager adds new tags.",
                field="add_tags",
            )
    note = " ".join([*(f"+{name}" for name in add), *(f"−{name}" for name in remove)])

    def apply(ticket: Ticket) -> str:
        services.ticket_tag(ticket=ticket, add=add, remove=remove, actor=actor)
        return f"tags {note}"

    return apply


def _prepare_merge(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    reference = params.get("merge_into")
    if isinstance(reference, Ticket):
        reference = reference.reference
    if not reference or not isinstance(reference, str):
        raise DomainError("Choose the ticket to keep (a reference).", field="merge_into")
    into = Ticket.objects.filter(reference=reference.strip()).first()
    if into is None:
        raise DomainError(f"There is no ticket {reference.strip()}.", field="merge_into")
    if into.merged_into_id is not None:
        raise DomainError(
            f"{into.reference} was itself merged into another ticket: keep that one instead.",
            field="merge_into",
        )
    if tickets and all(t.pk == into.pk for t in tickets):
        raise DomainError("Select at least one ticket besides the one to keep.", field="merge_into")

    def apply(ticket: Ticket) -> str:
        if ticket.pk == into.pk:
            return "kept: the others were merged into it"
        services.ticket_merge(ticket=ticket, into=into, actor=actor)
        return f"merged into {into.reference}"

    return apply


def _prepare_saved_reply(params: dict, *, actor, tickets: list[Ticket]) -> Apply:
    raw = params.get("saved_reply")
    if isinstance(raw, SavedReply):
        saved = raw
    elif raw not in (None, "") and not isinstance(raw, bool) and str(raw).isdigit():
        saved = SavedReply.objects.filter(pk=int(raw)).first()
    else:
        saved = None
    if saved is None:
        raise DomainError("Choose a saved reply.", field="saved_reply")
    if not saved.is_active:
        raise DomainError("This saved reply is archived.", field="saved_reply")

    def apply(ticket: Ticket) -> str:
        services.saved_reply_apply(ticket=ticket, saved_reply=saved, agent=actor)
        return f"sent “{saved.title}”"

    return apply


BULK_ACTIONS: dict[str, BulkAction] = {
    "assign": BulkAction("Assign", _prepare_assign),
    "status": BulkAction("Change the status", _prepare_status),
    "priority": BulkAction("Change the priority", _prepare_priority),
    "tags": BulkAction("Add or remove tags", _prepare_tags),
    "merge": BulkAction("Merge into one ticket", _prepare_merge),
    "saved_reply": BulkAction("Send a saved reply", _prepare_saved_reply),
}


# ======================================================================================
# The runner
# ======================================================================================


def _selection(tickets: Iterable[Ticket | str]) -> tuple[list[Ticket], list[str]]:
    """The tickets (a queryset, Ticket objects or references) in order without repeats,
    and the references that name no ticket; refuses a selection over the cap."""
    if isinstance(tickets, QuerySet):
        rows = list(tickets.order_by("pk")[: MAX_TICKETS + 1])
        if len(rows) > MAX_TICKETS:
            raise DomainError(f"Select at most {MAX_TICKETS} tickets at once.", field="tickets")
        return rows, []
    items = list(dict.fromkeys(tickets))
    if len(items) > MAX_TICKETS:
        raise DomainError(
            f"Select at most {MAX_TICKETS} tickets at once ({len(items)} selected).",
            field="tickets",
        )
    references = [item for item in items if isinstance(item, str)]
    found = {t.reference: t for t in Ticket.objects.filter(reference__in=references)}
    rows, missing = [], []
    for item in items:
        if isinstance(item, Ticket):
            rows.append(item)
        elif item in found:
            rows.append(found[item])
        else:
            missing.append(item)
    return rows, missing


def run(action: str, tickets: Iterable[Ticket | str], params: dict | None = None, *, actor):
    """Run ``action`` (a key of :data:`BULK_ACTIONS`) on each ticket, each through its
    service in its own transaction; returns a :class:`BulkResult`.

    Raises ``NotPermitted`` for anyone but staff and ``DomainError`` (naming the
    parameter) for an unknown action, an empty or too large selection or a bad parameter:
    then nothing was changed.
    """
    if not is_agent(actor):
        raise NotPermitted("Only support staff can run bulk actions.")
    spec = BULK_ACTIONS.get(action)
    if spec is None:
        raise DomainError(
            f"Unknown action “{action}”; one of: {', '.join(BULK_ACTIONS)}.", field="action"
        )
    rows, missing = _selection(tickets)
    if not rows and not missing:
        raise DomainError("Select at least one ticket.", field="tickets")
    apply = spec.prepare(dict(params or {}), actor=actor, tickets=rows)
    result = BulkResult(action=action)
    result.refused.extend((reference, "No such ticket.") for reference in missing)
    for ticket in rows:
        try:
            with transaction.atomic():
                note = apply(ticket)
        except DomainError as error:
            result.refused.append((ticket.reference, error.message))
        except Exception:
            logger.exception("Bulk %s failed on ticket %s", action, ticket.reference)
            result.refused.append((ticket.reference, INTERNAL_ERROR))
        else:
            result.done.append((ticket.reference, note))
    return result
