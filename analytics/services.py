"""Every write of analytics: one function per state change, one transaction each.

``rollup_day(day)`` recomputes every rollup of one local day (``ANALYTICS_TIME_ZONE``)
from the tickets, messages, events and searches, with SQL aggregates (conditional counts,
averages and medians over the day's rows, grouped by scope), and upserts the results keyed
by (scope, day): re-running a day rewrites the same rows and removes scopes that no longer
have activity. The definitions of every figure are in the models' docstrings.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Avg, Count, Exists, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast, Coalesce, Floor, Greatest, Least, Lower, Trim

from analytics.models import (
    AgentPerformance,
    ArticlePerformance,
    DailyOverview,
    ModelPerformance,
    SearchGap,
    TagDaily,
)
from knowledge.models import KnowledgeBaseMetric, SearchLog
from support.models import (
    DONE_STATUSES,
    CopilotCall,
    Escalation,
    Message,
    Ticket,
    TicketEvent,
    TicketStatus,
    TicketTag,
    TrainingExample,
)

logger = logging.getLogger(__name__)

Kind = TicketEvent.Kind
Actor = TicketEvent.ActorKind
Sender = Message.SenderKind

#: An AI resolution or an agent's resolution "holds" when not reopened within this time.
KEPT_FOR = dt.timedelta(days=7)
#: A search or AI answer deflects a ticket when no ticket/escalation follows within this.
DEFLECTION_WINDOW = dt.timedelta(hours=24)
CALIBRATION_BUCKETS = 10


# ======================================================================================
# SQL building blocks
# ======================================================================================


class Median(models.Aggregate):
    """PostgreSQL's ``percentile_cont(0.5)``: the median of a numeric expression."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = models.FloatField()
    allow_distinct = False


class Seconds(models.Func):
    """Seconds of an interval (``later - earlier``) as a float."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "
    output_field = models.FloatField()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day as [start, end) instants; 23 or 25 hours long on DST changes."""
    tz = ZoneInfo(settings.ANALYTICS_TIME_ZONE)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _in(field: str, start, end) -> Q:
    return Q(**{f"{field}__gte": start, f"{field}__lt": end})


def _followed_within(kind: str, delta: dt.timedelta) -> Exists:
    """The ticket of the outer row had an event of ``kind`` in the ``delta`` after the
    row's time (reopened within 7 days, escalated within 24 hours…)."""
    return Exists(
        TicketEvent.objects.filter(
            ticket=OuterRef("ticket"),
            kind=kind,
            created_at__gt=OuterRef("created_at"),
            created_at__lte=OuterRef("created_at") + delta,
        )
    )


def _rating():
    """The rating of a ``rated`` event (its new value), as an integer."""
    return models.Case(models.When(kind=Kind.RATED, then=Cast("new_value", models.IntegerField())))


def _analyses(start, end):
    """AI messages written by an analysis that day (each carries model, tokens, cost)."""
    return Message.objects.filter(_in("created_at", start, end), sender_kind=Sender.AI).exclude(
        ai_model=""
    )


def _copilot_calls(start, end):
    """The agents' successful copilot calls that day (each carries model, tokens, cost)."""
    return CopilotCall.objects.filter(_in("created_at", start, end), succeeded=True).exclude(
        ai_model=""
    )


def _resolved_by_ai_publicly() -> Q:
    return Q(ai_decision="resolve", is_internal=False)


# ======================================================================================
# The whole desk
# ======================================================================================


#: The channels the overview counts openings by (``DailyOverview.opened_<channel>``).
OPENED_CHANNELS = ("web", "email", "chat", "api")


def _overview(day, start, end) -> dict:
    # Both ranges are indexed: the day's openings and the day's first responses.
    tickets = Ticket.objects.filter(
        _in("created_at", start, end) | _in("first_response_at", start, end)
    ).aggregate(
        tickets_opened=Count("id", filter=_in("created_at", start, end)),
        **{
            f"opened_{channel}": Count(
                "id", filter=_in("created_at", start, end) & Q(channel=channel)
            )
            for channel in OPENED_CHANNELS
        },
        first_responses=Count("id", filter=_in("first_response_at", start, end)),
        median_first_response_seconds=Median(
            Seconds("first_response_at", "created_at"),
            filter=_in("first_response_at", start, end),
        ),
    )
    tickets["sla_breaches"] = _sla_breaches(start, end)
    tickets["backlog"] = _backlog(day, start, end, opened=tickets["tickets_opened"])
    events = TicketEvent.objects.filter(_in("created_at", start, end)).aggregate(
        tickets_resolved=Count("ticket", distinct=True, filter=Q(kind=Kind.RESOLVED)),
        ai_resolved=Count(
            "ticket", distinct=True, filter=Q(kind=Kind.RESOLVED, actor_kind=Actor.AI)
        ),
        tickets_escalated=Count("ticket", distinct=True, filter=Q(kind=Kind.ESCALATED)),
        tickets_reopened=Count("ticket", distinct=True, filter=Q(kind=Kind.REOPENED)),
        median_resolution_seconds=Median(
            Seconds("created_at", "ticket__created_at"), filter=Q(kind=Kind.RESOLVED)
        ),
        csat_count=Count("id", filter=Q(kind=Kind.RATED)),
        csat_average=Avg(_rating(), filter=Q(kind=Kind.RATED)),
    )
    ai = _analyses(start, end).aggregate(
        ai_requests=Count("id"),
        ai_cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
        ai_answers=Count("id", filter=_resolved_by_ai_publicly()),
        ai_answers_deflected=Count(
            "id",
            filter=_resolved_by_ai_publicly()
            & ~_followed_within(Kind.ESCALATED, DEFLECTION_WINDOW),
        ),
    )
    # The AI cost is the analyses' and the copilot's together.
    ai.update(
        _copilot_calls(start, end).aggregate(
            copilot_requests=Count("id"),
            copilot_cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
        )
    )
    ai["ai_cost_usd"] += ai["copilot_cost_usd"]
    ticket_followed = Exists(
        Ticket.objects.filter(
            requester=OuterRef("user"),
            created_at__gt=OuterRef("created_at"),
            created_at__lte=OuterRef("created_at") + DEFLECTION_WINDOW,
        )
    )
    searches = SearchLog.objects.filter(
        _in("created_at", start, end), source=SearchLog.Source.HELP_CENTER
    ).aggregate(
        searches=Count("id"),
        searches_signed_in=Count("id", filter=Q(user__isnull=False)),
        searches_deflected=Count("id", filter=Q(user__isnull=False) & ~ticket_followed),
    )
    return {**tickets, **events, **ai, **searches}


def _sla_breaches(start, end) -> int:
    """SLA breaches of the day, in business time: tickets whose first missed due time
    (first response, next response or resolution; ``sla_breached_at``, stamped by the
    services and the minute beat) fell in the day. A ticket without the stamp (written
    before the SLA clocks, or not stamped yet) counts when its deadline fell in the day
    and it was not resolved or closed then (its status from the event log)."""
    status_at_deadline = Subquery(
        TicketEvent.objects.filter(
            ticket=OuterRef("pk"),
            kind=Kind.STATUS_CHANGED,
            created_at__lte=OuterRef("sla_due_at"),
        )
        .order_by("-created_at", "-id")
        .values("new_value")[:1]
    )
    stamped = Ticket.objects.filter(_in("sla_breached_at", start, end)).count()
    unstamped = (
        Ticket.objects.filter(_in("sla_due_at", start, end), sla_breached_at__isnull=True)
        .alias(status_then=Coalesce(status_at_deadline, models.Value(TicketStatus.NEW)))
        .exclude(status_then__in=DONE_STATUSES)
        .count()
    )
    return stamped + unstamped


def _moves(events) -> dict:
    """Tickets moved into resolved/closed, and out of it again, by these status events."""
    done = list(DONE_STATUSES)
    return events.filter(kind=Kind.STATUS_CHANGED).aggregate(
        settled=Count("id", filter=Q(new_value__in=done) & ~Q(old_value__in=done)),
        reopened=Count("id", filter=Q(old_value__in=done) & ~Q(new_value__in=done)),
    )


def _backlog(day, start, end, *, opened: int) -> int:
    """Tickets open at the end of the day: the previous day's backlog plus the day's
    openings, less the day's moves into resolved/closed, plus the moves out of it. Without
    a previous day, counted over the whole history (exact through reopenings either way)."""
    previous = (
        DailyOverview.objects.filter(day=day - dt.timedelta(days=1))
        .values_list("backlog", flat=True)
        .first()
    )
    if previous is None:
        moves = _moves(TicketEvent.objects.filter(created_at__lt=end))
        return (
            Ticket.objects.filter(created_at__lt=end).count() - moves["settled"] + moves["reopened"]
        )
    moves = _moves(TicketEvent.objects.filter(_in("created_at", start, end)))
    return previous + opened - moves["settled"] + moves["reopened"]


# ======================================================================================
# Human agents
# ======================================================================================


def _agents(start, end) -> dict[int, dict]:
    rows: dict[int, dict] = defaultdict(dict)

    replies = Message.objects.filter(
        _in("created_at", start, end), sender_kind=Sender.AGENT, is_internal=False
    ).exclude(author=None)
    for row in replies.values("author").annotate(tickets_handled=Count("ticket", distinct=True)):
        rows[row.pop("author")].update(row)

    # First reply of each agent on each ticket, timed from the hand-over to people.
    handed_over = Subquery(
        Escalation.objects.filter(ticket=OuterRef("ticket"), created_at__lte=OuterRef("created_at"))
        .order_by("created_at")
        .values("created_at")[:1]
    )
    earlier = Message.objects.filter(
        ticket=OuterRef("ticket"),
        author=OuterRef("author"),
        sender_kind=Sender.AGENT,
        is_internal=False,
        created_at__lt=OuterRef("created_at"),
    )
    first_replies = (
        replies.filter(~Exists(earlier))
        .annotate(
            wait=Greatest(Seconds("created_at", Coalesce(handed_over, "ticket__created_at")), 0.0)
        )
        .values("author")
        .annotate(
            first_responses=Count("id"),
            avg_first_response_seconds=Avg("wait"),
            median_first_response_seconds=Median("wait"),
        )
    )
    for row in first_replies:
        rows[row.pop("author")].update(row)

    agent_events = TicketEvent.objects.filter(
        _in("created_at", start, end), actor_kind=Actor.AGENT
    ).exclude(actor=None)
    resolutions = (
        agent_events.filter(kind=Kind.RESOLVED)
        .annotate(
            took=Seconds("created_at", "ticket__created_at"),
            kept=~_followed_within(Kind.REOPENED, KEPT_FOR),
        )
        .values("actor")
        .annotate(
            tickets_resolved=Count("ticket", distinct=True),
            resolutions_kept=Count("id", filter=Q(kept=True)),
            avg_resolution_seconds=Avg("took"),
            median_resolution_seconds=Median("took"),
        )
    )
    for row in resolutions:
        rows[row.pop("actor")].update(row)
    for row in (
        agent_events.filter(kind=Kind.ESCALATED)
        .values("actor")
        .annotate(escalated_further=Count("ticket", distinct=True))
    ):
        rows[row.pop("actor")].update(row)

    # A rating goes to whoever last resolved the ticket before it was given.
    resolver = TicketEvent.objects.filter(
        ticket=OuterRef("ticket"), kind=Kind.RESOLVED, created_at__lte=OuterRef("created_at")
    ).order_by("-created_at", "-id")
    ratings = (
        TicketEvent.objects.filter(_in("created_at", start, end), kind=Kind.RATED)
        .annotate(
            resolver=Subquery(resolver.values("actor")[:1]),
            resolver_kind=Subquery(resolver.values("actor_kind")[:1]),
        )
        .filter(resolver_kind=Actor.AGENT, resolver__isnull=False)
        .values("resolver")
        .annotate(csat_count=Count("id"), csat_average=Avg(_rating()))
    )
    for row in ratings:
        rows[row.pop("resolver")].update(row)

    for row in (
        TrainingExample.objects.filter(
            _in("created_at", start, end),
            author_kind=TrainingExample.AuthorKind.HUMAN,
            source_message__author__isnull=False,
        )
        .values("source_message__author")
        .annotate(training_examples_created=Count("id"))
    ):
        rows[row.pop("source_message__author")].update(row)

    for row in rows.values():
        row["quality_score"] = _quality_score(row)
    return rows


def _quality_score(row: dict) -> float | None:
    parts = []
    if row.get("csat_average") is not None:
        parts.append((row["csat_average"] - 1) / 4)
    if row.get("tickets_resolved"):
        parts.append(row["resolutions_kept"] / row["tickets_resolved"])
    return round(100 * sum(parts) / len(parts), 1) if parts else None


# ======================================================================================
# AI models
# ======================================================================================


def _models(start, end) -> dict[str, dict]:
    successful = _resolved_by_ai_publicly() & Q(kept=True)
    analyses = _analyses(start, end).annotate(kept=~_followed_within(Kind.REOPENED, KEPT_FOR))
    rows: dict[str, dict] = {}
    for row in analyses.values("ai_model").annotate(
        requests=Count("id"),
        resolutions=Count("id", filter=_resolved_by_ai_publicly()),
        successful_resolutions=Count("id", filter=successful),
        questions=Count("id", filter=Q(ai_decision="ask")),
        escalations=Count("id", filter=Q(ai_decision="escalate")),
        avg_confidence=Avg("ai_confidence"),
        high_confidence=Count("id", filter=Q(ai_confidence__gt=0.8)),
        low_confidence=Count("id", filter=Q(ai_confidence__lt=0.5)),
        input_tokens=Coalesce(Sum("input_tokens"), 0),
        output_tokens=Coalesce(Sum("output_tokens"), 0),
        cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
        avg_latency_ms=Avg("latency_ms"),
        satisfaction_count=Count(
            "id",
            filter=_resolved_by_ai_publicly() & Q(ticket__satisfaction_rating__isnull=False),
        ),
        satisfaction_average=Avg("ticket__satisfaction_rating", filter=_resolved_by_ai_publicly()),
        positive_ratings=Count(
            "id", filter=_resolved_by_ai_publicly() & Q(ticket__satisfaction_rating__gte=4)
        ),
        negative_ratings=Count(
            "id", filter=_resolved_by_ai_publicly() & Q(ticket__satisfaction_rating__lte=2)
        ),
    ):
        row["calibration"] = [
            {"bucket": b, "count": 0, "successful": 0} for b in range(CALIBRATION_BUCKETS)
        ]
        rows[row.pop("ai_model")] = row

    buckets = (
        analyses.filter(ai_confidence__isnull=False)
        .annotate(
            bucket=Least(
                Greatest(Floor(F("ai_confidence") * CALIBRATION_BUCKETS), 0),
                CALIBRATION_BUCKETS - 1,
                output_field=models.IntegerField(),
            )
        )
        .values("ai_model", "bucket")
        .annotate(count=Count("id"), successful=Count("id", filter=successful))
    )
    for row in buckets:
        slot = rows[row["ai_model"]]["calibration"][int(row["bucket"])]
        slot.update(count=row["count"], successful=row["successful"])
    # The copilot's calls per model; a model used only by the copilot that day gets a row.
    copilot = _copilot_calls(start, end).values("ai_model")
    for row in copilot.annotate(
        copilot_requests=Count("id"), copilot_cost_usd=Coalesce(Sum("cost_usd"), Decimal(0))
    ):
        rows.setdefault(row.pop("ai_model"), {}).update(row)
    return rows


# ======================================================================================
# Knowledge base
# ======================================================================================

_CITED_RATINGS_SQL = """
    SELECT cited.article_id,
           COUNT(*) FILTER (WHERE t.satisfaction_rating IS NOT NULL),
           COUNT(*) FILTER (WHERE t.satisfaction_rating <= 2)
      FROM support_message m
      JOIN support_ticket t ON t.id = m.ticket_id
     CROSS JOIN LATERAL unnest(m.article_ids) AS cited(article_id)
      JOIN knowledge_article a ON a.id = cited.article_id
     WHERE m.sender_kind = 'ai' AND NOT m.is_internal
       AND m.created_at >= %s AND m.created_at < %s
     GROUP BY cited.article_id
"""


def _articles(day, start, end) -> dict[int, dict]:
    counters = ("views", "search_impressions", "ai_references", "helpful_votes")
    rows: dict[int, dict] = {
        row.pop("article"): row
        for row in KnowledgeBaseMetric.objects.filter(day=day).values(
            "article", *counters, "not_helpful_votes"
        )
    }
    with connection.cursor() as cursor:
        cursor.execute(_CITED_RATINGS_SQL, [start, end])
        for article_id, rated, rated_low in cursor.fetchall():
            rows.setdefault(article_id, {}).update(cited_rated=rated, cited_rated_low=rated_low)
    return rows


def _search_gaps(start, end) -> dict[str, dict]:
    threshold = settings.ANALYTICS_GOOD_RESULT_SIMILARITY
    gaps = (
        SearchLog.objects.filter(_in("created_at", start, end))
        .exclude(source=SearchLog.Source.AI)
        .filter(Q(result_count=0) | Q(best_similarity__lt=threshold))
        .annotate(normalized=Lower(Trim("query")))
        .exclude(normalized="")
        .values("normalized")
        .annotate(searches=Count("id"), best_similarity=Max("best_similarity"))
    )
    return {row.pop("normalized"): row for row in gaps}


def _tags(start, end) -> dict[int, dict]:
    """Per tag: the day's new tickets carrying it now, and the tickets carrying it that
    were resolved that day (each ticket once, however often it was resolved)."""
    resolved_that_day = Exists(
        TicketEvent.objects.filter(
            _in("created_at", start, end), ticket=OuterRef("ticket"), kind=Kind.RESOLVED
        )
    )
    opened = (
        TicketTag.objects.filter(_in("ticket__created_at", start, end))
        .values("tag")
        .annotate(n=Count("ticket", distinct=True))
    )
    resolved = (
        TicketTag.objects.filter(resolved_that_day)
        .values("tag")
        .annotate(n=Count("ticket", distinct=True))
    )
    rows: dict[int, dict] = defaultdict(lambda: {"tickets_opened": 0, "tickets_resolved": 0})
    for row in opened:
        rows[row["tag"]]["tickets_opened"] = row["n"]
    for row in resolved:
        rows[row["tag"]]["tickets_resolved"] = row["n"]
    return dict(rows)


# ======================================================================================
# Writing a day
# ======================================================================================


def _upsert(model, day, scope: str, rows: dict) -> int:
    """Write the day's rows of one rollup (insert or update by (scope, day)) and delete
    the day's rows of scopes no longer active: the day ends up exactly as computed."""
    fields = [
        f.name
        for f in model._meta.concrete_fields
        if f.name not in ("id", "day", scope, "computed_at")
    ]
    objs = [model(day=day, **{scope: key}, **values) for key, values in rows.items()]
    if objs:
        model.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=[scope, "day"],
            update_fields=[*fields, "computed_at"],
        )
    model.objects.filter(day=day).exclude(**{f"{scope}__in": list(rows)}).delete()
    return len(objs)


def rollup_day(day: dt.date) -> dict[str, int]:
    """Recompute every rollup of one local day; returns how many rows each got."""
    start, end = day_bounds(day)
    overview = _overview(day, start, end)
    agents = _agents(start, end)
    ai_models = _models(start, end)
    articles = _articles(day, start, end)
    gaps = _search_gaps(start, end)
    tags = _tags(start, end)
    with transaction.atomic():
        DailyOverview.objects.update_or_create(day=day, defaults=overview)
        written = {
            "overview": 1,
            "agents": _upsert(AgentPerformance, day, "agent_id", agents),
            "models": _upsert(ModelPerformance, day, "ai_model", ai_models),
            "articles": _upsert(ArticlePerformance, day, "article_id", articles),
            "search_gaps": _upsert(SearchGap, day, "query", gaps),
            "tags": _upsert(TagDaily, day, "tag_id", tags),
        }
    logger.info("rolled up %s", day, extra={"day": str(day), **written})
    return written


def days_to_roll_up(today: dt.date) -> list[dt.date]:
    """What the nightly job computes: every day since the last one rolled up (a crashed
    or missed night is caught up, at most ``ANALYTICS_CATCH_UP_DAYS``), up to yesterday,
    and the day whose 7-day "not reopened" window has just closed (its figures are final)."""
    yesterday = today - dt.timedelta(days=1)
    last = DailyOverview.objects.aggregate(last=Max("day"))["last"]
    first = yesterday - dt.timedelta(days=settings.ANALYTICS_CATCH_UP_DAYS - 1)
    if last is not None:
        first = max(first, min(last + dt.timedelta(days=1), yesterday))
    days = [first + dt.timedelta(days=n) for n in range((yesterday - first).days + 1)]
    final = today - KEPT_FOR - dt.timedelta(days=1)
    if final not in days:
        days.insert(0, final)
    return days


def local_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(settings.ANALYTICS_TIME_ZONE)).date()
