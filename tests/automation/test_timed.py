"""The time-rule sweep: delays in minutes, local days across DST, business time with
holidays, SLA triggers, idempotency, and a rule firing again on a new anchor."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import connections

from automation import actions, timed
from automation.models import Rule, RuleFiring
from core.clock import set_clock
from support import services
from support.models import BusinessCalendar, BusinessHours, Holiday, SlaPolicy, Ticket

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def _only_these_rules(db):
    Rule.objects.filter(is_default=True).update(is_enabled=False)


def time_rule(
    name="Nudge",
    *,
    since="status_entered",
    delay=20,
    unit="minutes",
    status=None,
    extra=(),
    actions_=None,
    **fields,
):
    conditions = [{"field": "status", "operator": "is", "value": status}] if status else []
    return Rule.objects.create(
        name=name,
        trigger=fields.pop("trigger", "time_elapsed"),
        since=since,
        delay=delay,
        delay_unit=unit,
        conditions={"match": "all", "conditions": [*conditions, *extra]},
        actions=actions.validate(actions_ or [{"type": "add_note", "body": name}]),
        is_enabled=True,
        **fields,
    )


def awaiting(customer, agent, at):
    """A ticket that has awaited the customer since ``at``."""
    with set_clock(at):
        ticket = services.ticket_open(requester=customer, subject="Export", description="Help")
        services.message_add(ticket=ticket, author=agent, body="Which browser?")
    ticket.refresh_from_db()
    assert ticket.status == "awaiting_customer" and ticket.status_changed_at == at
    return ticket


def berlin_calendar(*, hours=True, holidays=()):
    calendar = BusinessCalendar.objects.create(name="Berlin office", time_zone="Europe/Berlin")
    if hours:
        for weekday in range(5):
            BusinessHours.objects.create(
                calendar=calendar,
                weekday=weekday,
                start_time=dt.time(9),
                end_time=dt.time(17),
            )
    for day in holidays:
        Holiday.objects.create(calendar=calendar, date=day, name="Holiday")
    SlaPolicy.objects.update(is_default=False)
    SlaPolicy.objects.create(name="Office hours", calendar=calendar, is_default=True)
    return calendar


def fired(rule):
    return RuleFiring.objects.filter(rule=rule).count()


T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def test_a_minutes_rule_fires_once_when_due(customer, agent):
    ticket = awaiting(customer, agent, T0)
    rule = time_rule(status="awaiting_customer")

    assert timed.run_time_rules(now=T0 + dt.timedelta(minutes=19)) == {}
    assert timed.run_time_rules(now=T0 + dt.timedelta(minutes=20)) == {"Nudge": 1}
    assert timed.run_time_rules(now=T0 + dt.timedelta(minutes=25)) == {}  # idempotent

    firing = RuleFiring.objects.get(rule=rule)
    assert (firing.ticket, firing.key, firing.anchor_at) == (ticket, T0.isoformat(), T0)
    assert ticket.messages.filter(sender_kind="system", body="Nudge").count() == 1
    assert ticket.events.filter(kind="rule_applied").count() == 1


def test_the_sweep_twice_at_once_fires_once(customer, agent):
    ticket = awaiting(customer, agent, T0)
    rule = time_rule(status="awaiting_customer")
    later = T0 + dt.timedelta(hours=1)
    # Another sweep already fired this anchor (e.g. a concurrent run): the key refuses it.
    timed._fire_one(rule, ticket.pk, "status_changed_at", T0, later)
    assert timed._fire_one(rule, ticket.pk, "status_changed_at", T0, later) is False
    assert fired(rule) == 1


def test_re_entering_the_status_fires_again(customer, agent):
    ticket = awaiting(customer, agent, T0)
    rule = time_rule(status="awaiting_customer")
    timed.run_time_rules(now=T0 + dt.timedelta(minutes=30))

    back = T0 + dt.timedelta(hours=2)
    with set_clock(back):
        services.message_add(ticket=ticket, author=customer, body="Firefox")
        services.message_add(ticket=ticket, author=agent, body="Which version?")
    again = back + dt.timedelta(minutes=30)
    assert timed.run_time_rules(now=again) == {"Nudge": 1}
    assert fired(rule) == 2
    assert sorted(RuleFiring.objects.values_list("anchor_at", flat=True)) == [T0, back]


def test_a_ticket_that_left_the_status_is_not_touched(customer, agent):
    ticket = awaiting(customer, agent, T0)
    time_rule(status="awaiting_customer")
    with set_clock(T0 + dt.timedelta(minutes=5)):
        services.message_add(ticket=ticket, author=customer, body="Firefox")
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=1)) == {}


def test_the_other_conditions_are_checked_in_python(customer, agent):
    awaiting(customer, agent, T0)
    time_rule(
        status="awaiting_customer",
        extra=[{"field": "priority", "operator": "is", "value": "urgent"}],
    )
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=1)) == {}


def test_the_status_condition_and_the_anti_join_are_in_the_query():
    rule = time_rule(status="awaiting_customer")
    sql = str(timed.due_tickets(rule, T0).query)
    assert '"support_ticket"."status" = awaiting_customer' in sql
    assert "status_changed_at" in sql and "EXISTS" in sql and "anchor_at" in sql


def test_since_created_in_hours(customer):
    with set_clock(T0):
        ticket = services.ticket_open(requester=customer, subject="Old", description="Help")
    rule = time_rule(since="created", delay=4, unit="hours")
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=3, minutes=59)) == {}
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=4)) == {"Nudge": 1}
    assert RuleFiring.objects.get(rule=rule).ticket == ticket


def test_seven_days_across_the_end_of_summer_time_are_seven_local_days(customer, agent):
    berlin_calendar()
    # Thursday 22 October 2026, 12:00 in Berlin (CEST, UTC+2); summer time ends on Sunday
    # 25 October, so 7 local days later is Thursday 29 October 12:00 CET (UTC+1): 169 h.
    resolved_at = dt.datetime(2026, 10, 22, 12, tzinfo=BERLIN)
    with set_clock(resolved_at - dt.timedelta(hours=1)):
        ticket = services.ticket_open(requester=customer, subject="Done", description="Help")
    with set_clock(resolved_at):
        services.ticket_resolve(ticket=ticket, actor=agent)
    rule = time_rule(
        "Close",
        since="resolved",
        delay=7,
        unit="days",
        status="resolved",
        actions_=[{"type": "set_status", "status": "closed"}],
    )

    # (Aware arithmetic in one zone is wall-clock arithmetic: count in UTC.)
    seven_times_24h = resolved_at.astimezone(dt.UTC) + dt.timedelta(hours=168)
    assert timed.run_time_rules(now=seven_times_24h) == {}  # 11:00 local: an hour early
    local_noon = dt.datetime(2026, 10, 29, 12, tzinfo=BERLIN)
    assert local_noon.astimezone(dt.UTC) - resolved_at.astimezone(dt.UTC) == dt.timedelta(hours=169)
    assert timed.run_time_rules(now=local_noon) == {"Close": 1}
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert fired(rule) == 1


def test_days_without_a_calendar_count_in_the_sites_time_zone(customer, agent, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    resolved_at = dt.datetime(2026, 10, 22, 12, tzinfo=BERLIN)
    with set_clock(resolved_at):
        ticket = services.ticket_open(requester=customer, subject="Done", description="Help")
        services.ticket_resolve(ticket=ticket, actor=agent)
    time_rule("Close", since="resolved", delay=7, unit="days", status="resolved")
    assert timed.run_time_rules(now=resolved_at.astimezone(dt.UTC) + dt.timedelta(days=7)) == {}
    assert timed.run_time_rules(now=dt.datetime(2026, 10, 29, 12, tzinfo=BERLIN)) == {"Close": 1}
    assert django_settings.TIME_ZONE == "Europe/Berlin"


def test_business_time_skips_nights_weekends_and_holidays(customer, agent):
    # Monday 9 November 2026 is a holiday in this office.
    berlin_calendar(holidays=[dt.date(2026, 11, 9)])
    friday_4pm = dt.datetime(2026, 11, 6, 16, tzinfo=BERLIN)
    with set_clock(friday_4pm):
        ticket = services.ticket_open(requester=customer, subject="Slow", description="Help")
    rule = time_rule(
        "Two business hours", since="created", delay=2, unit="hours", business_time=True
    )

    # One business hour on Friday, none over the weekend and the holiday.
    assert timed.run_time_rules(now=dt.datetime(2026, 11, 9, 12, tzinfo=BERLIN)) == {}
    assert timed.run_time_rules(now=dt.datetime(2026, 11, 10, 9, 59, tzinfo=BERLIN)) == {}
    assert timed.run_time_rules(now=dt.datetime(2026, 11, 10, 10, tzinfo=BERLIN)) == {
        "Two business hours": 1
    }
    assert RuleFiring.objects.get(rule=rule).ticket == ticket


def test_sla_breached_fires_once_per_due_time(ticket, agent):
    Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=T0)
    rule = time_rule(
        "Breached",
        since="",
        delay=None,
        unit="",
        trigger="sla_breached",
        actions_=[{"type": "set_priority", "priority": "urgent"}],
    )

    assert timed.run_time_rules(now=T0 - dt.timedelta(minutes=1)) == {}
    assert timed.run_time_rules(now=T0 + dt.timedelta(minutes=1)) == {"Breached": 1}
    assert timed.run_time_rules(now=T0 + dt.timedelta(minutes=2)) == {}
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert RuleFiring.objects.get(rule=rule).key == T0.isoformat()


def test_sla_at_risk(ticket):
    column = timed.anchor_column(Rule(trigger="sla_at_risk"))
    Ticket.objects.filter(pk=ticket.pk).update(**{column: T0})
    time_rule("At risk", since="", delay=None, unit="", trigger="sla_at_risk")
    now = T0 + dt.timedelta(minutes=1)
    if column == "sla_due_at":  # before SLA's at-risk column: the due time less the margin
        now = T0 - dt.timedelta(hours=1)
    assert timed.run_time_rules(now=now) == {"At risk": 1}


def test_resolved_tickets_are_not_sla_rule_material(ticket, agent):
    services.ticket_resolve(ticket=ticket, actor=agent)
    Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=T0)
    time_rule("Breached", since="", delay=None, unit="", trigger="sla_breached")
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=1)) == {}


def test_batches_go_on_past_tickets_whose_conditions_fail(customer, agent, settings):
    settings.HELPDESK_RULES_SWEEP_BATCH = 2
    tickets = [awaiting(customer, agent, T0 + dt.timedelta(minutes=i)) for i in range(5)]
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[:3]]).update(priority="low")
    time_rule(
        status="awaiting_customer",
        extra=[{"field": "priority", "operator": "is", "value": "normal"}],
    )
    assert timed.run_time_rules(now=T0 + dt.timedelta(hours=1)) == {"Nudge": 2}


def test_column_conditions_narrow_the_query_itself(customer, agent):
    low, normal = (awaiting(customer, agent, T0 + dt.timedelta(minutes=i)) for i in range(2))
    Ticket.objects.filter(pk=low.pk).update(priority="low")
    rule = time_rule(
        status="awaiting_customer",
        extra=[
            {"field": "priority", "operator": "in", "value": ["normal", "high"]},
            {"field": "team", "operator": "is", "value": "none"},
        ],
    )
    due = timed.due_tickets(rule, T0 + dt.timedelta(hours=1))
    assert list(due.values_list("pk", flat=True)) == [normal.pk]  # low never left the database
    assert '"support_ticket"."team_id" IS NULL' in str(due.query)


def test_a_run_goes_on_where_the_last_one_stopped(customer, agent, settings, monkeypatch):
    """Tickets whose Python-checked conditions fail do not hold up the ones behind them:
    a run looks at MAX_BATCHES batches, the next one goes on from there."""
    settings.HELPDESK_RULES_SWEEP_BATCH = 2
    monkeypatch.setattr(timed, "MAX_BATCHES", 1)
    tickets = [awaiting(customer, agent, T0 + dt.timedelta(minutes=i)) for i in range(5)]
    services.ticket_record_ai_assessment(ticket=tickets[4], confidence=0.5, sentiment=-0.9)
    rule = time_rule(
        status="awaiting_customer",
        extra=[{"field": "sentiment", "operator": "lt", "value": -0.5}],  # Python only
    )
    now = T0 + dt.timedelta(hours=1)
    assert [timed.run_time_rules(now=now) for _ in range(3)] == [{}, {}, {"Nudge": 1}]
    assert RuleFiring.objects.get(rule=rule).ticket == tickets[4]
    assert timed.run_time_rules(now=now) == {}  # back to the start: nothing new


def test_a_sweep_that_comes_while_the_last_still_runs_skips_its_turn(customer, agent):
    awaiting(customer, agent, T0)
    time_rule(status="awaiting_customer")
    later = T0 + dt.timedelta(hours=1)
    other = connections.create_connection("default")  # the run still going, elsewhere
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", list(timed._LOCK))
        assert timed.run_time_rules(now=later) == {}
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(timed._LOCK))
        assert timed.run_time_rules(now=later) == {"Nudge": 1}
    finally:
        other.close()


def test_the_beat_runs_the_sweep_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["automation-time-rules"]
    assert entry["task"] == "automation.tasks.run_time_rules" and entry["schedule"] == 60.0


def test_the_task_runs_the_sweep(customer, agent):
    from automation.tasks import run_time_rules

    awaiting(customer, agent, dt.datetime(2020, 1, 6, 8, tzinfo=dt.UTC))  # long ago
    time_rule(status="awaiting_customer")
    assert run_time_rules.apply().get() == {"Nudge": 1}
    assert run_time_rules.apply().get() == {}
