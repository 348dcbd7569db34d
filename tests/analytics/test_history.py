"""The desk's history (``analytics.history``) told three ways: through the services by the
demo (``analytics.demo``), in bulk by the rollup benchmark (``bench/rollup/generate.py``),
and through the real services and the real AI pipeline (its planner answering what the
story says). All three must leave the same rows: the same events in the same order, the
same messages, the same ticket."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from analytics import history
from analytics import services as analytics_services
from analytics.demo import _Writer, load_history
from analytics.models import AgentPerformance, DailyOverview, ModelPerformance
from bench.rollup.generate import BulkWriter, people_from_database
from core.clock import set_clock
from core.models import OutboxItem
from core.outbox import schedule_after_commit, writing_history
from integrations.llm import Completion
from knowledge.models import Article, Category, KnowledgeBaseMetric, SearchLog
from knowledge.search import SearchResult
from support import services
from support.ai import pipeline, planner
from support.ai.triage import Triage
from support.models import Escalation, Message, Team, TeamMembership, Ticket, TicketEvent
from tests.factories import AgentFactory, CustomerFactory

pytestmark = pytest.mark.django_db

TZ = "America/New_York"
START = dt.date(2026, 3, 2)


def desk(**overrides) -> history.Desk:
    shape = {
        "start": START,
        "days": 28,
        "tickets": 400,
        "customers": 1,
        "agents": 1,
        "articles": 1,
        "time_zone": TZ,
    }
    return history.Desk(**{**shape, **overrides})


def story_on(path: str) -> history.TicketStory:
    """The first story of ``path`` that the stubbed planner can replay (no bug report,
    whose triage would call GitHub; no chat, whose answer is streamed)."""
    for day in history.desk_history(desk()):
        for story in day.tickets:
            if story.path == path and story.type != "bug" and story.channel != "chat":
                return story
    raise AssertionError(f"no story takes the path {path}")


def one_day(story: history.TicketStory) -> list[history.Day]:
    return [history.Day(day=story.opened_at.astimezone(ZoneInfo(TZ)).date(), tickets=(story,))]


# ======================================================================================
# What a ticket left behind
# ======================================================================================


def trail(ticket: Ticket) -> dict:
    """Every row the ticket has, without the ids and the reference that differ by
    writer (the same story written twice gets two references)."""
    ticket.refresh_from_db()
    events = []
    for event in ticket.events.order_by("id"):
        metadata = {
            k: v for k, v in event.metadata.items() if k not in ("message_id", "escalation_id")
        }
        new = "<reference>" if event.kind == "created" else event.new_value
        events.append(
            (
                event.kind,
                event.actor_id,
                event.actor_kind,
                event.field,
                event.old_value,
                new,
                metadata,
                event.is_internal,
                event.created_at,
            )
        )
    messages = list(
        ticket.messages.order_by("id").values_list(
            "sender_kind",
            "author",
            "is_internal",
            "body",
            "created_at",
            "ai_model",
            "ai_confidence",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "latency_ms",
            "article_ids",
            "ai_decision",
        )
    )
    escalations = list(
        ticket.escalations.order_by("id").values_list(
            "kind",
            "reason",
            "topic",
            "ai_attempt",
            "team",
            "assignee",
            "created_by",
            "is_resolved",
            "resolved_at",
            "created_at",
        )
    )
    fields = {
        name: getattr(ticket, name)
        for name in (
            "subject",
            "description",
            "type",
            "status",
            "priority",
            "channel",
            "requester_id",
            "organization_id",
            "assignee_id",
            "team_id",
            "ai_confidence",
            "sentiment",
            "satisfaction_rating",
            "satisfaction_comment",
            "reopened_count",
            "created_at",
            "updated_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "rated_at",
            "sla_due_at",
        )
    }
    return {"events": events, "messages": messages, "escalations": escalations, **fields}


def kinds(ticket: Ticket) -> list[str]:
    return list(ticket.events.order_by("id").values_list("kind", flat=True))


def newest_ticket() -> Ticket:
    return Ticket.objects.order_by("-id").first()


# ======================================================================================
# Three writers
# ======================================================================================


def write_as_demo(story, customer, agent, article) -> Ticket:
    with writing_history(), set_clock(story.opened_at) as clock:
        _Writer(clock, [customer], [agent], [article]).write(one_day(story))
    return newest_ticket()


def write_as_bench(story) -> Ticket:
    BulkWriter(people_from_database(), time_zone=TZ).write(one_day(story), end=desk().end)
    return newest_ticket()


def drive_through_services(story, customer, agent, article, monkeypatch) -> Ticket:
    """The story acted out by the product: the customer and the agent through the
    services, the AI through ``support.ai.pipeline.analyze_ticket``, its planner (the
    slow, external part) answering what the story's analysis says."""
    with set_clock(story.opened_at) as clock:
        turn = {}

        def plan(**kwargs):
            step, analysis = turn["step"], turn["step"].analysis
            clock.move_to(step.responding)  # the provider took this long
            handover = analysis.handover
            policy = [(handover.topic, "story")] if handover and handover.topic else []
            return planner.Plan(
                triage=Triage(
                    ticket_type=story.type,
                    type_confidence=1.0,
                    priority=story.priority,
                    sentiment=analysis.sentiment,
                    needs_human=False,
                    policy=policy,
                ),
                results=[SearchResult(article=article, score=1.0)] if analysis.cited else [],
                completion=Completion(
                    data={
                        "answer": analysis.answer,
                        "clarifying_question": analysis.question,
                        "reasoning": analysis.reasoning,
                        "cited_article_ids": [article.pk] if analysis.cited else [],
                    },
                    model=analysis.model,
                    provider="story",
                    input_tokens=analysis.input_tokens,
                    output_tokens=analysis.output_tokens,
                    latency_ms=analysis.latency_ms,
                ),
                confidence=analysis.confidence,
                decision=analysis.decision,
                escalation_kind=handover.kind if handover else "",
                escalation_reason=handover.reason if handover else "",
            )

        apply = pipeline._apply

        def apply_when_answered(ticket_id, result):
            clock.move_to(turn["step"].at)
            return apply(ticket_id, result)

        monkeypatch.setattr(planner, "plan", plan)
        monkeypatch.setattr(planner, "production_examples", lambda: None)
        monkeypatch.setattr(pipeline, "_apply", apply_when_answered)

        ticket = None
        for step in story.steps:
            clock.move_to(step.started or step.at)
            if step.kind == history.OPEN:
                ticket = services.ticket_open(
                    requester=customer,
                    subject=story.subject,
                    description=story.description,
                    type=story.type,
                    priority=story.priority,
                    channel=story.channel,
                )
            elif step.kind == history.AI:
                turn["step"] = step
                outcome = pipeline.analyze_ticket(ticket.pk, provider=object())
                assert outcome in ("resolved", "asked", "escalated"), outcome
            elif step.kind == history.CUSTOMER_REPLY:
                services.message_add(ticket=ticket, author=customer, body=step.body)
            elif step.kind == history.AGENT_REPLY:
                ticket.refresh_from_db()
                if ticket.assignee is None:  # from the queue: take it, then answer
                    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
                services.message_add(ticket=ticket, author=agent, body=step.body)
            elif step.kind == history.ESCALATE:
                services.ticket_escalate(
                    ticket=ticket,
                    kind=step.handover.kind,
                    reason=step.handover.reason,
                    topic=step.handover.topic,
                    actor=agent,
                )
            elif step.kind == history.RESOLVE:
                services.ticket_resolve(ticket=ticket, actor=agent)
            elif step.kind == history.CLOSE:
                services.ticket_close(ticket=ticket, actor=agent)
            elif step.kind == history.RATE:
                services.ticket_rate(
                    ticket=ticket, actor=customer, rating=step.rating, comment=step.comment
                )
    return ticket


@pytest.fixture
def people(settings):
    settings.ANALYTICS_TIME_ZONE = TZ
    customer = CustomerFactory(username="history-customer")
    agent = AgentFactory(username="history-agent")
    category = Category.objects.create(name="Help", slug="help")
    article = Article.objects.create(
        title="Export", slug="export", body="How.", status="published", category=category
    )
    return customer, agent, article


PATHS = [
    (history.PATH_AI_RESOLVED, True),
    (history.PATH_ESCALATED, True),
    (history.PATH_ESCALATED, False),
    (history.PATH_ESCALATED_TWICE, True),
    (history.PATH_ASKED_AI_RESOLVED, True),
    (history.PATH_ASKED_ESCALATED, True),
    (history.PATH_AI_RESOLVED_REOPENED, False),
    (history.PATH_ASKED_CLOSED, True),
]


@pytest.mark.parametrize(("path", "round_robin"), PATHS)
def test_the_demo_and_the_bench_write_what_the_services_write(
    people, path, round_robin, monkeypatch
):
    customer, agent, article = people
    # Escalations go to the general queue; with round robin it assigns the one agent,
    # without it the agent takes the ticket before answering.
    general = Team.objects.get(is_default=True)
    general.round_robin = round_robin
    general.save()
    TeamMembership.objects.create(team=general, user=agent)
    story = story_on(path)

    product = trail(drive_through_services(story, customer, agent, article, monkeypatch))
    demo = trail(write_as_demo(story, customer, agent, article))
    bench = trail(write_as_bench(story))

    assert demo == product
    assert bench == product
    # The status path the AI's turn writes, e.g. new → analyzing → ai_responding → resolved.
    statuses = [e[5] for e in product["events"] if e[0] == "status_changed"]
    assert statuses[:2] == ["analyzing", "ai_responding"]
    assert product["events"][0][0] == "created"
    assert "message_added" in [e[0] for e in product["events"]]


def test_the_event_kinds_of_an_ai_resolution_and_of_an_escalation(people, monkeypatch):
    customer, agent, article = people
    resolved = story_on(history.PATH_AI_RESOLVED)
    rated = [s.kind for s in resolved.steps][-1] == history.RATE

    ticket = drive_through_services(resolved, customer, agent, article, monkeypatch)

    expected = ["created", "status_changed", "status_changed", "message_added"]
    expected += ["status_changed", "resolved"] + (["rated"] if rated else [])
    assert kinds(ticket) == expected
    assert kinds(write_as_demo(resolved, customer, agent, article)) == expected
    assert kinds(write_as_bench(resolved)) == expected

    escalated = story_on(history.PATH_ESCALATED)
    ticket = drive_through_services(escalated, customer, agent, article, monkeypatch)
    assert kinds(ticket)[:7] == [
        "created",
        "status_changed",  # new → analyzing
        "status_changed",  # analyzing → ai_responding
        "status_changed",  # ai_responding → escalated
        "escalated",
        "message_added",  # the AI's attempt, for the team
        "message_added",  # "a person will take it from here"
    ]
    assert kinds(write_as_bench(escalated)) == kinds(ticket)


def test_a_whole_history_written_by_the_demo_and_by_the_bench_is_the_same(settings):
    settings.ANALYTICS_TIME_ZONE = TZ
    customers = [CustomerFactory(username=f"c{n}") for n in range(3)]
    agents = [AgentFactory(username=f"a{n}") for n in range(2)]
    category = Category.objects.create(name="Help", slug="help")
    articles = [
        Article.objects.create(
            title=f"A{n}", slug=f"a{n}", body="How.", status="published", category=category
        )
        for n in range(2)
    ]
    small = desk(days=8, tickets=60, searches=20, customers=3, agents=2, articles=2)

    with writing_history(), set_clock(small.end) as clock:
        _Writer(clock, customers, agents, articles).write(history.desk_history(small))
    demo = list(Ticket.objects.order_by("id"))
    demo_searches = list(SearchLog.objects.order_by("id").values_list(*SEARCH_FIELDS))
    demo_metrics = dict(metrics())
    BulkWriter(people_from_database(), time_zone=TZ).write(
        history.desk_history(small), end=small.end
    )
    bench = list(Ticket.objects.exclude(pk__in=[t.pk for t in demo]).order_by("id"))

    assert len(demo) == len(bench) == sum(len(d.tickets) for d in history.desk_history(small))
    for mine, theirs in zip(demo, bench, strict=True):
        assert trail(theirs) == trail(mine)
    assert list(SearchLog.objects.order_by("id").values_list(*SEARCH_FIELDS)) == demo_searches * 2
    assert dict(metrics()) == {key: tuple(2 * n for n in row) for key, row in demo_metrics.items()}
    # Every path of the stories is there.
    paths = {s.path for d in history.desk_history(small) for s in d.tickets}
    assert {history.PATH_AI_RESOLVED, history.PATH_ESCALATED} <= paths


SEARCH_FIELDS = (
    "query",
    "source",
    "result_count",
    "best_similarity",
    "top_article",
    "user",
    "created_at",
)


def metrics():
    for row in KnowledgeBaseMetric.objects.values_list(
        "article",
        "day",
        "views",
        "search_impressions",
        "ai_references",
        "helpful_votes",
        "not_helpful_votes",
    ):
        yield row[:2], row[2:]


# ======================================================================================
# The demo history
# ======================================================================================

TODAY = dt.date(2026, 6, 10)


@pytest.fixture
def desk_people(db):
    for n in range(4):
        CustomerFactory(username=f"customer-{n}")
    AgentFactory(username="agent-1")
    AgentFactory(username="agent-2")


def test_the_demo_history_owes_no_work_and_loads_once(
    desk_people, django_capture_on_commit_callbacks
):
    before = OutboxItem.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        written = load_history(days=3, today=TODAY)

    assert written > 0
    assert Ticket.objects.count() == written
    # Nothing follows from history: no AI analysis, email or harvest owed, nothing
    # published live; and no ticket is left where the AI or the sweep would take it up.
    assert OutboxItem.objects.count() == before
    assert callbacks == []
    assert not Ticket.objects.filter(status__in=["new", "analyzing", "ai_responding"]).exists()
    start_of_today, _ = analytics_services.day_bounds(TODAY)
    assert not TicketEvent.objects.filter(created_at__gte=start_of_today).exists()

    counts = (
        Ticket.objects.count(),
        TicketEvent.objects.count(),
        Message.objects.count(),
        Escalation.objects.count(),
        SearchLog.objects.count(),
        DailyOverview.objects.count(),
    )
    assert load_history(days=3, today=TODAY) == 0
    assert (
        Ticket.objects.count(),
        TicketEvent.objects.count(),
        Message.objects.count(),
        Escalation.objects.count(),
        SearchLog.objects.count(),
        DailyOverview.objects.count(),
    ) == counts


def test_the_dashboards_have_ai_and_human_figures_after_three_days(desk_people):
    load_history(days=3, today=TODAY)

    days = DailyOverview.objects.filter(day__lt=TODAY)
    assert days.count() == 3
    opened = sum(d.tickets_opened for d in days)
    ai_resolved = sum(d.ai_resolved for d in days)
    resolved = sum(d.tickets_resolved for d in days)
    assert opened > 0 and ai_resolved > 0
    assert resolved > ai_resolved  # people resolved some too
    assert sum(d.ai_requests for d in days) > 0 and sum(d.ai_cost_usd for d in days) > 0
    assert sum(d.first_responses for d in days) > 0
    assert ModelPerformance.objects.filter(day__lt=TODAY, requests__gt=0).exists()
    agents = AgentPerformance.objects.filter(day__lt=TODAY)
    assert sum(a.tickets_resolved for a in agents) > 0
    assert sum(a.tickets_handled for a in agents) > 0


# ======================================================================================
# The generator and the outbox's history mode
# ======================================================================================


def test_the_same_desk_tells_the_same_history():
    first = [(d.day, d.tickets, d.searches, d.articles) for d in history.desk_history(desk())]
    again = [(d.day, d.tickets, d.searches, d.articles) for d in history.desk_history(desk())]
    other = [d.tickets for d in history.desk_history(desk(seed=8))]

    assert first == again
    assert [d[1] for d in first] != other
    assert sum(len(d[1]) for d in first) <= 400


def test_stories_stop_at_the_end_without_leaving_work_for_the_ai():
    end = dt.datetime(2026, 3, 20, 15, tzinfo=dt.UTC)
    for day in history.desk_history(desk(end=end)):
        for story in day.tickets:
            times = [s.at for s in story.steps]
            assert times == sorted(times) and times[-1] < end
            kinds_ = [s.kind for s in story.steps]
            assert kinds_[0] == history.OPEN and kinds_[1] == history.AI
            # A customer's message on a ticket nobody has is always answered by the AI.
            for number, kind in enumerate(kinds_[:-1]):
                if kind == history.CUSTOMER_REPLY:
                    assert kinds_[number + 1] == history.AI
            assert kinds_[-1] != history.CUSTOMER_REPLY
        assert all(search.at < end for search in day.searches)


def test_the_ai_improves_over_the_weeks():
    days = list(history.desk_history(desk(days=56, tickets=2000)))

    def escalated_share(part):
        analyses = [
            s.steps[1].analysis.decision for d in part for s in d.tickets if len(s.steps) > 1
        ]
        return analyses.count(history.ESCALATED) / len(analyses)

    assert escalated_share(days[-14:]) < escalated_share(days[:14])


def test_writing_history_records_no_work_and_drops_its_callbacks(
    customer, django_capture_on_commit_callbacks
):
    def earlier():
        pass

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        transaction.on_commit(earlier)
        with writing_history():
            services.ticket_open(requester=customer, subject="Old", description="Long ago.")
            assert schedule_after_commit("support.tasks.analyze_ticket", 1) is None

    assert callbacks == [earlier]  # what was registered before the block still runs
    assert not OutboxItem.objects.exists()

    services.ticket_open(requester=customer, subject="New", description="Now.")
    assert OutboxItem.objects.filter(task="support.tasks.analyze_ticket").count() == 1
