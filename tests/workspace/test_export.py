"""The tickets CSV export (``GET /api/tickets/export/``): its columns, tags and custom
fields, the list's filters, the CSV-injection guard, staff only, and a bounded number of
queries however many tickets it holds."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from support import services
from support.exports import COLUMNS, safe_cell
from support.models import CustomField, Ticket

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def export(user, **params):
    response = api(user).get(reverse("api-ticket-export"), params)
    body = b"".join(response.streaming_content).decode() if response.status_code == 200 else ""
    return response, list(csv.reader(io.StringIO(body)))


@pytest.fixture
def fields(db):
    return [
        CustomField.objects.create(
            key="plan_tier", label="Plan tier", kind="choice", choices=["free", "pro"], position=1
        ),
        CustomField.objects.create(
            key="platforms",
            label="Platforms",
            kind="multi_choice",
            choices=["ios", "android", "web"],
            position=2,
        ),
        CustomField.objects.create(key="seats", label="Seats", kind="number", position=3),
        CustomField.objects.create(key="retired", label="Retired", kind="text", is_active=False),
    ]


def test_the_export_has_a_row_per_ticket_with_tags_and_custom_fields(
    customer, agent, org_a, fields
):
    ticket = services.ticket_open(
        requester=customer, subject="Invoice wrong", description="x", type="billing"
    )
    services.ticket_tag(ticket=ticket, add=["vip", "billing"], actor=agent)
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    Ticket.objects.filter(pk=ticket.pk).update(
        custom_fields={"plan_tier": "pro", "platforms": ["ios", "web"], "seats": -3}
    )

    response, rows = export(agent)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="tickets-' in response["Content-Disposition"]
    assert rows[0] == [*COLUMNS, "Plan tier", "Platforms", "Seats"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["reference"] == ticket.reference and row["subject"] == "Invoice wrong"
    assert (row["status"], row["type"], row["channel"]) == (ticket.status, "billing", "web")
    assert row["requester_email"] == customer.email and row["organization"] == org_a.name
    assert row["assignee"] == agent.username and row["tags"] == "billing;vip"
    assert row["created_at"].startswith(str(ticket.created_at.date()))
    assert (row["Plan tier"], row["Platforms"], row["Seats"]) == ("pro", "ios;web", "-3")


def test_the_export_takes_the_lists_filters(customer, agent):
    for n in range(3):
        ticket = services.ticket_open(requester=customer, subject=f"T{n}", description="x")
        if n:
            services.ticket_tag(ticket=ticket, add=[f"t{n}"], actor=agent)

    _, rows = export(agent, tag="t1,t2")
    assert sorted(r[1] for r in rows[1:]) == ["T1", "T2"]
    _, rows = export(agent, search="T0")
    assert [r[1] for r in rows[1:]] == ["T0"]


def test_cells_a_spreadsheet_would_run_are_defused(customer, agent, fields):
    ticket = services.ticket_open(
        requester=customer, subject='=HYPERLINK("http://evil.example","x")', description="x"
    )
    Ticket.objects.filter(pk=ticket.pk).update(custom_fields={"plan_tier": "@SUM(A1)"})

    _, rows = export(agent)

    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["subject"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["Plan tier"] == "'@SUM(A1)"
    assert [safe_cell(v) for v in ("+1", "-1", "\tx", "ok", None, True)] == [
        "'+1",
        "'-1",
        "'\tx",
        "ok",
        "",
        "yes",
    ]


def test_only_staff_export(ticket, customer, org_admin):
    for user in (customer, org_admin):
        response, _ = export(user)
        assert response.status_code == 403
    response = APIClient().get(reverse("api-ticket-export"))
    assert response.status_code in (401, 403)


def test_the_export_reads_a_bounded_number_of_queries(
    customer, agent, fields, django_assert_max_num_queries
):
    def add(count):
        for n in range(count):
            ticket = services.ticket_open(requester=customer, subject=f"S{n}", description="x")
            services.ticket_tag(ticket=ticket, add=["vip", f"t{n}"], actor=agent)

    add(2)
    with CaptureQueriesContext(connection) as few:
        _, rows = export(agent)
    assert len(rows) == 3
    add(15)
    with django_assert_max_num_queries(len(few)):
        _, rows = export(agent)
    assert len(rows) == 18 and all(";" in r[COLUMNS.index("tags")] for r in rows[1:])
