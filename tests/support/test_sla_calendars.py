"""Business time (support.sla): due times computed by hand, holidays, daylight saving
time in European and US zones, the inverse used for time-rule cut-offs, and which
calendar a ticket's clocks run on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from support import sla
from support.models import BusinessCalendar, BusinessHours, Organization, SlaPolicy, Ticket
from tests.factories import CustomerFactory, OrganizationFactory

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def office(zone="Europe/Berlin", holidays=()):
    """Mon–Fri 09:00–17:00."""
    return sla.BusinessTime(
        time_zone=zone,
        week={day: [(time(9), time(17))] for day in range(5)},
        holidays=frozenset(holidays),
    )


def always(zone):
    """Every day 00:00–24:00 in ``zone``: wall-clock days of their real length."""
    return sla.BusinessTime(time_zone=zone, week={day: [(time(0), time(0))] for day in range(7)})


def berlin(*args):
    return datetime(*args, tzinfo=BERLIN)


class TestOfficeHours:
    def test_friday_afternoon_plus_eight_business_hours_is_monday_afternoon(self):
        # Opened Friday 2026-01-09 16:00: Friday 16:00–17:00 uses 1 hour, the weekend
        # is closed, Monday 09:00 + the 7 hours left = Monday 16:00.
        start = berlin(2026, 1, 9, 16)
        assert start.weekday() == 4

        assert office().add(start, 8 * H) == berlin(2026, 1, 12, 16)

    def test_a_holiday_in_between_pushes_it_a_day(self):
        # Monday 2026-01-12 is a holiday: Friday 1 hour, Tuesday 09:00 + 7 = 16:00.
        hours = office(holidays=[date(2026, 1, 12)])

        assert hours.add(berlin(2026, 1, 9, 16), 8 * H) == berlin(2026, 1, 13, 16)

    def test_opened_while_closed_starts_counting_at_the_next_opening(self):
        # Saturday 10:00: nothing counts before Monday 09:00; + 2 hours = 11:00.
        assert office().add(berlin(2026, 1, 10, 10), 2 * H) == berlin(2026, 1, 12, 11)

    def test_a_target_ending_exactly_at_closing_is_due_at_closing(self):
        assert office().add(berlin(2026, 1, 12, 9), 8 * H) == berlin(2026, 1, 12, 17)

    def test_several_intervals_a_day(self):
        # 09:00–12:00 and 13:00–17:00; 11:00 + 2 hours: 11–12 is one, 13–14 the other.
        hours = sla.BusinessTime(
            time_zone="Europe/Berlin",
            week={0: [(time(13), time(17)), (time(9), time(12))]},
        )
        assert hours.add(berlin(2026, 1, 12, 11), 2 * H) == berlin(2026, 1, 12, 14)
        assert hours.between(berlin(2026, 1, 12, 8), berlin(2026, 1, 12, 18)) == 7 * H

    def test_is_open(self):
        hours = office(holidays=[date(2026, 1, 13)])

        assert hours.is_open(berlin(2026, 1, 12, 9))
        assert hours.is_open(berlin(2026, 1, 12, 16, 59))
        assert not hours.is_open(berlin(2026, 1, 12, 17))  # closing time is closed
        assert not hours.is_open(berlin(2026, 1, 12, 8, 59))
        assert not hours.is_open(berlin(2026, 1, 10, 12))  # Saturday
        assert not hours.is_open(berlin(2026, 1, 13, 12))  # the holiday
        # 08:30 UTC is 09:30 in Berlin in winter.
        assert hours.is_open(datetime(2026, 1, 12, 8, 30, tzinfo=UTC))

    def test_between_counts_only_open_time(self):
        # Friday 16:00 → Monday 10:00: 1 hour on Friday, 1 on Monday.
        assert office().between(berlin(2026, 1, 9, 16), berlin(2026, 1, 12, 10)) == 2 * H
        assert office().between(berlin(2026, 1, 12, 10), berlin(2026, 1, 9, 16)) == -2 * H

    def test_subtract_is_the_latest_start_that_adds_up_to_the_end(self):
        # 8 business hours before Monday 16:00: Monday 09–16 is 7, Friday 16–17 is 1.
        hours = office()
        assert hours.subtract(berlin(2026, 1, 12, 16), 8 * H) == berlin(2026, 1, 9, 16)
        # Ending at an opening: the latest start is the previous closing minus the rest.
        assert hours.subtract(berlin(2026, 1, 12, 9), 1 * H) == berlin(2026, 1, 9, 16)

    @pytest.mark.parametrize("minutes", [1, 59, 60, 61, 479, 480, 481, 2400, 10000])
    @pytest.mark.parametrize("start_hour", [9, 12, 16])
    def test_subtract_undoes_add_from_open_time(self, minutes, start_hour):
        hours = office(holidays=[date(2026, 1, 14)])
        start = berlin(2026, 1, 12, start_hour, 7)
        delta = timedelta(minutes=minutes)

        end = hours.add(start, delta)

        assert hours.subtract(end, delta) == start
        assert hours.between(start, end) == delta

    def test_a_calendar_without_hours_refuses_to_count(self):
        empty = sla.BusinessTime(time_zone="UTC", week={})
        with pytest.raises(ValueError):
            empty.add(berlin(2026, 1, 12, 9), H)


class TestDaylightSavingTime:
    def test_europe_spring_forward_day_has_23_hours(self):
        # Sunday 2026-03-29 02:00 CET → 03:00 CEST (last Sunday of March).
        hours = always("Europe/Berlin")
        assert hours.between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
        # A Saturday-noon start + 24 business hours is Sunday 13:00 local (one hour lost).
        assert hours.add(berlin(2026, 3, 28, 12), 24 * H) == berlin(2026, 3, 29, 13)

    def test_europe_fall_back_day_has_25_hours(self):
        # Sunday 2026-10-25 03:00 CEST → 02:00 CET (last Sunday of October).
        hours = always("Europe/Berlin")
        assert hours.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H
        assert hours.add(berlin(2026, 10, 24, 12), 24 * H) == berlin(2026, 10, 25, 11)

    def test_europe_office_hours_keep_local_time_across_the_change(self):
        # Friday 2026-03-27 16:00 CET (15:00 UTC) + 2 business hours: 1 on Friday, then
        # Monday 09:00 CEST + 1 = 10:00 CEST, which is 08:00 UTC (not 09:00).
        due = office().add(berlin(2026, 3, 27, 16), 2 * H)
        assert due == datetime(2026, 3, 30, 8, tzinfo=UTC)
        assert due.astimezone(BERLIN).hour == 10

    def test_an_interval_over_the_missing_hour_is_shorter(self):
        # Sunday 00:00–06:00 on 2026-03-29: 02:00–03:00 does not exist, so 5 hours.
        hours = sla.BusinessTime(time_zone="Europe/Berlin", week={6: [(time(0), time(6))]})
        assert hours.between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 5 * H
        # … and 7 hours on 2026-10-25, when 02:00–03:00 happens twice.
        assert hours.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 7 * H

    def test_united_states_days_of_23_and_25_hours(self):
        # America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
        hours = always("America/New_York")
        ny = lambda *a: datetime(*a, tzinfo=NEW_YORK)  # noqa: E731
        assert hours.between(ny(2026, 3, 8), ny(2026, 3, 9)) == 23 * H
        assert hours.between(ny(2026, 11, 1), ny(2026, 11, 2)) == 25 * H
        # The last Sundays of March and October are ordinary 24-hour days there.
        assert hours.between(ny(2026, 3, 29), ny(2026, 3, 30)) == 24 * H
        assert hours.between(ny(2026, 10, 25), ny(2026, 10, 26)) == 24 * H

    def test_united_states_office_hours_across_the_change(self):
        # Friday 2026-03-06 16:00 EST (21:00 UTC) + 2 business hours → Monday 2026-03-09
        # 10:00 EDT = 14:00 UTC (15:00 UTC had the offset not changed).
        due = office("America/New_York").add(datetime(2026, 3, 6, 16, tzinfo=NEW_YORK), 2 * H)
        assert due == datetime(2026, 3, 9, 14, tzinfo=UTC)
        # Friday 2026-10-30 16:00 EDT + 2 → Monday 2026-11-02 10:00 EST = 15:00 UTC.
        due = office("America/New_York").add(datetime(2026, 10, 30, 16, tzinfo=NEW_YORK), 2 * H)
        assert due == datetime(2026, 11, 2, 15, tzinfo=UTC)

    def test_subtract_undoes_add_across_the_changes(self):
        for zone, day in [("Europe/Berlin", 29), ("America/New_York", 8)]:
            hours = always(zone)
            start = datetime(2026, 3, day - 1, 20, 30, tzinfo=ZoneInfo(zone))
            end = hours.add(start, 10 * H)
            assert hours.subtract(end, 10 * H) == start
            assert end - start == 10 * H  # around the clock, real hours


class TestAroundTheClock:
    def test_counts_every_instant(self):
        clock = sla.AROUND_THE_CLOCK
        start = berlin(2026, 1, 10, 10)
        assert clock.is_open(start)
        assert clock.add(start, 8 * H) == start + 8 * H
        assert clock.subtract(start, 8 * H) == start - 8 * H
        assert clock.between(start, start + 3 * H) == 3 * H


def test_time_zones_are_checked():
    assert sla.valid_time_zone("Europe/Berlin")
    assert not sla.valid_time_zone("Mars/Olympus")
    assert not sla.valid_time_zone("")


# ---- which calendar a ticket uses --------------------------------------------------------


@pytest.fixture
def calendars(db, manager):
    from support import services

    def make(name, zone):
        return services.business_calendar_save(
            calendar=BusinessCalendar(name=name, time_zone=zone),
            actor=manager,
            hours=[
                BusinessHours(weekday=d, start_time=time(9), end_time=time(17)) for d in range(5)
            ],
        )

    return make("Berlin office", "Europe/Berlin"), make("New York office", "America/New_York")


def _ticket_for(org):
    from support import services

    customer = CustomerFactory(profile__organization=org)
    return services.ticket_open(requester=customer, subject="Help", description="Please.")


@pytest.mark.django_db
def test_own_policy_then_plan_policy_then_default(calendars, manager):
    berlin_office, new_york_office = calendars
    own = SlaPolicy.objects.create(name="Own", calendar=berlin_office)
    SlaPolicy.objects.create(name="Enterprise", calendar=new_york_office, plan="enterprise")
    with_own = OrganizationFactory(name="Own Co", plan="enterprise", sla_policy=own)
    by_plan = OrganizationFactory(name="Plan Co", plan="enterprise")
    by_default = OrganizationFactory(name="Default Co", plan="free")

    assert sla.calendar_for_organization(with_own).key == berlin_office.pk
    assert sla.calendar_for_organization(by_plan).key == new_york_office.pk
    assert sla.calendar_for_organization(by_default) is sla.AROUND_THE_CLOCK  # default: 24/7
    assert sla.calendar_for_organization(None) is sla.AROUND_THE_CLOCK
    ticket = _ticket_for(by_plan)
    assert sla.calendar_for_ticket(ticket).time_zone == "America/New_York"


@pytest.mark.django_db
def test_calendars_in_use_select_each_ticket_exactly_once(calendars, customer):
    berlin_office, new_york_office = calendars
    default = SlaPolicy.objects.get(is_default=True)
    default.calendar = berlin_office
    default.save()
    own = SlaPolicy.objects.create(name="Own", calendar=new_york_office)
    SlaPolicy.objects.create(name="Business", plan="business")  # around the clock
    tickets = {
        "own": _ticket_for(OrganizationFactory(name="A", plan="free", sla_policy=own)),
        "plan": _ticket_for(OrganizationFactory(name="B", plan="business")),
        "default": _ticket_for(OrganizationFactory(name="C", plan="starter")),
    }
    from support import services

    tickets["no organization"] = services.ticket_open(
        requester=CustomerFactory(profile__organization=None), subject="Hi", description="?"
    )

    in_use = sla.calendars_in_use()

    keys = [hours.key for hours, _ in in_use]
    assert sorted(keys, key=lambda k: k or 0) == [None, berlin_office.pk, new_york_office.pk]
    chosen = {
        pk: hours.key
        for hours, q in in_use
        for pk in Ticket.objects.filter(q).values_list("pk", flat=True)
    }
    expected = {
        tickets["own"].pk: new_york_office.pk,
        tickets["plan"].pk: None,
        tickets["default"].pk: berlin_office.pk,
        tickets["no organization"].pk: berlin_office.pk,
    }
    assert {pk: chosen[pk] for pk in expected} == expected
    # Disjoint and complete over every ticket.
    total = sum(Ticket.objects.filter(q).count() for _, q in in_use)
    assert total == Ticket.objects.count()


@pytest.mark.django_db
def test_a_changed_calendar_is_reloaded(calendars, manager):
    from support import services

    berlin_office, _ = calendars
    policy = SlaPolicy.objects.create(name="Own", calendar=berlin_office)
    org = OrganizationFactory(name="Own Co", sla_policy=policy)
    assert sla.calendar_for_organization(org).week[5] == ()

    services.business_calendar_save(
        calendar=BusinessCalendar.objects.get(pk=berlin_office.pk),
        actor=manager,
        hours=[BusinessHours(weekday=5, start_time=time(10), end_time=time(14))],
    )

    hours = sla.calendar_for_organization(Organization.objects.get(pk=org.pk))
    assert hours.week[5] == ((time(10), time(14)),)
    assert hours.week[0] == ()


@pytest.mark.django_db
def test_a_loaded_calendar_answers_without_queries(calendars, django_assert_num_queries):
    berlin_office, _ = calendars
    calendar = BusinessCalendar.objects.get(pk=berlin_office.pk)
    sla.hours_for_calendar(calendar)  # loads it once

    with django_assert_num_queries(0):
        hours = sla.hours_for_calendar(calendar)
        assert hours.add(berlin(2026, 1, 9, 16), 8 * H) == berlin(2026, 1, 12, 16)
        assert hours.is_open(berlin(2026, 1, 12, 10))
