"""Demo history: six weeks of a desk's past, so the dashboards have something to show.

The stories come from :mod:`analytics.history` (the rollup benchmark tells the same ones
at a larger scale). Each step is written by the service that writes it in the product,
with the clock set to the step's time (:func:`core.clock.set_clock`): support's services
open the tickets, record the AI's analyses as ``support.ai.pipeline`` does, escalate,
reply, resolve, close and rate; knowledge's services log the searches and count the
articles' views, votes and citations. Analytics writes only its own rollups.

The whole history is written in one transaction under
:func:`core.outbox.writing_history`: it happened in the past, so nothing follows from it
now (no AI analysis queued, no email, no live update, no training harvest). The stories
stop at the start of today and never leave a ticket new or half analysed, so neither the
stuck-ticket sweep nor the AI picks them up later.

Deterministic (fixed seed) and idempotent: history is only written into an empty past,
so nothing is added once any ticket was opened before today.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model

from analytics import history, services
from core.clock import Clock, set_clock
from core.outbox import writing_history
from integrations.llm import cost_usd
from knowledge import services as knowledge
from knowledge.models import Article
from support import services as support
from support.models import Message, Ticket, TicketStatus

#: Tickets and help-center searches per day, on average (enough for the charts' shape;
#: each ticket is a dozen service calls, and the demo loads in ``make run`` and tests).
TICKETS_PER_DAY = 6
SEARCHES_PER_DAY = 8

AI = Message.SenderKind.AI
S = TicketStatus


def load_history(*, days: int = 42, seed: int = 7, today: dt.date | None = None) -> int:
    """Write ``days`` days of history before ``today`` and roll them up; returns how many
    tickets were written (0 when the past is not empty or nobody could take part)."""
    today = today or services.local_today()
    start_of_today, _ = services.day_bounds(today)
    if Ticket.objects.filter(created_at__lt=start_of_today).exists():
        return 0
    User = get_user_model()
    customers = list(
        User.objects.filter(
            is_staff=False, is_active=True, customer_profile__isnull=False
        ).order_by("pk")
    )
    agents = list(
        User.objects.filter(is_staff=True, is_superuser=False, is_active=True).order_by("pk")
    )
    if not customers or not agents:
        return 0
    articles = list(Article.objects.filter(status=Article.Status.PUBLISHED).order_by("pk"))
    first = today - dt.timedelta(days=days)
    desk = history.Desk(
        start=first,
        days=days,
        tickets=TICKETS_PER_DAY * days,
        searches=SEARCHES_PER_DAY * days,
        customers=len(customers),
        agents=len(agents),
        articles=len(articles),
        time_zone=settings.ANALYTICS_TIME_ZONE,
        end=start_of_today,
        seed=seed,
        models=history.DEMO_MODELS,
    )
    with writing_history(), set_clock(start_of_today) as clock:
        count = _Writer(clock, customers, agents, articles).write(history.desk_history(desk))
    for n in range(days + 1):  # and today, as far as it went
        services.rollup_day(first + dt.timedelta(days=n))
    return count


def load_demo() -> None:
    """Analytics' part of ``load_demo_data`` (core): six weeks of past tickets for the
    managers' dashboards, rolled up."""
    load_history()


class _Result(NamedTuple):
    """A search result as ``knowledge.services.search_record`` reads one."""

    article: Article
    similarity: float


class _Writer:
    """Writes stories through the services, every step at its own time. The steps of all
    tickets are written in time order, as they would have happened, so rows are numbered
    in time order too."""

    def __init__(self, clock: Clock, customers, agents, articles):
        self.clock = clock
        self.customers, self.agents, self.articles = customers, agents, articles
        self.staff = {agent.pk: agent for agent in agents}

    def write(self, days) -> int:
        pending: list[tuple[dt.datetime, int, int, history.TicketStory]] = []
        tickets: dict[int, Ticket] = {}
        count = 0
        for day in days:
            start, _ = services.day_bounds(day.day)
            self._until(start, pending, tickets)
            for story in day.tickets:
                heapq.heappush(pending, (story.opened_at, story.number, 0, story))
                count += 1
            for search in day.searches:
                self._until(search.at, pending, tickets)
                self._search(search)
            for counters in day.articles:
                knowledge.metric_increment(
                    [self.articles[counters.article].pk],
                    day=counters.day,
                    views=counters.views,
                    helpful_votes=counters.helpful_votes,
                    not_helpful_votes=counters.not_helpful_votes,
                )
        self._until(None, pending, tickets)
        return count

    def _until(self, moment, pending, tickets) -> None:
        """Write every pending step before ``moment`` (all of them with None)."""
        while pending and (moment is None or pending[0][0] < moment):
            _, number, index, story = heapq.heappop(pending)
            tickets[number] = self._step(story, story.steps[index], tickets.get(number))
            if index + 1 < len(story.steps):
                following = story.steps[index + 1]
                heapq.heappush(pending, (following.at, number, index + 1, story))
            else:
                del tickets[number]

    def _step(self, story: history.TicketStory, step: history.Step, ticket) -> Ticket:
        self.clock.move_to(step.at)
        customer = self.customers[story.customer]
        if step.kind == history.OPEN:
            return support.ticket_open(
                requester=customer,
                subject=story.subject,
                description=story.description,
                type=story.type,
                priority=story.priority,
                channel=story.channel,
            )
        if step.kind == history.AI:
            return self._ai(ticket, step)
        if step.kind == history.CUSTOMER_REPLY:
            return support.message_add(ticket=ticket, author=customer, body=step.body).ticket
        if step.kind == history.RATE:
            return support.ticket_rate(
                ticket=ticket, actor=customer, rating=step.rating, comment=step.comment
            )
        agent = self._agent_on(ticket, story, take=step.kind == history.AGENT_REPLY)
        if step.kind == history.AGENT_REPLY:
            return support.message_add(ticket=ticket, author=agent, body=step.body).ticket
        if step.kind == history.ESCALATE:
            handover = step.handover
            support.ticket_escalate(
                ticket=ticket,
                kind=handover.kind,
                reason=handover.reason,
                topic=handover.topic,
                actor=agent,
            )
            return ticket
        if step.kind == history.RESOLVE:
            return support.ticket_resolve(ticket=ticket, actor=agent)
        if step.kind == history.CLOSE:
            return support.ticket_close(ticket=ticket, actor=agent)
        raise ValueError(f"unknown step {step.kind}")

    def _agent_on(self, ticket: Ticket, story: history.TicketStory, *, take: bool):
        """Whoever has the ticket, else the story's agent, who takes it first when about
        to answer (the agents' queue: take, then reply)."""
        assignee_id = Ticket.objects.filter(pk=ticket.pk).values_list("assignee", flat=True)[0]
        if assignee_id is not None:
            if assignee_id not in self.staff:
                self.staff[assignee_id] = get_user_model().objects.get(pk=assignee_id)
            return self.staff[assignee_id]
        agent = self.agents[story.agent % len(self.agents)]
        if take:
            support.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        return agent

    def _ai(self, ticket: Ticket, step: history.Step) -> Ticket:
        """The AI agent's turn, with the calls ``support.ai.pipeline`` makes."""
        analysis = step.analysis
        self.clock.move_to(step.started)
        support.ticket_set_status(ticket=ticket, status=S.ANALYZING, actor_kind=AI)
        self.clock.move_to(step.responding)
        support.ticket_set_status(ticket=ticket, status=S.AI_RESPONDING, actor_kind=AI)
        self.clock.move_to(step.at)
        cited = tuple(self.articles[i].pk for i in analysis.cited)
        ai = support.AiMetadata(
            model=analysis.model,
            confidence=analysis.confidence,
            input_tokens=analysis.input_tokens,
            output_tokens=analysis.output_tokens,
            cost_usd=cost_usd(analysis.model, analysis.input_tokens, analysis.output_tokens),
            latency_ms=analysis.latency_ms,
            article_ids=cited,
            reasoning=analysis.reasoning,
            decision=analysis.decision,
        )
        ticket = support.ticket_record_ai_assessment(
            ticket=ticket, confidence=analysis.confidence, sentiment=analysis.sentiment
        )
        if analysis.decision == history.ESCALATED:
            handover = analysis.handover
            support.ticket_escalate(
                ticket=ticket,
                kind=handover.kind,
                reason=handover.reason,
                topic=handover.topic,
                ai_attempt=analysis.answer,
                actor_kind=AI,
            )
            support.message_add(
                ticket=ticket,
                author=None,
                sender_kind=AI,
                is_internal=True,
                body=analysis.message,
                ai=ai,
            )
            support.message_add(
                ticket=ticket,
                author=None,
                sender_kind=Message.SenderKind.SYSTEM,
                body=history.HANDOVER_NOTICE,
            )
            return ticket
        support.message_add(
            ticket=ticket, author=None, sender_kind=AI, body=analysis.message, ai=ai
        )
        knowledge.ai_references_record(cited)
        if analysis.decision == history.RESOLVED:
            return support.ticket_resolve(ticket=ticket, actor=None, actor_kind=AI)
        return support.ticket_set_status(ticket=ticket, status=S.AWAITING_CUSTOMER, actor_kind=AI)

    def _search(self, search: history.Search) -> None:
        self.clock.move_to(search.at)
        knowledge.search_record(
            query=search.query,
            results=[_Result(self.articles[a], similarity) for a, similarity in search.results],
            source=search.source,
            user=None if search.customer is None else self.customers[search.customer],
        )
