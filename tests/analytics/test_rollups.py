"""Daily rollups computed from a known history (see ``history`` in conftest.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from analytics import services, tasks
from analytics.models import (
    AgentPerformance,
    ArticlePerformance,
    DailyOverview,
    ModelPerformance,
    SearchGap,
)
from knowledge.services import metric_increment
from tests.analytics.conftest import DAY, local, next_day, open_ticket

pytestmark = pytest.mark.django_db


def _calibration(**buckets):
    """{"b9": (1, 1)} -> the ten-bucket list with those (count, successful)."""
    table = [{"bucket": b, "count": 0, "successful": 0} for b in range(10)]
    for name, (count, successful) in buckets.items():
        table[int(name[1:])].update(count=count, successful=successful)
    return table


def test_a_day_of_the_whole_desk(history):
    services.rollup_day(DAY)

    day = DailyOverview.objects.get(day=DAY)
    assert (day.tickets_opened, day.tickets_resolved, day.ai_resolved) == (3, 3, 2)
    assert (day.tickets_escalated, day.tickets_reopened) == (1, 0)
    # Open at midnight: T4 and T6 (T2 was resolved then, though reopened since).
    assert day.backlog == 2
    # First responses 60 s (T1), 300 s (T4), 600 s (T2), 4201 s (T3): median 450 s.
    assert (day.first_responses, day.median_first_response_seconds) == (4, pytest.approx(450))
    # Resolutions took 60 s, 600 s and 7801 s.
    assert day.median_resolution_seconds == pytest.approx(600)
    assert (day.csat_count, day.csat_average) == (2, pytest.approx(3.5))
    assert (day.ai_requests, day.ai_cost_usd) == (4, Decimal("0.065"))
    assert day.sla_breaches == 1  # T6: due at 04:00, never answered; T3 was in time
    assert (day.searches, day.searches_signed_in, day.searches_deflected) == (3, 2, 1)
    assert (day.ai_answers, day.ai_answers_deflected) == (2, 2)


def test_the_days_around_it(history):
    services.rollup_day(next_day())
    services.rollup_day(next_day(2))

    after = DailyOverview.objects.get(day=next_day())
    assert after.tickets_opened == 1  # T5, opened at midnight exactly
    assert after.backlog == 3
    # Due that day: T1 (resolved), T2 (resolved then, reopened only later), T4 (open).
    assert after.sla_breaches == 1
    reopening = DailyOverview.objects.get(day=next_day(2))
    assert (reopening.tickets_reopened, reopening.backlog) == (1, 4)


def test_the_backlog_carried_from_day_to_day_matches_a_full_count(history):
    # Rolled up in order, each day's backlog builds on the day before's…
    for n in range(-1, 4):
        services.rollup_day(next_day(n))
    carried = dict(DailyOverview.objects.values_list("day", "backlog"))
    # …and it equals the count over the whole history, day by day.
    for day, backlog in carried.items():
        DailyOverview.objects.all().delete()
        services.rollup_day(day)
        assert DailyOverview.objects.get(day=day).backlog == backlog, day
    assert list(carried.values()) == [2, 2, 3, 4, 4]


def test_days_follow_the_configured_time_zone(history, settings):
    settings.ANALYTICS_TIME_ZONE = "UTC"
    services.rollup_day(DAY)

    # In UTC, T3 (23:59:59 New York) and T6 (20:00) fall on DAY; T2 (23:30) does not.
    day = DailyOverview.objects.get(day=DAY)
    assert (day.tickets_opened, day.tickets_resolved, day.ai_resolved) == (4, 2, 1)


@pytest.mark.parametrize(
    "day, hours", [(dt.date(2026, 3, 8), 23), (dt.date(2026, 11, 1), 25), (DAY, 24)]
)
def test_days_are_local_days_across_daylight_saving_changes(analytics_tz, day, hours):
    start, end = services.day_bounds(day)
    assert (start.hour, end.hour) == (0, 0)
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=hours)


def test_an_agents_day(history):
    services.rollup_day(DAY)

    row = AgentPerformance.objects.get(day=DAY)
    assert row.agent == history["agent"]
    assert (row.tickets_handled, row.tickets_resolved, row.resolutions_kept) == (1, 1, 1)
    assert row.escalated_further == 0
    # Handed over by the AI at 00:10, answered at 01:10.
    assert row.first_responses == 1
    assert row.avg_first_response_seconds == row.median_first_response_seconds == 3600
    assert row.avg_resolution_seconds == pytest.approx(7801)
    assert (row.csat_count, row.csat_average) == (1, 2.0)
    # Mean of CSAT 2 on the 1–5 scale (25 %) and resolutions kept (100 %).
    assert row.quality_score == 62.5
    assert row.training_examples_created == 0


def test_each_ai_models_day_with_its_calibration(history):
    services.rollup_day(DAY)

    a_name, b_name = history["models"]
    a = ModelPerformance.objects.get(day=DAY, ai_model=a_name)
    assert (a.requests, a.resolutions, a.escalations, a.questions) == (2, 2, 0, 0)
    # T2's resolution was reopened two days later: only T1's counts as a success.
    assert a.successful_resolutions == 1
    assert a.avg_confidence == pytest.approx(0.885)
    assert (a.high_confidence, a.low_confidence) == (2, 0)
    assert (a.input_tokens, a.output_tokens, a.cost_usd) == (300, 130, Decimal("0.03"))
    assert a.cost_per_request == Decimal("0.015")
    assert (a.satisfaction_count, a.satisfaction_average) == (1, 5.0)
    assert (a.positive_ratings, a.negative_ratings) == (1, 0)
    assert a.calibration == _calibration(b8=(1, 0), b9=(1, 1))

    b = ModelPerformance.objects.get(day=DAY, ai_model=b_name)
    assert (b.requests, b.successful_resolutions, b.escalations, b.questions) == (2, 0, 1, 1)
    assert (b.high_confidence, b.low_confidence) == (0, 1)
    assert b.satisfaction_average is None
    assert b.calibration == _calibration(b3=(1, 0), b6=(1, 0))


def test_a_resolution_reopened_after_a_week_still_counts_as_successful(history):
    t1 = history["tickets"][0]
    from support import services as support_services
    from tests.analytics.conftest import clock, local

    with clock(local(next_day(8), 10)):
        support_services.message_add(ticket=t1, author=t1.requester, body="Again?")
    services.rollup_day(DAY)

    a = ModelPerformance.objects.get(day=DAY, ai_model=history["models"][0])
    assert a.successful_resolutions == 1


def test_articles_and_content_gaps(history):
    article = history["article"]
    metric_increment([article.pk], day=DAY, views=3, not_helpful_votes=1)
    services.rollup_day(DAY)

    row = ArticlePerformance.objects.get(day=DAY, article=article)
    assert (row.views, row.not_helpful_votes, row.helpful_votes) == (3, 1, 0)
    assert (row.cited_rated, row.cited_rated_low) == (1, 0)  # T1 cites it and got a 5

    # "Webhooks retries " (similarity 0.1) and "webhooks retries" (no result) are one gap.
    gap = SearchGap.objects.get(day=DAY)
    assert (gap.query, gap.searches, gap.best_similarity) == ("webhooks retries", 2, 0.1)


def test_a_day_without_activity_has_a_zero_overview_and_no_other_rows(analytics_tz):
    services.rollup_day(DAY)

    day = DailyOverview.objects.get(day=DAY)
    assert (day.tickets_opened, day.backlog, day.ai_requests) == (0, 0, 0)
    assert day.median_first_response_seconds is None and day.csat_average is None
    assert not AgentPerformance.objects.exists()
    assert not ModelPerformance.objects.exists()


def _snapshot():
    def rows(model):
        return sorted(
            (model_to_dict(o, exclude=["computed_at"]) for o in model.objects.all()),
            key=lambda d: d["id"],
        )

    return [rows(m) for m in (DailyOverview, AgentPerformance, ModelPerformance, SearchGap)]


def test_rolling_up_a_day_again_gives_the_same_rows(history):
    services.rollup_day(DAY)
    first = _snapshot()
    services.rollup_day(DAY)
    assert _snapshot() == first


def test_a_scope_without_activity_any_more_loses_its_row(history):
    services.rollup_day(DAY)
    assert AgentPerformance.objects.filter(day=DAY).count() == 1

    history["tickets"][2].delete()  # T3, the agent's only ticket
    services.rollup_day(DAY)

    assert not AgentPerformance.objects.filter(day=DAY).exists()
    assert DailyOverview.objects.get(day=DAY).tickets_resolved == 2


def test_backfill_command_rolls_up_each_day_of_a_range(history, capsys):
    call_command("rollup_analytics", "--start", "2026-06-08", "--end", "2026-06-12")

    days = list(DailyOverview.objects.values_list("day", flat=True))
    assert days == [dt.date(2026, 6, d) for d in range(8, 13)]
    assert "Rolled up 5 day(s) from 2026-06-08 to 2026-06-12" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "2026-06-12", "--end", "2026-06-08"], "is after"),
        (["--start", "yesterday"], "is not a date"),
    ],
)
def test_backfill_command_refuses_a_bad_range(analytics_tz, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("rollup_analytics", *args)


def test_the_nightly_job_catches_up_and_refinalizes_the_day_a_week_ago(analytics_tz, settings):
    today = dt.date(2026, 6, 20)
    # Nothing rolled up yet: the last ANALYTICS_CATCH_UP_DAYS days (and day -8, inside).
    settings.ANALYTICS_CATCH_UP_DAYS = 3
    assert services.days_to_roll_up(today) == [
        dt.date(2026, 6, 12),
        dt.date(2026, 6, 17),
        dt.date(2026, 6, 18),
        dt.date(2026, 6, 19),
    ]
    services.rollup_day(dt.date(2026, 6, 18))
    assert services.days_to_roll_up(today) == [dt.date(2026, 6, 12), dt.date(2026, 6, 19)]
    services.rollup_day(dt.date(2026, 6, 19))
    # Already up to date: yesterday is recomputed anyway (late events), with day -8.
    assert services.days_to_roll_up(today) == [dt.date(2026, 6, 12), dt.date(2026, 6, 19)]


def test_the_nightly_task_runs_each_pending_day(
    history, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    monkeypatch.setattr(services, "local_today", lambda: next_day())
    app.conf.task_always_eager = True
    try:
        # Each day is scheduled through the outbox: handed over once committed.
        with django_capture_on_commit_callbacks(execute=True):
            days = tasks.rollup_pending()
    finally:
        app.conf.task_always_eager = False

    assert days[-1] == DAY.isoformat()
    assert DailyOverview.objects.get(day=DAY).tickets_opened == 3


def test_the_days_openings_by_channel_add_up_to_its_openings(history, customer):
    open_ticket(customer, local(DAY, 10), channel="email")
    open_ticket(customer, local(DAY, 11), channel="email")
    open_ticket(customer, local(DAY, 12, 30), channel="chat")
    services.rollup_day(DAY)

    day = DailyOverview.objects.get(day=DAY)
    by_channel = (day.opened_web, day.opened_email, day.opened_chat, day.opened_api)
    assert by_channel == (3, 2, 1, 0)
    assert sum(by_channel) == day.tickets_opened == 6


def test_the_migration_fills_the_channels_of_days_rolled_up_before_it(history, customer):
    import importlib
    from types import SimpleNamespace

    from django.db import connection

    migration = importlib.import_module("analytics.migrations.0002_opened_by_channel")
    open_ticket(customer, local(DAY, 10), channel="email")
    services.rollup_day(DAY)
    DailyOverview.objects.filter(day=DAY).update(opened_web=0, opened_email=0)  # as before

    migration.fill_past_days(None, SimpleNamespace(connection=connection))

    day = DailyOverview.objects.get(day=DAY)
    assert (day.opened_web, day.opened_email, day.opened_chat, day.tickets_opened) == (3, 1, 0, 4)
