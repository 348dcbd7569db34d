"""Tickets that came by mail are tickets like the others, and say so wherever a ticket is
shown: the API (a field and a filter), the admin queue (a column and a filter), the
ticket pages, the agents' live feed."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from support import realtime, services
from support.models import SupportAddress, Ticket

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.example"
CHANGELIST = "/admin/support/ticket/"


@pytest.fixture
def by_email(db) -> Ticket:
    """A ticket opened by a mail from the customer of organization A."""
    SupportAddress.objects.create(email=SUPPORT, name="Acme Support", is_default=True)
    message = EmailMessage()
    message["From"] = "Casey <customer-a@example.com>"
    message["To"] = SUPPORT
    message["Subject"] = "Mailed: the printer is on fire"
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content("It started this morning.\n")
    inbound = services.email_receive(message.as_bytes(), door="smtp", recipients=[SUPPORT])
    assert inbound.outcome == "created"
    return inbound.ticket


@pytest.fixture
def by_web(ticket) -> Ticket:
    assert ticket.channel == "web"
    return ticket


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_filters_by_channel_and_shows_it(agent, by_email, by_web):
    emailed = api(agent).get("/api/tickets/", {"channel": "email"})
    web = api(agent).get("/api/tickets/", {"channel": "web"})
    everything = api(agent).get("/api/tickets/")

    assert emailed.status_code == 200
    assert [(t["reference"], t["channel"]) for t in emailed.json()["results"]] == [
        (by_email.reference, "email")
    ]
    assert [t["reference"] for t in web.json()["results"]] == [by_web.reference]
    assert {t["channel"] for t in everything.json()["results"]} == {"email", "web"}


def test_the_api_refuses_an_unknown_channel(agent, by_email):
    response = api(agent).get("/api/tickets/", {"channel": "fax"})

    assert response.status_code == 400
    assert "channel" in str(response.json())


def test_the_customer_who_mailed_sees_the_ticket_in_the_api(customer, by_email):
    response = api(customer).get("/api/tickets/", {"channel": "email"})

    assert [t["reference"] for t in response.json()["results"]] == [by_email.reference]
    assert by_email.requester == customer  # matched to the account by its address


def test_the_admin_queue_filters_by_channel_and_shows_it(client, agent, by_email, by_web):
    client.force_login(agent)

    filtered = client.get(CHANGELIST, {"channel__exact": "email"})
    queue = client.get(CHANGELIST).content.decode()

    assert filtered.status_code == 200
    html = filtered.content.decode()
    assert by_email.reference in html and by_web.reference not in html
    assert '<td class="field-channel">Email</td>' in html
    assert '<td class="field-channel">Web portal</td>' in queue
    assert "By channel" in queue  # the filter is offered


def test_the_admin_ticket_page_names_the_channel(client, agent, by_email):
    client.force_login(agent)

    html = client.get(f"{CHANGELIST}{by_email.pk}/change/").content.decode()

    assert "· Email ·" in html


def test_the_portal_marks_email_tickets(client, customer, by_email, by_web):
    client.force_login(customer)

    listing = client.get("/tickets/?state=all").content.decode()
    emailed = client.get(by_email.get_absolute_url()).content.decode()
    web = client.get(by_web.get_absolute_url()).content.decode()

    assert listing.count('data-channel="email"') == 1
    assert 'data-channel="email">by email<' in emailed
    assert 'data-channel="email"' not in web


def test_the_live_feed_entry_carries_the_channel(by_email, by_web):
    now = timezone.now()

    assert realtime.feed_entry(by_email, now)["channel"] == "email"
    assert realtime.feed_entry(by_web, now)["channel"] == "web"
