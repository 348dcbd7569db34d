"""Reads of support, scoped to who is asking.

A customer sees their own tickets, or their organization's when they are its admin;
staff see every ticket. Customers never see internal notes, nor the events about them.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from support.models import Message, SavedReply, Ticket, TicketEvent


def is_agent(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def ticket_list(*, user) -> QuerySet[Ticket]:
    """Tickets ``user`` may see, with what list pages show, in one query."""
    queryset = Ticket.objects.select_related("requester", "organization", "assignee", "team")
    if not user.is_authenticated:
        return queryset.none()
    if is_agent(user):
        return queryset
    profile = getattr(user, "customer_profile", None)
    if profile is not None and profile.is_org_admin and profile.organization_id:
        return queryset.filter(Q(requester=user) | Q(organization_id=profile.organization_id))
    return queryset.filter(requester=user)


def ticket_get(*, user, reference: str) -> Ticket:
    """The ticket if ``user`` may see it; 404 otherwise, so others' tickets stay unknown."""
    try:
        return ticket_list(user=user).get(reference=reference)
    except Ticket.DoesNotExist:
        raise Http404("No such ticket.") from None


def message_list(*, user, ticket: Ticket) -> QuerySet[Message]:
    queryset = (
        ticket.messages.select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )
    return queryset if is_agent(user) else queryset.filter(is_internal=False)


def event_list(*, user, ticket: Ticket) -> QuerySet[TicketEvent]:
    queryset = ticket.events.select_related("actor").order_by("created_at", "id")
    return queryset if is_agent(user) else queryset.filter(is_internal=False)


def ticket_with_conversation(*, user, reference: str) -> Ticket:
    """One ticket with its visible messages (and their attachments) prefetched."""
    ticket = ticket_get(user=user, reference=reference)
    messages = message_list(user=user, ticket=ticket)
    return (
        Ticket.objects.select_related("requester", "organization", "assignee", "team")
        .prefetch_related(Prefetch("messages", queryset=messages, to_attr="visible_messages"))
        .get(pk=ticket.pk)
    )


def saved_reply_list() -> QuerySet[SavedReply]:
    return SavedReply.objects.filter(is_active=True).order_by("title")


def training_examples_similar(vector, *, limit: int = 3, min_similarity: float = 0.5):
    """Approved, PII-free training examples nearest to ``vector`` (cosine, HNSW), each with
    ``similarity``; the agent's few-shot context."""
    from pgvector.django import CosineDistance

    from support.models import TrainingExample

    if vector is None:
        return []
    rows = (
        TrainingExample.objects.ready_for_training()
        .filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", list(vector)))
        .order_by("distance")
        .only("id", "ticket_type", "anonymized_question", "anonymized_answer", "quality_score")[
            :limit
        ]
    )
    out = []
    for row in rows:
        row.similarity = 1.0 - float(row.distance)
        if row.similarity >= min_similarity:
            out.append(row)
    return out
