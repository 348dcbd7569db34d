"""Non-trivial reads of analytics: functions returning QuerySets.

Everything here reads the daily rollups over a date range (both days included) and sums
them in SQL; ratios over a range are ratios of sums (an average of averages is weighted
by what each day counted). Nothing reads tickets or messages: pages stay fast whatever
the history.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connections
from django.db.models import (
    Case,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf
from django.db.models.lookups import GreaterThan

from analytics.models import (
    AgentPerformance,
    ArticlePerformance,
    DailyOverview,
    ModelPerformance,
    SearchGap,
    TagDaily,
)
from config.db_router import read_alias

MAX_RANGE_DAYS = 366


def date_range(start: dt.date | None, end: dt.date | None, *, today: dt.date):
    """The days asked for, with defaults (the 30 days up to today), or the reason they
    cannot be shown: ``(start, end, error)``."""
    end = end or today
    start = start or end - dt.timedelta(days=29)
    if start > end:
        return start, end, "The first day must come before the last one."
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return start, end, f"Choose at most {MAX_RANGE_DAYS} days."
    return start, end, None


def _ratio(numerator, denominator):
    """numerator / denominator as a float, NULL when the denominator is 0 or NULL."""
    return ExpressionWrapper(
        Cast(numerator, FloatField()) / NullIf(Cast(denominator, FloatField()), Value(0.0)),
        output_field=FloatField(),
    )


def _weighted(value: str, weight: str):
    """The range's figure from daily ones: Σ(value × weight) / Σ weight."""
    return _ratio(Sum(F(value) * F(weight), filter=Q(**{f"{value}__isnull": False})), Sum(weight))


def _sums(*names: str) -> dict:
    """Range sums named like the daily fields (pass them after anything computed from the
    daily fields: once annotated, a name means its sum)."""
    return {name: Sum(name) for name in names}


def _in_range(start: dt.date, end: dt.date) -> Q:
    return Q(day__gte=start, day__lte=end)


# ======================================================================================
# Overview
# ======================================================================================


def overview_days(start: dt.date, end: dt.date) -> QuerySet[DailyOverview]:
    """The range's days, each with its AI resolution rate and AI cost per resolved ticket."""
    return (
        DailyOverview.objects.filter(_in_range(start, end))
        .annotate(
            ai_resolution_rate=_ratio(F("ai_resolved"), F("tickets_resolved")),
            cost_per_resolved_usd=_ratio(F("ai_cost_usd"), F("tickets_resolved")),
        )
        .order_by("day")
    )


def overview_totals(start: dt.date, end: dt.date) -> dict:
    days = DailyOverview.objects.filter(_in_range(start, end))
    # Ratios first: after them, a field's name would mean its range sum.
    totals = days.aggregate(
        ai_resolution_rate=_ratio(Sum("ai_resolved"), Sum("tickets_resolved")),
        median_first_response_seconds=_weighted("median_first_response_seconds", "first_responses"),
        csat_average=_weighted("csat_average", "csat_count"),
        cost_per_resolved_usd=_ratio(Sum("ai_cost_usd"), Sum("tickets_resolved")),
        search_deflection_rate=_ratio(Sum("searches_deflected"), Sum("searches_signed_in")),
        ai_answer_deflection_rate=_ratio(Sum("ai_answers_deflected"), Sum("ai_answers")),
        days=Count("id"),
        **{
            name: Coalesce(Sum(name), 0)
            for name in (
                "tickets_opened",
                "opened_web",
                "opened_email",
                "opened_chat",
                "opened_api",
                "tickets_resolved",
                "tickets_escalated",
                "tickets_reopened",
                "ai_resolved",
                "csat_count",
                "ai_requests",
                "copilot_requests",
                "sla_breaches",
            )
        },
        copilot_cost_usd=Sum("copilot_cost_usd"),
        ai_cost_usd=Sum("ai_cost_usd"),
    )
    totals["backlog"] = days.order_by("-day").values_list("backlog", flat=True).first()
    totals["ai_resolution_goal"] = settings.ANALYTICS_AI_RESOLUTION_GOAL
    return totals


# ======================================================================================
# AI models
# ======================================================================================


def model_comparison(start: dt.date, end: dt.date) -> QuerySet:
    """One row per AI model over the range, most used first."""
    return (
        ModelPerformance.objects.filter(_in_range(start, end))
        .values("ai_model")
        .annotate(
            success_rate=_ratio(Sum("successful_resolutions"), Sum("requests")),
            avg_confidence=_weighted("avg_confidence", "requests"),
            cost_per_request_usd=_ratio(Sum("cost_usd"), Sum("requests")),
            satisfaction_average=_weighted("satisfaction_average", "satisfaction_count"),
            **_sums(
                "requests",
                "resolutions",
                "successful_resolutions",
                "escalations",
                "questions",
                "high_confidence",
                "low_confidence",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "copilot_requests",
                "copilot_cost_usd",
                "satisfaction_count",
                "positive_ratings",
                "negative_ratings",
            ),
        )
        .order_by("-requests", "ai_model")
    )


_CALIBRATION_SQL = """
    SELECT m.ai_model,
           (b.value ->> 'bucket')::int AS bucket,
           SUM((b.value ->> 'count')::int) AS count,
           SUM((b.value ->> 'successful')::int) AS successful
      FROM analytics_modelperformance m
     CROSS JOIN LATERAL jsonb_array_elements(m.calibration) AS b(value)
     WHERE m.day BETWEEN %s AND %s
     GROUP BY m.ai_model, bucket
     ORDER BY m.ai_model, bucket
"""


def calibration(start: dt.date, end: dt.date) -> list[dict]:
    """Per model and confidence bucket (0 = 0.0–0.1 … 9 = 0.9–1.0) over the range: how
    many analyses, how many were successful resolutions, and that share."""
    # Raw SQL is not routed: ask which database this read goes to (config.db_router).
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(_CALIBRATION_SQL, [start, end])
        return [
            {
                "ai_model": model,
                "bucket": bucket,
                "confidence_from": bucket / 10,
                "confidence_to": (bucket + 1) / 10,
                "count": count,
                "successful": successful,
                "success_rate": successful / count if count else None,
            }
            for model, bucket, count, successful in cursor.fetchall()
        ]


# ======================================================================================
# Agents
# ======================================================================================


def agent_leaderboard(start: dt.date, end: dt.date) -> QuerySet:
    """One row per agent over the range, most resolutions first. The quality score is
    recomputed from the range's sums, as the daily one is (see AgentPerformance)."""
    csat = _weighted("csat_average", "csat_count")
    kept = _ratio(Sum("resolutions_kept"), Sum("tickets_resolved"))
    csat_part = ExpressionWrapper((csat - 1.0) / 4.0, output_field=FloatField())
    rated, resolved = GreaterThan(Sum("csat_count"), 0), GreaterThan(Sum("tickets_resolved"), 0)
    return (
        AgentPerformance.objects.filter(_in_range(start, end))
        .values("agent", "agent__username", "agent__first_name", "agent__last_name")
        .annotate(
            quality_score=Case(
                When(rated & resolved, then=100 * (csat_part + kept) / 2),
                When(rated, then=100 * csat_part),
                When(resolved, then=100 * kept),
                output_field=FloatField(),
            ),
            avg_first_response_seconds=_weighted("avg_first_response_seconds", "first_responses"),
            median_first_response_seconds=_weighted(
                "median_first_response_seconds", "first_responses"
            ),
            avg_resolution_seconds=_weighted("avg_resolution_seconds", "tickets_resolved"),
            csat_average=csat,
            **_sums(
                "tickets_handled",
                "tickets_resolved",
                "resolutions_kept",
                "escalated_further",
                "first_responses",
                "csat_count",
                "training_examples_created",
            ),
        )
        .order_by("-tickets_resolved", "-tickets_handled", "agent__username")
    )


def agent_days(agent_id: int, start: dt.date, end: dt.date) -> QuerySet[AgentPerformance]:
    return AgentPerformance.objects.filter(_in_range(start, end), agent_id=agent_id).order_by("day")


# ======================================================================================
# Knowledge base
# ======================================================================================


def _article_totals(start: dt.date, end: dt.date) -> QuerySet:
    return (
        ArticlePerformance.objects.filter(_in_range(start, end))
        .values("article", "article__title", "article__slug")
        .annotate(
            helpful_ratio=_ratio(
                Sum("helpful_votes"), Sum(F("helpful_votes") + F("not_helpful_votes"))
            ),
            **_sums(
                "views",
                "search_impressions",
                "ai_references",
                "helpful_votes",
                "not_helpful_votes",
                "cited_rated",
                "cited_rated_low",
            ),
        )
    )


def top_articles(start: dt.date, end: dt.date, limit: int = 20) -> QuerySet:
    return _article_totals(start, end).order_by("-views", "-ai_references", "article__title")[
        :limit
    ]


def unhelpful_cited_articles(start: dt.date, end: dt.date, limit: int = 20) -> QuerySet:
    """Articles the AI cited that customers rated unhelpful: votes "no" on the article,
    or low ratings (≤ 2) of the tickets the AI answered with it."""
    return (
        _article_totals(start, end)
        .filter(ai_references__gt=0)
        .filter(Q(cited_rated_low__gt=0) | Q(not_helpful_votes__gt=0))
        .annotate(unhelpful=F("cited_rated_low") + F("not_helpful_votes"))
        .order_by("-unhelpful", "article__title")[:limit]
    )


def content_gaps(start: dt.date, end: dt.date, limit: int = 20) -> QuerySet:
    """Searches with no good result over the range, most frequent first."""
    return (
        SearchGap.objects.filter(_in_range(start, end))
        .values("query")
        .annotate(searches=Sum("searches"), best_similarity=Max("best_similarity"))
        .order_by("-searches", "query")[:limit]
    )


def top_tags(start: dt.date, end: dt.date, limit: int = 15) -> QuerySet:
    """Tags by tickets opened over the range (then resolved), most used first."""
    return (
        TagDaily.objects.filter(_in_range(start, end))
        .values(tag_name=F("tag__name"))
        .annotate(tickets_opened=Sum("tickets_opened"), tickets_resolved=Sum("tickets_resolved"))
        .order_by("-tickets_opened", "-tickets_resolved", "tag_name")[:limit]
    )


def last_rollup_day() -> dt.date | None:
    return DailyOverview.objects.aggregate(last=Max("day"))["last"]
