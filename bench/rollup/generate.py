"""A year of helpdesk activity for the rollup benchmark, written in bulk.

The stories are :mod:`analytics.history`'s (the demo tells the same ones through the
services). :class:`BulkWriter` writes them with COPY, row for row what the services
would have written: the ticket with its final fields, every message (the AI's with model,
tokens, cost, latency and citations), every audit event in the services' order
(``created``; ``status_changed`` new → analyzing → ai_responding → …; ``message_added``
for every message but the opening one; ``assigned``, ``escalated``, ``resolved``,
``reopened``, ``closed``, ``rated``), the escalations, the reference sequence, the
training examples harvested from ratings of 4 and 5, the search logs and the articles'
daily counters (impressions per search result, AI citations per answer, on the local
day of ``TIME_ZONE`` as ``knowledge.services.metric_increment`` counts them). Rows are
numbered in time order, as a live desk numbers them. ``tests/analytics`` checks that a
story written here and through the services leaves the same events.

Import after ``django.setup()``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from analytics import history
from bench.common import log
from bench.rollup import BIG_TABLES, DAYS, SEED
from integrations.llm import cost_usd

if TYPE_CHECKING:
    from support import sla

#: Incident days (positions in the year): three times the usual volume.
INCIDENT_DAYS = (47, 173, 288)

ORGANIZATIONS = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Foods",
    "Hooli",
    "Pied Piper",
    "Vandelay Imports",
    "Soylent Labs",
    "Tyrell Systems",
    "Cyberdyne Retail",
    "Wonka Sweets",
    "Oscorp Energy",
    "Massive Dynamic",
    "Dunder Paper",
    "Monarch Travel",
    "Gringotts Finance",
    "Aperture Science",
    "Black Mesa",
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emil", "Fatima", "Gus", "Hana", "Ivo", "June"]
LAST_NAMES = ["Lopez", "Martin", "Nguyen", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt"]


# ======================================================================================
# Who the stories are about
# ======================================================================================


@dataclass(frozen=True)
class Customer:
    id: int
    organization_id: int | None
    sla_hours: dict[str, int]  # by priority, from the organization's SLA policy
    # by priority: the policy's business hours, targets and at-risk window
    sla_clocks: dict[str, sla.Clock] = field(default_factory=dict)


@dataclass(frozen=True)
class Agent:
    id: int
    username: str


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    round_robin: bool


@dataclass
class People:
    """The rows the stories' positions stand for, and where escalations go
    (``route``: ``support.services.team_for`` of each ticket type and topic)."""

    customers: list[Customer]
    agents: list[Agent]
    articles: list[int]
    route: dict[str, Team]


def people_from_database() -> People:
    """The customers, agents (non-superuser staff), published articles and routes of the
    database, in the order the demo uses them (by id)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from knowledge.models import Article
    from support import services, sla
    from support.models import CustomerProfile, TicketPriority, TicketType

    profiles = CustomerProfile.objects.select_related("organization__sla_policy", "user")
    window = dt.timedelta(hours=settings.HELPDESK_SLA_AT_RISK_HOURS)
    clocks = {}  # by policy id: as the services compute them, once per policy

    def clocks_for(organization) -> dict[str, sla.Clock]:
        policy = sla.policy_for_organization(organization)
        key = policy.pk if policy else None
        if key not in clocks:
            hours = sla.calendar_for_policy(policy)
            clocks[key] = {
                priority: sla.Clock(hours, sla.targets_for(policy, priority), window)
                for priority in TicketPriority.values
            }
        return clocks[key]

    customers = [
        Customer(
            id=p.user_id,
            organization_id=p.organization_id,
            sla_hours={
                priority: services.sla_hours(p.organization, priority)
                for priority in TicketPriority.values
            },
            sla_clocks=clocks_for(p.organization),
        )
        for p in profiles.filter(user__is_active=True, user__is_staff=False).order_by("user_id")
    ]
    agents = [
        Agent(id=u.pk, username=u.get_username())
        for u in get_user_model()
        .objects.filter(is_staff=True, is_superuser=False, is_active=True)
        .order_by("pk")
    ]
    route = {}
    for key in [*TicketType.values, "billing", "human", "security"]:
        team = services.team_for(key)
        if team is not None:
            route[key] = Team(id=team.pk, name=team.name, round_robin=team.round_robin)
    articles = list(
        Article.objects.filter(status=Article.Status.PUBLISHED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return People(customers=customers, agents=agents, articles=articles, route=route)


# ======================================================================================
# The bulk writer
# ======================================================================================

TICKET_COLUMNS = (
    "id, reference, subject, description, type, status, priority, channel, requester_id,"
    " organization_id, assignee_id, team_id, ai_confidence, sentiment, satisfaction_rating,"
    " satisfaction_comment, reopened_count, created_at, updated_at, first_response_at,"
    " resolved_at, closed_at, rated_at, sla_due_at, status_changed_at,"
    " first_response_due_at, next_response_due_at, resolution_due_at, sla_business_seconds,"
    " sla_resumed_at, sla_paused_at, sla_at_risk_at, sla_breached_at, custom_fields,"
    " suggested_tags"
)
MESSAGE_COLUMNS = (
    "id, ticket_id, sender_kind, author_id, body, is_internal, created_at, ai_model,"
    " ai_confidence, input_tokens, output_tokens, cost_usd, latency_ms, article_ids,"
    " example_ids, ai_reasoning, ai_decision, email_message_id, delivery_status,"
    " delivery_events"
)
EVENT_COLUMNS = (
    "id, ticket_id, kind, actor_id, actor_kind, field, old_value, new_value, metadata,"
    " is_internal, created_at"
)
ESCALATION_COLUMNS = (
    "id, ticket_id, kind, reason, topic, ai_attempt, team_id, assignee_id, created_by_id,"
    " is_resolved, resolved_at, created_at"
)
SEARCH_COLUMNS = (
    "id, query, source, result_count, best_similarity, top_article_id, user_id, created_at"
)
TRAINING_COLUMNS = (
    "id, ticket_id, source_message_id, ticket_type, question, answer, anonymized_question,"
    " anonymized_answer, pii_found, pii_remaining, outcome, author_kind, confidence,"
    " satisfaction_rating, quality_score, status, reviewed_by_id, reviewed_at, review_note,"
    " embedding, embedding_model, used_in_training, exported_at, times_used_by_ai,"
    " created_at, updated_at"
)
COLUMNS = {
    "support_ticket": TICKET_COLUMNS,
    "support_escalation": ESCALATION_COLUMNS,
    "support_message": MESSAGE_COLUMNS,
    "support_ticketevent": EVENT_COLUMNS,
    "knowledge_searchlog": SEARCH_COLUMNS,
    "support_trainingexample": TRAINING_COLUMNS,
}
#: Rows numbered and ready are copied in batches of about this many.
COPY_BATCH = 100_000
#: Tables whose rows the writer numbers (the ids of tickets when opened, of the others in
#: time order when written).
WRITTEN = (
    "support_ticket",
    "support_escalation",
    "support_message",
    "support_ticketevent",
    "knowledge_searchlog",
    "support_trainingexample",
)
# Positions in the row lists (the id first, filled when the row is written).
M_AT, E_AT, X_AT, S_AT, T_AT = 6, 10, 11, 7, 24


class _Bucket:
    """The rows of one UTC day, written once no later story can add to it."""

    __slots__ = ("escalations", "events", "messages", "searches", "tickets", "training")

    def __init__(self):
        self.tickets, self.escalations, self.messages = [], [], []
        self.events, self.searches, self.training = [], [], []


class _Ticket:
    """The ticket as the services leave it after each step."""

    __slots__ = (
        "ai_confidence",
        "assignee",
        "clock",
        "closed_at",
        "comment",
        "created_at",
        "escalations",
        "first_response_at",
        "first_response_due_at",
        "id",
        "last_reply",
        "next_response_due_at",
        "rated_at",
        "rating",
        "reopened",
        "resolution_due_at",
        "resolved_at",
        "sentiment",
        "sla_at_risk_at",
        "sla_breached_at",
        "sla_business_seconds",
        "sla_due_at",
        "sla_paused_at",
        "sla_resumed_at",
        "status",
        "status_changed_at",
        "team_id",
    )

    def __init__(self, ticket_id: int):
        self.id = ticket_id
        self.status = "new"
        self.status_changed_at = None
        self.clock: sla.Clock | None = None
        self.created_at = None
        self.first_response_due_at = self.next_response_due_at = self.resolution_due_at = None
        self.sla_at_risk_at = self.sla_breached_at = self.sla_due_at = None
        self.sla_paused_at = self.sla_resumed_at = None
        self.sla_business_seconds = 0
        self.assignee: Agent | None = None
        self.team_id = None
        self.ai_confidence = self.sentiment = None
        self.first_response_at = self.resolved_at = self.closed_at = self.rated_at = None
        self.rating, self.comment, self.reopened = None, "", 0
        self.escalations: list[list] = []
        self.last_reply: list | None = None  # the latest public reply (training examples)


class BulkWriter:
    """Writes :func:`analytics.history.desk_history` with COPY, in time order.

    An escalation goes to the team of its topic or the ticket's type; a round-robin team
    assigns the story's agent (the benchmark's teams all are), otherwise the agent takes
    the ticket before answering, as in the services. Rows get ids after those already
    there; the id sequences follow.
    """

    def __init__(
        self, people: People, *, time_zone: str, reviewers: Iterable[int] = (), seed: int = SEED
    ):
        self.people = people
        self.tz = ZoneInfo(time_zone)
        self.local_tz = timezone.get_current_timezone()
        self.rng = random.Random(seed)  # noqa: S311 (reviews of training examples)
        self.buckets: dict[int, _Bucket] = {}
        self.ready: dict[str, list[list]] = {table: [] for table in COLUMNS}
        self.metrics: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0] * 5)
        self.sequences: dict[dt.date, int] = {}
        self.ids: dict[str, int] = {}
        self.order = 0
        self.counts: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.end: dt.datetime | None = None
        self.reviewers = list(reviewers)  # who reviews training examples
        self.steps: dict[str, float] = defaultdict(float)
        with connection.cursor() as cursor:
            for table in WRITTEN:
                cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
                self.ids[table] = cursor.fetchone()[0]
            cursor.execute("SELECT day, last_number FROM support_ticketsequence")
            self.sequences.update(cursor.fetchall())

    # ---------------------------------------------------------------------------------

    def write(self, days: Iterable[history.Day], *, end: dt.datetime) -> dict:
        """Write the days of a history (``desk_history``) that ends at ``end``; returns
        rows per table and tickets per path."""
        self.end = end
        for day in days:
            midnight = dt.datetime.combine(day.day, dt.time.min, tzinfo=self.tz)
            self._flush(before=midnight.astimezone(dt.UTC).date().toordinal())
            started = time.perf_counter()
            for story in day.tickets:
                self._ticket(story)
            for search in day.searches:
                self._search(search)
            for counters in day.articles:
                row = self.metrics[(self.people.articles[counters.article], counters.day)]
                row[0] += counters.views
                row[3] += counters.helpful_votes
                row[4] += counters.not_helpful_votes
            self.steps["rows"] += time.perf_counter() - started
        self._flush(before=None)
        self._write_metrics()
        self._write_sequences()
        with connection.cursor() as cursor:
            for table in (*WRITTEN, "knowledge_knowledgebasemetric"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" coalesce((SELECT max(id) FROM {table}), 1))"
                )
        return {"rows": dict(self.counts), "paths": dict(self.paths.most_common())}

    def _local_day(self, at: dt.datetime) -> dt.date:
        """``timezone.localdate(at)``: the day of ``TIME_ZONE`` references and article
        counters are kept by (asked of the zone once, not per row)."""
        return at.astimezone(self.local_tz).date()

    def _bucket(self, at: dt.datetime) -> _Bucket:
        key = at.date().toordinal()  # ``at`` is in UTC
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket()
        return bucket

    def _next(self) -> int:
        self.order += 1
        return self.order

    # ---------------------------------------------------------------------------------
    # One ticket, step by step, as the services would write it
    # ---------------------------------------------------------------------------------

    def _ticket(self, story: history.TicketStory) -> None:
        people = self.people
        customer = people.customers[story.customer]
        self.ids["support_ticket"] += 1
        t = _Ticket(self.ids["support_ticket"])
        opened = story.opened_at
        local_day = self._local_day(opened)
        number = self.sequences.get(local_day, 0) + 1
        self.sequences[local_day] = number
        reference = f"HD-{local_day:%Y%m%d}-{number:04d}"
        agent = people.agents[story.agent % len(people.agents)]
        self.paths[story.path] += 1
        t.clock = customer.sla_clocks.get(story.priority)
        for step in story.steps:
            kind = step.kind
            if kind == history.OPEN:
                t.created_at = step.at
                if t.clock is not None:
                    t.clock.start(t, step.at)
                self._message(t, step.at, "customer", customer.id, story.description, event=False)
                self._event(
                    t,
                    step.at,
                    "created",
                    customer.id,
                    "customer",
                    new=reference,
                    metadata={
                        "channel": story.channel,
                        "type": story.type,
                        "priority": story.priority,
                    },
                )
            elif kind == history.AI:
                self._ai(t, story, step, agent)
            elif kind == history.CUSTOMER_REPLY:
                if t.status == "resolved":  # reopened: back to its people, or new
                    target = "escalated" if t.assignee else "new"
                    self._status(t, step.at, target, customer.id, "customer")
                    self._event(
                        t,
                        step.at,
                        "reopened",
                        customer.id,
                        "customer",
                        metadata={"reason": "customer replied"},
                    )
                    t.resolved_at = t.closed_at = t.rated_at = t.rating = None
                    t.comment, t.reopened = "", t.reopened + 1
                elif t.status == "awaiting_customer":
                    human_owned = t.assignee is not None or any(not e[9] for e in t.escalations)
                    target = "escalated" if human_owned else "new"
                    self._status(t, step.at, target, customer.id, "customer")
                self._message(t, step.at, "customer", customer.id, step.body)
            elif kind == history.AGENT_REPLY:
                actor = t.assignee or agent
                if t.assignee is None:  # taken from the queue first
                    self._assign(t, step.at, actor, actor_id=actor.id, actor_kind="agent")
                message = self._message(t, step.at, "agent", actor.id, step.body)
                t.first_response_at = t.first_response_at or step.at
                t.last_reply = message
                if t.status != "awaiting_customer":
                    self._status(t, step.at, "awaiting_customer", actor.id, "agent")
            elif kind == history.ESCALATE:
                actor = t.assignee or agent
                self._escalate(t, step.at, step.handover, story, actor.id, "agent", "")
            elif kind in (history.RESOLVE, history.CLOSE):
                actor = t.assignee or agent
                self._settle(t, step.at, kind, actor.id, "agent")
            elif kind == history.RATE:
                t.rating, t.comment, t.rated_at = step.rating, step.comment, step.at
                self._event(
                    t,
                    step.at,
                    "rated",
                    customer.id,
                    "customer",
                    field="satisfaction_rating",
                    new=str(step.rating),
                )
                if step.rating >= 4 and t.last_reply is not None:
                    self._training_example(t, story, step.at)
        last = story.steps[-1].at
        self._bucket(opened).tickets.append(
            [
                t.id,
                reference,
                story.subject,
                story.description,
                story.type,
                t.status,
                story.priority,
                story.channel,
                customer.id,
                customer.organization_id,
                t.assignee.id if t.assignee else None,
                t.team_id,
                t.ai_confidence,
                t.sentiment,
                t.rating,
                t.comment,
                t.reopened,
                opened,
                last,
                t.first_response_at,
                t.resolved_at,
                t.closed_at,
                t.rated_at,
                t.sla_due_at
                if t.clock is not None
                else opened + dt.timedelta(hours=customer.sla_hours[story.priority]),
                t.status_changed_at or opened,
                t.first_response_due_at,
                t.next_response_due_at,
                t.resolution_due_at,
                t.sla_business_seconds,
                t.sla_resumed_at,
                t.sla_paused_at,
                t.sla_at_risk_at,
                t.sla_breached_at,
                "{}",  # no custom field values, no suggested tags (as ticket_open writes)
                [],
            ]
        )

    def _ai(self, t: _Ticket, story, step: history.Step, agent: Agent) -> None:
        """``support.ai.pipeline``: analyzing, ai_responding, then the routed answer."""
        analysis = step.analysis
        self._status(t, step.started, "analyzing", None, "ai")
        self._status(t, step.responding, "ai_responding", None, "ai")
        at = step.at
        t.ai_confidence, t.sentiment = analysis.confidence, analysis.sentiment
        cited = [self.people.articles[i] for i in analysis.cited]
        ai = (
            analysis.model,
            analysis.confidence,
            analysis.input_tokens,
            analysis.output_tokens,
            cost_usd(analysis.model, analysis.input_tokens, analysis.output_tokens),
            analysis.latency_ms,
            cited,
            analysis.reasoning,
            analysis.decision,
        )
        if analysis.decision == history.ESCALATED:
            self._escalate(t, at, analysis.handover, story, None, "ai", analysis.answer, agent)
            self._message(t, at, "ai", None, analysis.message, internal=True, ai=ai)
            self._message(t, at, "system", None, history.HANDOVER_NOTICE)
            return
        message = self._message(t, at, "ai", None, analysis.message, ai=ai)
        t.first_response_at = t.first_response_at or at
        t.last_reply = message
        day = self._local_day(at)
        for article in set(cited):
            self.metrics[(article, day)][2] += 1
        if analysis.decision == history.RESOLVED:
            self._settle(t, at, history.RESOLVE, None, "ai")
        else:
            self._status(t, at, "awaiting_customer", None, "ai")

    def _status(self, t: _Ticket, at, new: str, actor_id, actor_kind: str, metadata=None):
        old, t.status = t.status, new
        t.status_changed_at = at
        if t.clock is not None:
            t.clock.status_changed(t, old, new, at)
        self._event(t, at, "status_changed", actor_id, actor_kind, "status", old, new, metadata)

    def _assign(self, t: _Ticket, at, agent: Agent, *, actor_id, actor_kind: str) -> None:
        t.assignee = agent
        self._event(
            t,
            at,
            "assigned",
            actor_id,
            actor_kind,
            "assignee",
            "",
            agent.username,
            {"old_id": None, "new_id": agent.id},
        )

    def _escalate(self, t, at, handover, story, actor_id, actor_kind, attempt, agent=None):
        """``ticket_escalate``: routed by topic or type; a round-robin team assigns the
        story's agent when nobody has the ticket."""
        team = self.people.route.get(handover.topic or story.type)
        assignee = t.assignee
        if assignee is None and agent is not None and team is not None and team.round_robin:
            assignee = agent
        escalation = [
            None,
            t.id,
            handover.kind,
            handover.reason,
            handover.topic,
            attempt,
            team.id if team else None,
            assignee.id if assignee else None,
            actor_id,
            False,
            None,
            at,
            self._next(),
        ]
        self._bucket(at).escalations.append(escalation)
        t.escalations.append(escalation)
        self._status(t, at, "escalated", actor_id, actor_kind, {"escalation_kind": handover.kind})
        if assignee is not None and t.assignee is None:
            self._assign(t, at, assignee, actor_id=actor_id, actor_kind=actor_kind)
        t.team_id = team.id if team else t.team_id
        self._event(
            t, at, "escalated", actor_id, actor_kind, new=team.name if team else "",
            metadata=("escalation", escalation),
        )  # fmt: skip

    def _settle(self, t: _Ticket, at, kind: str, actor_id, actor_kind: str) -> None:
        status = "resolved" if kind == history.RESOLVE else "closed"
        self._status(t, at, status, actor_id, actor_kind)
        if status == "resolved":
            t.resolved_at = at
        else:
            t.closed_at = at
        for escalation in t.escalations:
            if not escalation[9]:
                escalation[9], escalation[10] = True, at
        self._event(t, at, status, actor_id, actor_kind)

    def _message(self, t, at, sender, author_id, body, *, internal=False, ai=None, event=True):
        row = [None, t.id, sender, author_id, body, internal, at]
        if ai is None:
            row += ["", None, None, None, None, None, [], [], "", ""]
        else:
            model, confidence, tin, tout, cost, latency, cited, reasoning, decision = ai
            row += [model, confidence, tin, tout, cost, latency, cited, [], reasoning, decision]
        row += ["", "", "[]"]  # not mail: no Message-ID, no delivery (as message_add writes)
        row.append(self._next())
        self._bucket(at).messages.append(row)
        if event and t.clock is not None:  # as message_add does (not the description)
            t.clock.message_added(
                t,
                at,
                public_reply=not internal and sender in ("agent", "ai"),
                from_customer=not internal and sender == "customer",
            )
        if event:
            actor_kind = sender if sender != "system" else "system"
            self._event(
                t, at, "message_added", author_id, actor_kind, metadata=("message", row),
                internal=internal,
            )  # fmt: skip
        return row

    def _event(
        self,
        t,
        at,
        kind,
        actor_id,
        actor_kind,
        field="",
        old="",
        new="",
        metadata=None,
        internal=False,
    ):
        self._bucket(at).events.append(
            [
                None,
                t.id,
                kind,
                actor_id,
                actor_kind,
                field,
                str(old or "")[:200],
                str(new or "")[:200],
                metadata,
                internal,
                at,
                self._next(),
            ]
        )

    def _training_example(self, t: _Ticket, story, rated_at) -> None:
        """``training_example_harvest`` after a rating of 4 or 5, reviewed later on."""
        reply = t.last_reply
        if t.escalations:
            outcome = "escalated"
        elif t.reopened:
            outcome = "failed"
        else:
            outcome = "successful"
        question = f"{story.subject}\n\n{story.description}"
        created = rated_at + dt.timedelta(seconds=5)
        old = self.end is not None and created < self.end - dt.timedelta(days=14)
        u_review, u_quality = self.rng.random(), self.rng.random()
        reviewed = old and u_review < 0.85
        status = "pending" if not reviewed else ("approved" if u_review < 0.7 else "rejected")
        reviewed_at = created + dt.timedelta(days=1 + 9 * u_quality) if reviewed else None
        reviewer = None
        if reviewed and self.reviewers:
            reviewer = self.reviewers[int(u_quality * len(self.reviewers))]
        self._bucket(created).training.append(
            [
                None,
                t.id,
                reply,  # its id when written
                story.type,
                question,
                reply[4],
                question,
                reply[4],
                [],
                [],
                outcome,
                "ai" if reply[2] == "ai" else "human",
                reply[8],
                t.rating,
                3 + int(3 * u_quality) if status == "approved" else None,
                status,
                reviewer,
                reviewed_at,
                "Too specific to one customer." if status == "rejected" else "",
                None,
                "",
                False,
                None,
                int(20 * u_quality**3) if status == "approved" else 0,
                created,
                reviewed_at or created,
                self._next(),
            ]
        )

    def _search(self, search: history.Search) -> None:
        """``knowledge.services.search_record``: the log row, an impression per result."""
        articles = self.people.articles
        top = search.results[0] if search.results else None
        customer = self.people.customers[search.customer] if search.customer is not None else None
        self._bucket(search.at).searches.append(
            [
                None,
                search.query,
                search.source,
                len(search.results),
                top[1] if top else None,
                articles[top[0]] if top else None,
                customer.id if customer else None,
                search.at,
                self._next(),
            ]
        )
        day = self._local_day(search.at)
        for article in {articles[a] for a, _ in search.results}:
            self.metrics[(article, day)][1] += 1

    # ---------------------------------------------------------------------------------
    # Writing the rows
    # ---------------------------------------------------------------------------------

    def _flush(self, *, before: int | None) -> None:
        for key in sorted(self.buckets):
            if before is not None and key >= before:
                break
            self._write_bucket(self.buckets.pop(key))
        if before is None:
            self._copy_ready()

    def _write_bucket(self, bucket: _Bucket) -> None:
        started = time.perf_counter()
        # Numbered in time order (the order of the service calls within an instant);
        # what events refer to (messages, escalations) first.
        bucket.tickets.sort(key=itemgetter(17, 0))
        for table, rows, at in (
            ("support_escalation", bucket.escalations, X_AT),
            ("support_message", bucket.messages, M_AT),
            ("support_ticketevent", bucket.events, E_AT),
            ("knowledge_searchlog", bucket.searches, S_AT),
            ("support_trainingexample", bucket.training, T_AT),
        ):
            rows.sort(key=itemgetter(at, -1))
            first = self.ids[table]
            for number, row in enumerate(rows, start=first + 1):
                row[0] = number
                del row[-1]
            self.ids[table] = first + len(rows)
        for row in bucket.events:
            metadata = row[8]
            if metadata is None:
                row[8] = "{}"
            elif type(metadata) is tuple:
                referred = metadata[1]
                if metadata[0] == "message":
                    row[8] = f'{{"message_id": {referred[0]}, "sender_kind": "{referred[2]}"}}'
                else:
                    row[8] = json.dumps(
                        {
                            "escalation_id": referred[0],
                            "kind": referred[2],
                            "reason": referred[3][:500],
                            "team_id": referred[6],
                            "assignee_id": referred[7],
                        }
                    )
            else:
                row[8] = json.dumps(metadata)
        for row in bucket.training:
            row[2] = row[2][0]
        for table, rows in (
            ("support_ticket", bucket.tickets),
            ("support_escalation", bucket.escalations),
            ("support_message", bucket.messages),
            ("support_ticketevent", bucket.events),
            ("knowledge_searchlog", bucket.searches),
            ("support_trainingexample", bucket.training),
        ):
            self.ready[table].extend(rows)
        self.steps["rows"] += time.perf_counter() - started
        if sum(len(rows) for rows in self.ready.values()) >= COPY_BATCH:
            self._copy_ready()

    def _copy_ready(self) -> None:
        started = time.perf_counter()
        for table, rows in self.ready.items():
            self._copy(table, COLUMNS[table], rows)
            rows.clear()
        self.steps["COPY"] += time.perf_counter() - started

    def _copy(self, table: str, columns: str, rows) -> None:
        if not rows:
            return
        connection.ensure_connection()
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        self.counts[table] += len(rows)

    def _write_metrics(self) -> None:
        """Add the counters to the articles' days (``metric_increment``'s upsert, in bulk)."""
        rows = [
            [article, day, *counters]
            for (article, day), counters in sorted(self.metrics.items(), key=lambda i: i[0][::-1])
            if any(counters)
        ]
        columns = "views, search_impressions, ai_references, helpful_votes, not_helpful_votes"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE bench_metrics AS SELECT article_id, day, {columns}"  # noqa: S608
                " FROM knowledge_knowledgebasemetric WITH NO DATA"
            )
        self._copy("bench_metrics", f"article_id, day, {columns}", rows)
        self.counts["knowledge_knowledgebasemetric"] = self.counts.pop("bench_metrics", 0)
        added = ", ".join(
            f"{name} = knowledge_knowledgebasemetric.{name} + EXCLUDED.{name}"
            for name in columns.split(", ")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO knowledge_knowledgebasemetric (article_id, day, {columns})
                    SELECT article_id, day, {columns} FROM bench_metrics ORDER BY day, article_id
                    ON CONFLICT (article_id, day) DO UPDATE SET {added}"""  # noqa: S608
            )
            cursor.execute("DROP TABLE bench_metrics")
            cursor.execute(
                """UPDATE knowledge_article a SET view_count = s.views,
                          helpful_count = s.helpful, not_helpful_count = s.not_helpful
                   FROM (SELECT article_id, sum(views) AS views,
                                sum(helpful_votes) AS helpful,
                                sum(not_helpful_votes) AS not_helpful
                         FROM knowledge_knowledgebasemetric GROUP BY article_id) s
                   WHERE s.article_id = a.id"""
            )

    def _write_sequences(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM support_ticketsequence")
        self._copy("support_ticketsequence", "day, last_number", sorted(self.sequences.items()))


# ======================================================================================
# The benchmark's database: reference data, then the stories
# ======================================================================================


class Generator:
    """Migrates the benchmark's database, adds its people, teams and articles, and
    writes a year of stories in bulk (indexes and foreign keys dropped meanwhile)."""

    def __init__(self, args, tz: str):
        self.args = args
        self.tz = tz
        self.end_day: dt.date = args.end
        self.start_day = self.end_day - dt.timedelta(days=DAYS)
        self.steps: dict[str, float] = {}

    def run(self) -> dict:
        started = time.perf_counter()
        log("migrating …")
        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        self.steps["migrate"] = round(time.perf_counter() - t, 1)
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute("SET synchronous_commit = off")
        log("reference data (users, organizations, teams, articles) …")
        t = time.perf_counter()
        reviewers = self.reference_data()
        self.steps["reference data"] = round(time.perf_counter() - t, 1)
        dropped = self.drop_for_load()
        log(f"stories of {self.args.tickets:,} tickets over {DAYS} days, written with COPY …")
        t = time.perf_counter()
        writer = BulkWriter(people_from_database(), time_zone=self.tz, reviewers=reviewers)
        desk = history.Desk(
            start=self.start_day,
            days=DAYS,
            tickets=self.args.tickets,
            searches=self.args.searches,
            customers=self.args.customers,
            agents=self.args.agents,
            articles=self.args.articles,
            time_zone=self.tz,
            seed=SEED,
            models=history.BENCH_MODELS,
            incident_days=INCIDENT_DAYS,
        )
        written = writer.write(history.desk_history(desk), end=desk.end)
        self.steps["stories (generated, to rows, COPY)"] = round(time.perf_counter() - t, 1)
        for label, seconds in writer.steps.items():
            self.steps[f"  of which {label}"] = round(seconds, 1)
        for table, rows in written["rows"].items():
            log(f"  {table:<34}{rows:>12,} rows")
        self.restore_after_load(dropped)
        log("VACUUM (ANALYZE) …")
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("RESET ALL")
            cursor.execute("VACUUM (ANALYZE)")
        self.steps["vacuum analyze"] = round(time.perf_counter() - t, 1)
        total = round(time.perf_counter() - started, 1)
        log(f"generated in {total:.0f} s")
        return {"generation_s": total, "steps_s": self.steps, "paths": written["paths"]}

    def reference_data(self) -> list[int]:
        """Organizations, customers, agents, a manager and an admin, round-robin teams
        and published articles; returns who reviews training examples."""
        from django.contrib.auth.models import Group, User

        from knowledge.models import Article, Category
        from support.models import CustomerProfile, Organization, SlaPolicy, TeamMembership
        from support.models import Team as TeamModel

        args = self.args
        rng = random.Random(SEED)  # noqa: S311  (reproducible, not secret)
        joined = dt.datetime.combine(self.start_day - dt.timedelta(days=60), dt.time(9))
        joined = joined.replace(tzinfo=dt.UTC)
        standard = SlaPolicy.objects.get(is_default=True)
        premium = SlaPolicy.objects.exclude(pk=standard.pk).order_by("pk").first()
        plans = ["enterprise", "business", "business", "starter", "starter", "free"]
        mrr = {"enterprise": 12000, "business": 2400, "starter": 400, "free": 0}
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    name=ORGANIZATIONS[i] if i < len(ORGANIZATIONS) else f"Company {i + 1}",
                    plan=plans[i % len(plans)],
                    mrr=mrr[plans[i % len(plans)]] + rng.randrange(0, 500),
                    sla_policy=premium if plans[i % len(plans)] == "enterprise" else None,
                )
                for i in range(args.organizations)
            ]
        )

        def person(i: int) -> tuple[str, str]:
            return FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i // 7) % len(LAST_NAMES)]

        customers = User.objects.bulk_create(
            [
                User(
                    username=f"customer{i + 1:04d}",
                    email=f"customer{i + 1:04d}@example.com",
                    first_name=person(i)[0],
                    last_name=person(i)[1],
                    password="!",  # noqa: S106  (unusable: nobody signs in as them)
                    date_joined=joined,
                )
                for i in range(args.customers)
            ]
        )
        # Every tenth customer has no organization; the others are spread over them.
        CustomerProfile.objects.bulk_create(
            [
                CustomerProfile(
                    user=u,
                    organization=None if i % 10 == 9 else organizations[i % len(organizations)],
                    is_org_admin=i < len(organizations),
                )
                for i, u in enumerate(customers)
            ]
        )
        agents = User.objects.bulk_create(
            [
                User(
                    username=f"agent{i + 1:02d}",
                    email=f"agent{i + 1:02d}@helpdesk.example",
                    first_name=person(i + 3)[0],
                    last_name=person(i + 3)[1],
                    is_staff=True,
                    password="!",  # noqa: S106
                    date_joined=joined,
                )
                for i in range(args.agents)
            ]
        )
        manager = User.objects.create(
            username="bench-manager",
            is_staff=True,
            password="!",  # noqa: S106
            date_joined=joined,
        )
        User.objects.create(
            username="bench-admin",
            is_staff=True,
            is_superuser=True,
            password="!",  # noqa: S106
            date_joined=joined,
        )
        Group.objects.get(name="Agents").user_set.add(*agents)
        Group.objects.get(name="Managers").user_set.add(manager)

        # Escalations go to the team of the type or topic, whose round robin assigns
        # an agent (the story's: general questions to the first agents, billing and
        # cancellations to the others, Tier 2 for security).
        general = TeamModel.objects.get(is_default=True)
        general.round_robin = True
        general.save(update_fields=["round_robin"])
        billing = TeamModel.objects.create(
            name="Billing", handles=["billing", "cancellation"], round_robin=True
        )
        tier2 = TeamModel.objects.create(name="Tier 2", handles=["security"], round_robin=True)
        n_general = history.Desk(
            start=self.start_day, days=1, tickets=0, customers=1, agents=len(agents)
        ).general_agents
        TeamMembership.objects.bulk_create(
            [TeamMembership(team=general, user=a) for a in agents[:n_general]]
            + [TeamMembership(team=billing, user=a) for a in agents[n_general:]]
            + [TeamMembership(team=tier2, user=a) for a in agents[max(0, n_general - 2) :]]
        )

        category = Category.objects.create(
            name="Analytics bench", slug="analytics-bench", is_visible=False
        )
        topics = [s for subjects in history.SUBJECTS.values() for s in subjects]
        published = joined + dt.timedelta(days=30)
        Article.objects.bulk_create(
            [
                Article(
                    title=f"{topics[i % len(topics)]} ({i // len(topics) + 1})",
                    slug=f"analytics-bench-{i + 1:04d}",
                    summary="How to sort it out, step by step.",
                    body=f"## {topics[i % len(topics)]}\n\n{history.ANSWERS['general']}",
                    status="published",
                    category=category,
                    published_at=published,
                )
                for i in range(args.articles)
            ]
        )
        return [manager.pk, *[a.pk for a in agents[:3]]]

    # ---------------------------------------------------------------------------------
    # Bulk load: secondary indexes and foreign keys dropped, rebuilt after
    # ---------------------------------------------------------------------------------

    def drop_for_load(self) -> dict:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
                   FROM pg_constraint c
                   WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)""",
                [list(BIG_TABLES)],
            )
            foreign_keys = cursor.fetchall()
            cursor.execute(
                """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                   FROM pg_index i
                   WHERE i.indrelid::regclass::text = ANY(%s)
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                     WHERE c.conindid = i.indexrelid)""",
                [list(BIG_TABLES)],
            )
            indexes = cursor.fetchall()
            for table, name, _ in foreign_keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        log(f"  dropped {len(indexes)} indexes and {len(foreign_keys)} foreign keys for the load")
        return {"foreign_keys": foreign_keys, "indexes": indexes}

    def restore_after_load(self, dropped: dict) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for _, definition in dropped["indexes"]:
                cursor.execute(definition)
        self.steps["rebuild indexes"] = round(time.perf_counter() - started, 1)
        log(f"  {'rebuilt ' + str(len(dropped['indexes'])) + ' indexes':<51}"
            f"{self.steps['rebuild indexes']:7.1f} s")  # fmt: skip
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table, name, definition in dropped["foreign_keys"]:
                # Re-adding validates every row: the written references are checked.
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        self.steps["re-add foreign keys"] = round(time.perf_counter() - started, 1)
        log(f"  {'re-added and validated foreign keys':<51}"
            f"{self.steps['re-add foreign keys']:7.1f} s")  # fmt: skip
