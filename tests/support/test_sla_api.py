"""The staff API of the SLA setup (/api/sla/): calendars with nested hours and holidays,
policies with nested targets; validation errors as 400 with field messages; customers
kept out, agents read, managers write."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from support.models import BusinessCalendar, SlaPolicy, SlaTarget

pytestmark = pytest.mark.django_db

OFFICE = {
    "name": "Berlin office",
    "time_zone": "Europe/Berlin",
    "hours": [{"weekday": d, "start_time": "09:00", "end_time": "17:00"} for d in range(5)],
    "holidays": [{"date": "2026-12-25", "name": "Christmas"}],
}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_manager_creates_and_changes_a_calendar(manager):
    response = api(manager).post("/api/sla/calendars/", OFFICE, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["time_zone"] == "Europe/Berlin"
    assert len(body["hours"]) == 5
    assert body["hours"][0] == {"weekday": 0, "start_time": "09:00:00", "end_time": "17:00:00"}
    assert body["holidays"] == [{"date": "2026-12-25", "name": "Christmas"}]

    # Two intervals on Monday, nothing else: the list replaces the old one.
    response = api(manager).patch(
        f"/api/sla/calendars/{body['id']}/",
        {
            "hours": [
                {"weekday": 0, "start_time": "13:00", "end_time": "17:00"},
                {"weekday": 0, "start_time": "09:00", "end_time": "12:00"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    calendar = BusinessCalendar.objects.get(pk=body["id"])
    assert [str(h) for h in calendar.hours.order_by("start_time")] == [
        "Monday 09:00–12:00",
        "Monday 13:00–17:00",
    ]
    assert calendar.holidays.count() == 1  # left out: kept


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not a known time zone"),
        (
            {"hours": [{"weekday": 0, "start_time": "17:00", "end_time": "09:00"}]},
            "hours",
            "end must be after the start",
        ),
        (
            {
                "hours": [
                    {"weekday": 2, "start_time": "09:00", "end_time": "12:00"},
                    {"weekday": 2, "start_time": "11:00", "end_time": "13:00"},
                ]
            },
            "hours",
            "Wednesday: 09:00–12:00 overlaps 11:00–13:00",
        ),
        (
            {"holidays": [{"date": "2026-12-25"}, {"date": "2026-12-25", "name": "Again"}]},
            "holidays",
            "listed twice",
        ),
    ],
)
def test_bad_calendars_are_refused_with_field_messages(manager, change, field, words):
    response = api(manager).post("/api/sla/calendars/", {**OFFICE, **change}, format="json")

    assert response.status_code == 400
    assert words in response.json()[field][0]
    assert not BusinessCalendar.objects.exists()


def test_a_policy_with_a_calendar_a_plan_and_targets(manager):
    calendar = api(manager).post("/api/sla/calendars/", OFFICE, format="json").json()

    response = api(manager).post(
        "/api/sla/policies/",
        {
            "name": "Enterprise",
            "calendar": calendar["id"],
            "plan": "enterprise",
            "targets": [
                {
                    "priority": "urgent",
                    "first_response_minutes": 30,
                    "next_response_minutes": 60,
                    "resolution_minutes": 240,
                }
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    policy = SlaPolicy.objects.get(name="Enterprise")
    assert (policy.calendar_id, policy.plan) == (calendar["id"], "enterprise")
    assert SlaTarget.objects.get(policy=policy).first_response_minutes == 30

    response = api(manager).post(
        "/api/sla/policies/", {"name": "Other", "plan": "enterprise"}, format="json"
    )
    assert response.status_code == 400  # one policy per plan

    response = api(manager).patch(
        f"/api/sla/policies/{policy.pk}/",
        {
            "targets": [
                {
                    "priority": "low",
                    "first_response_minutes": 60,
                    "next_response_minutes": 60,
                    "resolution_minutes": 600,
                },
                {
                    "priority": "low",
                    "first_response_minutes": 60,
                    "next_response_minutes": 60,
                    "resolution_minutes": 600,
                },
            ]
        },
        format="json",
    )
    assert response.status_code == 400
    assert "targets" in response.json()


def test_a_calendar_in_use_is_not_deleted(manager):
    calendar = api(manager).post("/api/sla/calendars/", OFFICE, format="json").json()
    SlaPolicy.objects.create(name="Uses it", calendar_id=calendar["id"])

    response = api(manager).delete(f"/api/sla/calendars/{calendar['id']}/")

    assert response.status_code == 400
    assert BusinessCalendar.objects.filter(pk=calendar["id"]).exists()


def test_agents_read_and_customers_are_kept_out(agent, customer, manager):
    created = api(manager).post("/api/sla/calendars/", OFFICE, format="json").json()

    assert api(agent).get("/api/sla/calendars/").status_code == 200
    assert api(agent).get("/api/sla/policies/").status_code == 200
    assert api(agent).post("/api/sla/calendars/", OFFICE, format="json").status_code == 403
    assert (
        api(agent)
        .patch(f"/api/sla/calendars/{created['id']}/", {"name": "Mine"}, format="json")
        .status_code
        == 403
    )
    for path in [
        "/api/sla/calendars/",
        "/api/sla/policies/",
        f"/api/sla/calendars/{created['id']}/",
    ]:
        assert api(customer).get(path).status_code == 403
    assert APIClient().get("/api/sla/calendars/").status_code in (401, 403)
    assert BusinessCalendar.objects.get(pk=created["id"]).name == "Berlin office"
