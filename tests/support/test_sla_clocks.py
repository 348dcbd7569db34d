"""The SLA clocks of a ticket in business time, through support's services: first
response, next response, resolution paused while awaiting the customer, priority
changes, breaches, the at-risk window, and the readers (feed, queue filter, API, beat).

The office: Mon–Fri 09:00–17:00 Europe/Berlin. January 2026: Friday the 9th, Monday the
12th, Tuesday the 13th, Wednesday the 14th, Thursday the 15th. Times are Berlin times.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from support import selectors, services
from support.models import BusinessCalendar, BusinessHours, SlaPolicy, SlaTarget, Ticket

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(day, hour, minute=0):
    return datetime(2026, 1, day, hour, minute, tzinfo=BERLIN)


class Clock:
    def __init__(self, monkeypatch):
        real = timezone.now
        self.now = None
        monkeypatch.setattr(timezone, "now", lambda: self.now or real())

    def at(self, moment):
        self.now = moment
        return moment


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def office_policy(org_a, manager, settings):
    settings.HELPDESK_SLA_AT_RISK_HOURS = 4
    calendar = services.business_calendar_save(
        calendar=BusinessCalendar(name="Berlin office", time_zone="Europe/Berlin"),
        actor=manager,
        hours=[BusinessHours(weekday=d, start_time=time(9), end_time=time(17)) for d in range(5)],
    )
    policy = services.sla_policy_save(
        policy=SlaPolicy(name="Office", calendar=calendar),
        actor=manager,
        targets=[
            # minutes: first response, next response, resolution
            SlaTarget(
                priority="normal",
                first_response_minutes=480,
                next_response_minutes=240,
                resolution_minutes=960,
            ),
            SlaTarget(
                priority="high",
                first_response_minutes=300,
                next_response_minutes=60,
                resolution_minutes=960,
            ),
            SlaTarget(
                priority="urgent",
                first_response_minutes=60,
                next_response_minutes=30,
                resolution_minutes=240,
            ),
        ],
    )
    org_a.sla_policy = policy
    org_a.save()
    return policy


def _open(customer, priority="normal"):
    return services.ticket_open(
        requester=customer, subject="Export broken", description="Spins.", priority=priority
    )


def _fresh(ticket):
    return Ticket.objects.get(pk=ticket.pk)


pytestmark = pytest.mark.django_db


def test_due_times_at_opening_count_business_hours(clock, customer, office_policy):
    clock.at(berlin(9, 16))  # Friday 16:00

    ticket = _fresh(_open(customer))

    # First response, 8 business hours: Friday 16–17 (1), Monday 09:00 + 7 = Monday 16:00.
    assert ticket.first_response_due_at == berlin(12, 16)
    # Resolution, 16: Friday 1, Monday 8, Tuesday 09:00 + 7 = Tuesday 16:00.
    assert ticket.resolution_due_at == berlin(13, 16)
    assert ticket.next_response_due_at is None
    assert ticket.sla_due_at == berlin(12, 16)  # the nearest
    # At risk 4 business hours before Monday 16:00: Monday 12:00.
    assert ticket.sla_at_risk_at == berlin(12, 12)


def test_a_holiday_pushes_the_due_times_a_day(clock, customer, office_policy, manager):
    calendar = office_policy.calendar
    services.business_calendar_save(
        calendar=calendar,
        actor=manager,
        holidays=[services_holiday(2026, 1, 12, "Staff day")],
    )
    clock.at(berlin(9, 16))

    ticket = _fresh(_open(customer))

    # Monday is off: Friday 1 hour, Tuesday 09:00 + 7 = Tuesday 16:00.
    assert ticket.first_response_due_at == berlin(13, 16)


def services_holiday(year, month, day, name):
    from datetime import date

    from support.models import Holiday

    return Holiday(date=date(year, month, day), name=name)


def test_awaiting_the_customer_pauses_and_a_reply_resumes_with_the_rest(
    clock, customer, agent, office_policy
):
    clock.at(berlin(9, 16))
    ticket = _open(customer)

    clock.at(berlin(12, 10))  # Monday 10:00: the agent answers
    services.message_add(ticket=ticket, author=agent, body="Try again now?")
    ticket = _fresh(ticket)

    assert ticket.status == "awaiting_customer"
    assert ticket.first_response_due_at is None  # met
    assert ticket.sla_paused_at == berlin(12, 10)
    assert ticket.sla_business_seconds == 2 * 3600  # Friday 16–17, Monday 09–10
    assert ticket.resolution_due_at is None
    assert ticket.sla_due_at is None and ticket.sla_at_risk_at is None
    assert ticket.sla_breached_at is None

    clock.at(berlin(14, 11))  # two days later, Wednesday 11:00: the customer writes
    services.message_add(ticket=ticket, author=customer, body="Still broken.")
    ticket = _fresh(ticket)

    assert ticket.sla_paused_at is None
    # 16 - 2 = 14 hours left: Wednesday 11–17 (6), Thursday 09–17 (8) = Thursday 17:00.
    assert ticket.resolution_due_at == berlin(15, 17)
    # Next response, 4 hours: Wednesday 15:00, the nearest due time now.
    assert ticket.next_response_due_at == berlin(14, 15)
    assert ticket.sla_due_at == berlin(14, 15)

    clock.at(berlin(14, 14))  # the agent answers in time
    services.message_add(ticket=ticket, author=agent, body="Fixed.")
    ticket = _fresh(ticket)

    assert ticket.next_response_due_at is None
    assert ticket.sla_business_seconds == 5 * 3600  # 2 + Wednesday 11–14
    assert ticket.sla_breached_at is None


def test_a_late_first_response_is_a_breach_at_its_due_time(clock, customer, agent, office_policy):
    clock.at(berlin(9, 16))
    ticket = _open(customer)

    clock.at(berlin(13, 10))  # Tuesday 10:00, after Monday 16:00
    services.message_add(ticket=ticket, author=agent, body="Sorry for the wait.")

    assert _fresh(ticket).sla_breached_at == berlin(12, 16)


def test_the_ai_answering_is_a_first_response(clock, customer, office_policy):
    clock.at(berlin(9, 16))
    ticket = _open(customer)

    clock.at(berlin(9, 16, 5))
    services.message_add(ticket=ticket, author=None, body="Try this.", sender_kind="ai")
    ticket = _fresh(ticket)

    assert ticket.first_response_due_at is None
    assert ticket.sla_due_at == berlin(13, 16)  # only the resolution clock runs


def test_a_priority_change_recomputes_the_running_clocks(clock, customer, agent, office_policy):
    clock.at(berlin(9, 16))
    ticket = _open(customer)

    clock.at(berlin(12, 9, 30))
    services.ticket_change_priority(ticket=ticket, priority="urgent", actor=agent)
    ticket = _fresh(ticket)

    # Urgent: first response 1 hour from opening = Friday 17:00 (already past);
    # resolution 4 hours from opening: Friday 1 + Monday 09:00 + 3 = Monday 12:00.
    assert ticket.first_response_due_at == berlin(9, 17)
    assert ticket.resolution_due_at == berlin(12, 12)
    assert ticket.sla_due_at == berlin(9, 17)

    stamped = services.ticket_sla_stamp_breaches(now=berlin(12, 9, 31))

    assert stamped == [ticket.pk]
    assert _fresh(ticket).sla_breached_at == berlin(9, 17)
    assert services.ticket_sla_stamp_breaches(now=berlin(12, 9, 32)) == []  # once


def test_resolving_stops_and_reopening_resumes_with_the_time_left(
    clock, customer, agent, office_policy
):
    clock.at(berlin(9, 16))
    ticket = _open(customer)

    clock.at(berlin(12, 11))  # Monday 11:00, resolved without a reply
    services.ticket_resolve(ticket=ticket, actor=agent)
    ticket = _fresh(ticket)

    assert ticket.sla_business_seconds == 3 * 3600  # Friday 1, Monday 2
    assert ticket.first_response_due_at is None
    assert ticket.sla_at_risk_at is None
    assert ticket.sla_due_at == berlin(13, 16)  # the resolution due time it had: met
    assert not ticket.sla_breached(berlin(12, 11))

    clock.at(berlin(13, 10))  # Tuesday 10:00, the customer writes again: reopened
    services.message_add(ticket=ticket, author=customer, body="It broke again.")
    ticket = _fresh(ticket)

    assert ticket.status == "new"
    # 16 - 3 = 13 hours: Tuesday 10–17 (7), Wednesday 09:00 + 6 = Wednesday 15:00.
    assert ticket.resolution_due_at == berlin(14, 15)
    # Nobody has answered since: a response is owed, 4 hours = Tuesday 14:00.
    assert ticket.next_response_due_at == berlin(13, 14)
    assert ticket.sla_due_at == berlin(13, 14)


def test_the_at_risk_window_counts_business_hours(clock, customer, office_policy, agent):
    clock.at(berlin(9, 13, 30))  # Friday 13:30, high: first response in 5 hours
    ticket = _fresh(_open(customer, priority="high"))

    # Friday 13:30–17:00 (3.5) + Monday 09:00–10:30 (1.5): due Monday 10:30; the last 4
    # business hours start Friday 14:30 (Monday 1.5 + Friday 16:30 back to 14:30 is 2.5).
    assert ticket.first_response_due_at == berlin(12, 10, 30)
    assert ticket.sla_at_risk_at == berlin(9, 14, 30)

    def in_at_risk_bucket(now):
        return ticket.reference in [
            t.reference
            for t in selectors.feed_tickets(user=agent, filter="all", now=now)["at_risk"]
        ]

    assert not in_at_risk_bucket(berlin(9, 14))
    # 68 wall-clock hours before the due time, but only 4 business hours.
    assert in_at_risk_bucket(berlin(9, 14, 30))
    assert selectors.feed_buckets_of(_fresh(ticket), berlin(9, 14, 30)) == ["new", "at_risk"]

    from support.admin.tickets import SlaFilter

    def queue(value, now):
        clock.at(now)
        sla_filter = SlaFilter(None, {"sla": [value]}, Ticket, None)
        return list(sla_filter.queryset(None, Ticket.objects.all()).values_list("pk", flat=True))

    assert queue("at_risk", berlin(9, 14)) == []
    assert queue("at_risk", berlin(9, 14, 30)) == [ticket.pk]
    assert queue("breached", berlin(12, 10)) == []
    assert queue("breached", berlin(12, 10, 31)) == [ticket.pk]


def test_the_beat_announces_the_at_risk_crossing_and_stamps_the_breach(
    clock, customer, office_policy
):
    from support.tasks import announce_sla_risk

    clock.at(berlin(9, 13, 30))
    ticket = _open(customer, priority="high")

    clock.at(berlin(9, 14, 31))
    assert announce_sla_risk() == 1  # crossed Friday 14:30
    clock.at(berlin(9, 14, 32))
    assert announce_sla_risk() == 0  # once
    assert _fresh(ticket).sla_breached_at is None

    clock.at(berlin(12, 10, 31))
    assert announce_sla_risk() == 1  # due Monday 10:30 passed
    assert _fresh(ticket).sla_breached_at == berlin(12, 10, 30)


def test_paused_tickets_in_the_queue_and_the_api(customer, agent, office_policy, client):
    ticket = _open(customer)
    services.message_add(ticket=ticket, author=agent, body="Which browser?")
    other = _open(customer)

    assert list(Ticket.objects.sla_paused()) == [_fresh(ticket)]
    client.force_login(agent)
    response = client.get("/api/tickets/", {"sla": "paused"})
    assert response.status_code == 200
    references = [row["reference"] for row in response.json()["results"]]
    assert references == [ticket.reference]
    assert other.reference not in references

    detail = client.get(f"/api/tickets/{ticket.reference}/").json()
    assert detail["sla_paused_at"] is not None
    assert detail["resolution_due_at"] is None
    assert detail["first_response_due_at"] is None

    response = client.get("/admin/support/ticket/", {"sla": "paused"})
    assert response.status_code == 200
    assert "paused" in response.content.decode()


def test_without_a_calendar_the_clocks_run_around_the_clock(clock, other_customer):
    clock.at(berlin(9, 16))

    ticket = _fresh(_open(other_customer, priority="low"))

    hours = SlaPolicy.objects.get(is_default=True).low_hours
    assert ticket.sla_due_at == berlin(9, 16) + timedelta(hours=hours)
    assert ticket.sla_at_risk_at == ticket.sla_due_at - timedelta(hours=4)


def test_dashboards_count_a_late_first_response_as_a_breach(
    clock, customer, agent, office_policy, settings
):
    from analytics import services as analytics
    from analytics.models import DailyOverview

    settings.ANALYTICS_TIME_ZONE = "Europe/Berlin"
    clock.at(berlin(9, 16))
    ticket = _open(customer)
    clock.at(berlin(13, 10))  # Tuesday 10:00: answered a day late (due Monday 16:00) …
    services.message_add(ticket=ticket, author=agent, body="Sorry.")
    clock.at(berlin(13, 11))  # … and resolved in time (resolution due Tuesday 16:00)
    services.ticket_resolve(ticket=ticket, actor=agent)
    clock.now = None

    analytics.rollup_day(berlin(12, 0).date())
    analytics.rollup_day(berlin(13, 0).date())

    assert DailyOverview.objects.get(day=berlin(12, 0).date()).sla_breaches == 1  # Monday
    assert DailyOverview.objects.get(day=berlin(13, 0).date()).sla_breaches == 0
