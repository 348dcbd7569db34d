"""The SLA setup in admin: calendars with inline hours and holidays, policies with
inline targets, saved through the services; the pages render without N+1 queries."""

from __future__ import annotations

from datetime import time

import pytest

from support import services
from support.models import BusinessCalendar, BusinessHours, SlaPolicy

pytestmark = pytest.mark.django_db


def _inline(prefix, rows, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{key}": value for key, value in row.items()})
    return data


def _calendar_form(name="Berlin office", time_zone="Europe/Berlin", hours=(), holidays=()):
    return {
        "name": name,
        "time_zone": time_zone,
        **_inline("hours", list(hours)),
        **_inline("holidays", list(holidays)),
    }


def test_a_calendar_is_added_with_its_hours_and_holidays(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        "/admin/support/businesscalendar/add/",
        _calendar_form(
            hours=[
                {"weekday": "0", "start_time": "09:00", "end_time": "12:00"},
                {"weekday": "0", "start_time": "13:00", "end_time": "17:00"},
            ],
            holidays=[{"date": "2026-12-25", "name": "Christmas"}],
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    calendar = BusinessCalendar.objects.get(name="Berlin office")
    assert calendar.hours.count() == 2
    assert calendar.holidays.get().name == "Christmas"


def test_overlapping_hours_and_a_bad_time_zone_are_shown_on_the_form(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        "/admin/support/businesscalendar/add/",
        _calendar_form(
            time_zone="Europe/Atlantis",
            hours=[
                {"weekday": "0", "start_time": "09:00", "end_time": "12:00"},
                {"weekday": "0", "start_time": "11:00", "end_time": "17:00"},
            ],
        ),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "not a known time zone" in page
    assert "overlaps" in page
    assert not BusinessCalendar.objects.exists()


def test_a_policy_is_saved_with_its_targets(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        "/admin/support/slapolicy/add/",
        {
            "name": "Enterprise",
            "calendar": "",
            "plan": "enterprise",
            "urgent_hours": "4",
            "high_hours": "8",
            "normal_hours": "24",
            "low_hours": "72",
            **_inline(
                "targets",
                [
                    {
                        "priority": "urgent",
                        "first_response_minutes": "30",
                        "next_response_minutes": "60",
                        "resolution_minutes": "240",
                    }
                ],
            ),
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    policy = SlaPolicy.objects.get(name="Enterprise")
    assert policy.plan == "enterprise"
    assert policy.targets.get().first_response_minutes == 30


def test_agents_see_but_do_not_change_the_sla_setup(client, agent):
    client.force_login(agent)

    assert client.get("/admin/support/businesscalendar/").status_code == 200
    assert client.get("/admin/support/businesscalendar/add/").status_code == 403


def test_changelists_and_pages_render_in_few_queries(
    client, admin_user, manager, django_assert_max_num_queries
):
    for i in range(6):
        calendar = services.business_calendar_save(
            calendar=BusinessCalendar(name=f"Office {i}", time_zone="Europe/Berlin"),
            actor=manager,
            hours=[
                BusinessHours(weekday=d, start_time=time(9), end_time=time(17)) for d in range(5)
            ],
        )
        SlaPolicy.objects.create(name=f"Policy {i}", calendar=calendar)
    client.force_login(admin_user)

    with django_assert_max_num_queries(10):
        assert client.get("/admin/support/businesscalendar/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/admin/support/slapolicy/").status_code == 200
    assert client.get(f"/admin/support/businesscalendar/{calendar.pk}/change/").status_code == 200
    policy = SlaPolicy.objects.get(name="Policy 5")
    assert client.get(f"/admin/support/slapolicy/{policy.pk}/change/").status_code == 200
