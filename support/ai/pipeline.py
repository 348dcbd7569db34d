"""Apply the agent to a ticket: the write path of the AI support agent.

1. A short transaction locks the ticket; only a ``new`` ticket nobody is assigned to is
   analyzed (a redelivered task finds it ``analyzing`` or further on and does nothing),
   and it becomes ``analyzing``.
2. Outside any transaction: the plan (triage, retrieval, the provider's answer: slow,
   external). Then ``ai_responding``.
3. A short transaction locks the ticket again and re-checks it is still ``ai_responding``
   (a person may have taken over meanwhile: then the AI's answer becomes an internal
   note). It writes the AI message with its model, tokens, cost, latency, confidence and
   sources, the triage fields, and routes: resolve, ask the customer, or escalate with
   what the AI attempted. In the same transaction, the analysis's decision trace
   (``support.ai.trace``: why it did what it did) is recorded.
Any failure on the way escalates with kind ``ai_unavailable``: no ticket stays in
``analyzing`` (``sweep_stuck_tickets`` also catches a worker that died mid-way); its trace
has outcome ``failed``, the steps it got to and the error.

On a chat ticket the provider streams its answer, which the customer sees being written
(``support.realtime.AnswerStream``, outside any transaction, marked provisional); the
answer itself is announced like any message once step 3 commits.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from django.conf import settings
from django.db import transaction

from config import metrics
from core import events
from core.errors import DomainError
from integrations.llm import cost_usd, get_provider
from knowledge.search import Scope
from knowledge.services import ai_references_record
from support import realtime, services
from support.ai import planner, tools
from support.ai import trace as ai_trace
from support.models import Message, Ticket, TicketChannel, TicketStatus

logger = logging.getLogger(__name__)
S = TicketStatus
AI = "ai"


def _start(ticket_id: int, *, resume: bool = False) -> Ticket | None:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
        # Only new tickets, and only while no person has taken the ticket on.
        if ticket is None or ticket.assignee_id is not None:
            return None
        if resume and ticket.status in (S.ANALYZING, S.AI_RESPONDING):
            # The previous attempt's worker died half-way (the outbox says so): take over.
            logger.warning("resuming the analysis of ticket %s", ticket_id)
            return ticket
        if ticket.status != S.NEW:
            return None
        return services.ticket_set_status(ticket=ticket, status=S.ANALYZING, actor_kind=AI)


def _conversation(ticket: Ticket) -> tuple[str, list[dict], int]:
    messages = list(ticket.messages.filter(is_internal=False).order_by("created_at", "id"))
    conversation = [{"from": m.sender_kind, "text": m.body} for m in messages][-12:]
    customer = [m for m in messages if m.sender_kind == Message.SenderKind.CUSTOMER]
    question = "\n\n".join(m.body for m in customer[-3:]) or ticket.description
    return question, conversation, len(customer)


def analyze_ticket(
    ticket_id: int, *, provider=None, resume: bool = False, vectors: dict | None = None
) -> str:
    """Analyze and answer a new ticket (or a new customer reply). Returns what happened.

    ``resume``: the previous attempt died mid-way; a ticket it left in ``analyzing`` or
    ``ai_responding`` is analyzed again rather than skipped. ``vectors``: query text →
    its embedding, computed beforehand for a batch (:func:`analyze_tickets`); a question
    that changed since is embedded anew."""
    ticket = _start(ticket_id, resume=resume)
    if ticket is None:
        return "skipped"
    stream = realtime.AnswerStream(ticket) if ticket.channel == TicketChannel.CHAT else None
    outcome = "failed"
    started, result = time.monotonic(), None
    try:
        provider = provider or get_provider()
        question, conversation, customer_messages = _conversation(ticket)
        scope = Scope.for_user(ticket.requester)
        toolbox = tools.Toolbox(ticket=ticket, scope=scope)
        result = planner.plan(
            question=question,
            subject=ticket.subject,
            conversation=conversation,
            provider=provider,
            scope=scope,
            examples=planner.production_examples(),
            customer_messages=customer_messages,
            on_partial=stream.update if stream else None,
            query_vector=(vectors or {}).get(planner.query_text(ticket.subject, question)),
            toolbox=toolbox,
        )
        _mark_responding(ticket.pk)
        with transaction.atomic():  # the trace commits with what it explains
            outcome = _apply(ticket.pk, result)
            _record_trace(ticket.pk, result, provider, outcome, started)
        metrics.observe_ai_analysis(outcome=outcome, plan=result)  # /metrics; never raises
        return outcome
    except Exception as exc:  # whatever broke, the ticket goes to people, never stays
        logger.exception("AI analysis failed", extra={"ticket_id": ticket_id})
        error = f"AI analysis failed: {type(exc).__name__}: {exc}"
        outcome = _give_up(ticket_id, error)
        _record_trace(ticket_id, result, provider, "failed", started, error=error)
        metrics.observe_ai_analysis(outcome="failed", plan=result)
        return outcome
    finally:
        if stream is not None:
            stream.finish(outcome)


def analyze_tickets(
    ticket_ids: list[int], *, provider=None, resumed=frozenset(), on_done=None
) -> dict[int, str]:
    """A batch of :func:`analyze_ticket`: their questions embedded in one call, then each
    ticket analysed and applied on its own, in order (its own transactions, as ever).

    A ticket whose analysis fails is escalated like any (``analyze_ticket``) and the
    others go on; should even that fail (the database went away), the error is that
    ticket's outcome and the others still run. ``resumed``: ids whose previous attempt
    died mid-way. ``on_done(ticket_id, outcome, error)`` is called after each ticket (the
    worker records its outbox item there). Returns each ticket's outcome."""
    provider = provider or get_provider()
    vectors = _embed_questions(ticket_ids)
    outcomes: dict[int, str] = {}
    for ticket_id in ticket_ids:
        error = None
        try:
            outcome = analyze_ticket(
                ticket_id, provider=provider, resume=ticket_id in resumed, vectors=vectors
            )
        except Exception as exc:
            logger.exception("AI analysis could not finish", extra={"ticket_id": ticket_id})
            outcome, error = "error", exc
        outcomes[ticket_id] = outcome
        if on_done is not None:
            on_done(ticket_id, outcome, error)
    return outcomes


def _embed_questions(ticket_ids: list[int]) -> dict[str, list[float]]:
    """Query text → embedding for the tickets of a batch the AI may analyse, in one
    ``embed_documents`` call. Empty when that fails: each ticket then embeds its own."""
    from integrations.embeddings import get_provider as get_embeddings

    try:
        tickets = Ticket.objects.filter(
            pk__in=ticket_ids, assignee=None, status__in=(S.NEW, S.ANALYZING, S.AI_RESPONDING)
        )
        texts = sorted({planner.query_text(t.subject, _conversation(t)[0]) for t in tickets})
        if not texts:
            return {}
        return dict(zip(texts, get_embeddings().embed_documents(texts), strict=True))
    except Exception:
        logger.warning("batch embedding failed; each ticket embeds its own", exc_info=True)
        return {}


@transaction.atomic
def _mark_responding(ticket_id: int) -> bool:
    """analyzing → ai_responding, unless a person moved the ticket meanwhile."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    if ticket.status != S.ANALYZING:
        return False
    services.ticket_set_status(ticket=ticket, status=S.AI_RESPONDING, actor_kind=AI)
    return True


def _give_up(ticket_id: int, reason: str) -> str:
    return services.ticket_analysis_give_up(ticket_id=ticket_id, reason=reason)


def _record_trace(ticket_id, result, provider, outcome, started, *, error="") -> None:
    """Why the AI did what it did (``support.ai.trace``); on a failure, the steps it got
    to and the error. A trace that cannot be written never fails the analysis."""
    try:
        services.ai_trace_record(
            ticket_id=ticket_id,
            outcome=outcome,
            steps=ai_trace.steps(result, provider=provider, error=error),
            duration_ms=int((time.monotonic() - started) * 1000),
            **ai_trace.summary(result, provider=provider, error=error),
        )
    except Exception:
        logger.exception("AI trace not recorded", extra={"ticket_id": ticket_id})


@transaction.atomic
def _apply(ticket_id: int, result: planner.Plan) -> str:
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    completion = result.completion
    ai = None
    if completion is not None:
        ai = services.AiMetadata(
            model=completion.model,
            confidence=result.confidence,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_usd=cost_usd(completion.model, completion.input_tokens, completion.output_tokens),
            latency_ms=completion.latency_ms,
            article_ids=tuple(result.cited),
            example_ids=tuple(result.training_example_ids),
            reasoning=completion.data.get("reasoning", "")[:2000],
            decision=result.decision,
        )
    if ticket.status != S.AI_RESPONDING:
        # A person acted while the AI was thinking: keep the draft for them, change nothing.
        if result.answer and ai is not None:
            services.message_add(
                ticket=ticket,
                author=None,
                sender_kind=AI,
                is_internal=True,
                body=f"AI draft (not sent): {result.answer}",
                ai=dataclasses.replace(ai, decision="draft"),
            )
        return "superseded"

    triage = result.triage
    services.training_examples_mark_used_by_ai(result.training_example_ids)
    ticket = services.ticket_record_ai_assessment(
        ticket=ticket, confidence=result.confidence, sentiment=triage.sentiment
    )
    # Tags of the list the ticket mentions wait for an agent to accept them.
    ticket = services.ticket_suggest_tags(
        ticket=ticket, tags=services.ticket_tag_suggestions(ticket)
    )
    if ticket.type == "general" and triage.ticket_type != "general":
        services.ticket_update(ticket=ticket, actor=None, actor_kind=AI, type=triage.ticket_type)
    if triage.ticket_type == "bug" and ticket.type == "bug":
        # Triage confirms a bug: whoever listens (GitHub, for one) acts in this transaction.
        events.announce("ticket_bug_confirmed", ticket_id=ticket.pk)
    if triage.priority in ("high", "urgent") and ticket.priority in ("low", "normal"):
        services.ticket_change_priority(
            ticket=ticket, priority=triage.priority, actor=None, actor_kind=AI
        )

    requested = _request_actions(ticket, result)
    _open_follow_up(ticket, result)
    if result.decision == planner.ESCALATE:
        attempt = result.answer or result.error or "No answer was attempted."
        services.ticket_escalate(
            ticket=ticket,
            kind=result.escalation_kind,
            reason=result.escalation_reason,
            topic=triage.topic,
            ai_attempt=attempt[:4000],
            actor_kind=AI,
        )
        if ai is not None:
            # The attempt stays with the team (internal), with what it cost and used.
            body = (
                f"AI attempt (not sent to the customer): {result.answer}"
                if result.answer
                else f"AI escalated without drafting an answer: {result.escalation_reason}"
            )
            services.message_add(
                ticket=ticket, author=None, sender_kind=AI, is_internal=True, body=body, ai=ai
            )
        services.message_add(
            ticket=ticket,
            author=None,
            sender_kind=Message.SenderKind.SYSTEM,
            body="Thanks for your message. A person from our team will take it from here.",
        )
        return "escalated"

    body = result.answer
    question = (completion.data.get("clarifying_question") or "").strip()
    if result.decision == planner.ASK and question:
        body = f"{body}\n\n{question}"
    if requested:
        titles = ", ".join(f"“{run.action.title}”" for run in requested)
        # Whatever the door (email included), the confirmation is on the ticket's page.
        page = f"{settings.SITE_URL}{ticket.get_absolute_url()}"
        body += f"\n\nBefore {titles} goes ahead, please confirm it on this ticket: {page}"
    services.message_add(ticket=ticket, author=None, sender_kind=AI, body=body, ai=ai)
    ai_references_record(result.cited)
    if result.decision == planner.RESOLVE:
        services.ticket_resolve(ticket=ticket, actor=None, actor_kind=AI)
        return "resolved"
    services.ticket_set_status(ticket=ticket, status=S.AWAITING_CUSTOMER, actor_kind=AI)
    return "asked"


def _request_actions(ticket: Ticket, result: planner.Plan) -> list:
    """The actions that change data the AI asked for, as runs awaiting the customer's
    confirmation (``support.services.actions``); one refused (switched off meanwhile, bad
    arguments) is left out with a note for the team, never failing the answer."""
    if result.toolbox is None:
        return []
    runs = []
    for request in result.toolbox.action_requests:
        try:
            with transaction.atomic():
                runs.append(
                    services.action_run_request(
                        ticket=ticket, action=request.action, arguments=request.arguments
                    )
                )
        except DomainError as error:
            services.message_add(
                ticket=ticket,
                author=None,
                sender_kind=Message.SenderKind.SYSTEM,
                is_internal=True,
                body=f"The AI asked for “{request.action.title}”, which was refused: {error}",
            )
    return runs


def _open_follow_up(ticket: Ticket, result: planner.Plan) -> None:
    """The separate request the AI found in the message, as a ticket of its own."""
    follow_up = result.toolbox.follow_up if result.toolbox is not None else None
    if not follow_up:
        return
    services.ticket_open(
        requester=ticket.requester,
        subject=follow_up["subject"],
        description=f"{tools.FOLLOW_UP_MARK}{ticket.reference}: {follow_up['description']}",
        # A chat is one conversation at a time: its follow-up waits on the portal.
        channel=TicketChannel.WEB if ticket.channel == TicketChannel.CHAT else ticket.channel,
    )


def draft_for_people(ticket_id: int, *, provider=None) -> str:
    """The AI's answer as an internal note for the people handling a ticket (asked from
    the agent workspace); the ticket itself is not moved."""
    ticket = Ticket.objects.select_related("requester").get(pk=ticket_id)
    question, conversation, customer_messages = _conversation(ticket)
    started, provider = time.monotonic(), provider or get_provider()
    result = planner.plan(
        question=question,
        subject=ticket.subject,
        conversation=conversation,
        provider=provider,
        scope=Scope.for_user(ticket.requester),
        examples=planner.production_examples(),
        customer_messages=customer_messages,
    )
    completion = result.completion
    if completion is None:
        body = f"AI draft unavailable: {result.error}"
        ai = None
    else:
        body = (
            f"AI draft (confidence {result.confidence:.2f}, would "
            f"{result.decision}): {result.answer or '(no answer)'}"
        )
        ai = services.AiMetadata(
            model=completion.model,
            confidence=result.confidence,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_usd=cost_usd(completion.model, completion.input_tokens, completion.output_tokens),
            latency_ms=completion.latency_ms,
            article_ids=tuple(result.cited),
            example_ids=tuple(result.training_example_ids),
            reasoning=completion.data.get("reasoning", "")[:2000],
            decision="draft",
        )
    with transaction.atomic():
        services.message_add(
            ticket=ticket, author=None, sender_kind=AI, is_internal=True, body=body, ai=ai
        )
        _record_trace(ticket.pk, result, provider, "drafted", started)
    return "drafted"
