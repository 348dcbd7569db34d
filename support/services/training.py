"""The training loop: good resolutions become reviewed, anonymized training examples.

Harvest rules (``training_example_harvest``, queued when a ticket is rated):
- only tickets that are resolved or closed and rated 4 or 5; one example per ticket (a
  second run returns the first example);
- the question is the subject, the description and the customer's later public messages
  up to the final answer (clarifications); the answer is the last public reply of the AI or
  an agent before the resolution (no such reply: nothing to learn, nothing harvested);
- outcome: ``escalated`` when the ticket was handed to people (a human-written resolution
  of an escalated ticket is the most valuable kind), else ``failed`` when an earlier
  resolution was reopened, else ``successful``;
- personal data is replaced by typed placeholders (``support.pii``) before anything is
  stored in the anonymized fields, with the names of the requester and of the agents on the
  ticket; the kinds found are recorded.

Review: a person edits the anonymized texts (re-scanned on every edit), approves with a
quality score, or rejects with a reason. Only approved examples with nothing left in
``pii_remaining`` are ready for training, retrieval by the agent, and export.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Conflict, DomainError, NotPermitted
from core.roles import is_agent
from support import pii
from support.models import DONE_STATUSES, Message, Ticket, TrainingExample

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_HARVEST_RATING",
    "ticket_people_names",
    "training_example_approve",
    "training_example_edit",
    "training_example_harvest",
    "training_example_reject",
    "training_examples_mark_exported",
    "training_examples_mark_used_by_ai",
]

MIN_HARVEST_RATING = 4
PUBLIC_REPLIERS = (Message.SenderKind.AI, Message.SenderKind.AGENT)
Status = TrainingExample.Status


def ticket_people_names(ticket: Ticket) -> list[str]:
    """Names that identify people on this ticket: the requester's and every agent's who
    wrote on it or owns it (full names, first and last names, usernames)."""
    people = [ticket.requester, ticket.assignee]
    people += [m.author for m in ticket.messages.select_related("author") if m.author_id]
    names: set[str] = set()
    for person in people:
        if person is None:
            continue
        for value in (
            person.get_full_name(),
            person.first_name,
            person.last_name,
            person.get_username(),
        ):
            if value and len(value.strip()) >= 2:
                names.add(value.strip())
    return sorted(names, key=len, reverse=True)


def _embed(text: str) -> tuple[list[float] | None, str]:
    from integrations.embeddings import get_provider

    try:
        provider = get_provider()
        return provider.embed_query(text), provider.model_name
    except Exception:  # an embedding outage must not lose the example; review re-embeds
        logger.exception("could not embed a training example")
        return None, ""


def _parts(ticket: Ticket) -> tuple[str, Message] | None:
    messages = list(ticket.messages.filter(is_internal=False).order_by("created_at", "id"))
    answers = [
        m
        for m in messages
        if m.sender_kind in PUBLIC_REPLIERS
        and (ticket.resolved_at is None or m.created_at <= ticket.resolved_at)
    ]
    if not answers:
        return None
    final = answers[-1]
    customer_text = [
        m.body.strip()
        for m in messages
        if m.sender_kind == Message.SenderKind.CUSTOMER and m.created_at <= final.created_at
    ]
    question = "\n\n".join([ticket.subject.strip(), *customer_text])
    return question, final


def _outcome(ticket: Ticket) -> str:
    if ticket.escalations.exists():
        return TrainingExample.Outcome.ESCALATED
    if ticket.reopened_count:
        return TrainingExample.Outcome.FAILED
    return TrainingExample.Outcome.SUCCESSFUL


def training_example_harvest(*, ticket_id: int) -> TrainingExample | None:
    """Keep this ticket's resolution as a training example if it qualifies (see the module
    docstring). Idempotent: the example of a ticket is made once."""
    existing = TrainingExample.objects.filter(ticket_id=ticket_id).first()
    if existing is not None:
        return existing
    ticket = Ticket.objects.select_related("requester", "assignee").filter(pk=ticket_id).first()
    if ticket is None:
        return None
    if ticket.status not in DONE_STATUSES or (ticket.satisfaction_rating or 0) < MIN_HARVEST_RATING:
        return None
    parts = _parts(ticket)
    if parts is None:
        logger.info("ticket %s has no answer to learn from", ticket_id)
        return None
    question, final = parts
    names = ticket_people_names(ticket)
    anonymized_question, found_q = pii.anonymize(question, names=names)
    anonymized_answer, found_a = pii.anonymize(final.body, names=names)
    embedding, model = _embed(anonymized_question)
    try:
        with transaction.atomic():
            return TrainingExample.objects.create(
                ticket=ticket,
                source_message=final,
                ticket_type=ticket.type,
                question=question,
                answer=final.body,
                anonymized_question=anonymized_question,
                anonymized_answer=anonymized_answer,
                pii_found=sorted(set(found_q) | set(found_a)),
                pii_remaining=_remaining(anonymized_question, anonymized_answer, names),
                outcome=_outcome(ticket),
                author_kind=(
                    TrainingExample.AuthorKind.AI
                    if final.sender_kind == Message.SenderKind.AI
                    else TrainingExample.AuthorKind.HUMAN
                ),
                confidence=final.ai_confidence,
                satisfaction_rating=ticket.satisfaction_rating,
                embedding=embedding,
                embedding_model=model,
            )
    except IntegrityError:  # a concurrent delivery made it first
        return TrainingExample.objects.get(ticket_id=ticket_id)


def _remaining(question: str, answer: str, names) -> list[str]:
    return sorted(set(pii.kinds_in(question, names=names)) | set(pii.kinds_in(answer, names=names)))


def _locked(example: TrainingExample) -> TrainingExample:
    return (
        TrainingExample.objects.select_for_update(of=("self",))
        .select_related("ticket__requester", "ticket__assignee")
        .get(pk=example.pk)
    )


@transaction.atomic
def training_example_edit(
    *, example: TrainingExample, actor, anonymized_question: str, anonymized_answer: str
) -> TrainingExample:
    """A reviewer corrects the anonymized texts; they are scanned again for personal data.
    Editing an approved example sends it back to review."""
    if not is_agent(actor):
        raise NotPermitted("Only staff review training examples.")
    question, answer = (anonymized_question or "").strip(), (anonymized_answer or "").strip()
    if not question:
        raise DomainError("The question cannot be empty.", field="anonymized_question")
    if not answer:
        raise DomainError("The answer cannot be empty.", field="anonymized_answer")
    example = _locked(example)
    if example.status == Status.REJECTED:
        raise Conflict("This example was rejected; it cannot be edited.")
    names = ticket_people_names(example.ticket)
    if question != example.anonymized_question:
        example.embedding, example.embedding_model = _embed(question)
    example.anonymized_question, example.anonymized_answer = question, answer
    example.pii_remaining = _remaining(question, answer, names)
    if example.status == Status.APPROVED:
        example.status, example.reviewed_by, example.reviewed_at = Status.PENDING, None, None
    example.save()
    return example


@transaction.atomic
def training_example_approve(*, example: TrainingExample, actor, quality_score) -> TrainingExample:
    """Approve for training with a quality score (1–5). Refused while personal data remains."""
    if not is_agent(actor):
        raise NotPermitted("Only staff review training examples.")
    try:
        quality_score = int(quality_score)
    except (TypeError, ValueError):
        raise DomainError("Give a quality score from 1 to 5.", field="quality_score") from None
    if not 1 <= quality_score <= 5:
        raise DomainError("Give a quality score from 1 to 5.", field="quality_score")
    example = _locked(example)
    if example.status != Status.PENDING:
        raise Conflict(f"This example is already {example.get_status_display().lower()}.")
    if example.pii_remaining:
        raise DomainError(
            "Personal data remains in the anonymized text ("
            + ", ".join(example.pii_remaining)
            + "); edit it before approving.",
            field="anonymized_question",
        )
    if example.embedding is None:
        example.embedding, example.embedding_model = _embed(example.anonymized_question)
    example.status = Status.APPROVED
    example.quality_score = quality_score
    example.reviewed_by, example.reviewed_at = actor, timezone.now()
    example.save()
    return example


@transaction.atomic
def training_example_reject(*, example: TrainingExample, actor, reason: str) -> TrainingExample:
    """Reject with a reason; a rejected example is never used or exported."""
    if not is_agent(actor):
        raise NotPermitted("Only staff review training examples.")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why the example is rejected.", field="review_note")
    example = _locked(example)
    if example.status == Status.REJECTED:
        raise Conflict("This example is already rejected.")
    example.status, example.review_note = Status.REJECTED, reason[:2000]
    example.reviewed_by, example.reviewed_at = actor, timezone.now()
    example.save()
    return example


def training_examples_mark_used_by_ai(ids) -> None:
    """Count that the agent used these examples as context (one UPDATE)."""
    if ids:
        TrainingExample.objects.filter(pk__in=list(ids)).update(
            times_used_by_ai=F("times_used_by_ai") + 1
        )


def training_examples_mark_exported(ids) -> int:
    return TrainingExample.objects.filter(pk__in=list(ids)).update(
        used_in_training=True, exported_at=timezone.now()
    )
