"""One ticket-creation budget per person and per client address, shared by the API, the
portal form and the chat socket (support.budget); staff are exempt; Redis away → open."""

import logging

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework.test import APIClient

from config import throttling
from support import budget
from support.models import Ticket
from tests.realtime.conftest import connected, headers

pytestmark = pytest.mark.django_db(transaction=True)

NEW = {"subject": "Printer on fire", "description": "It smokes.", "type": "general"}


def api_open(user, address="10.0.0.1", requester=None, **meta):
    client = APIClient(REMOTE_ADDR=address)
    client.force_authenticate(user)
    data = {**NEW, "requester": requester} if requester else NEW
    return client.post("/api/tickets/", data, format="json", **meta)


def portal_open(user, address="10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)
    return client.post("/tickets/new/", NEW)


def chat_start(user):
    handshake = headers(user)

    async def scenario():
        async with connected("/ws/chat/", handshake) as chat:
            await chat.send_json_to({"action": "start", "message": "Is it on fire?"})
            frame = await chat.receive_json_from(timeout=5)
            while frame["type"] not in {"chat", "error"}:
                frame = await chat.receive_json_from(timeout=5)
            return frame

    return async_to_sync(scenario)()


def test_api_portal_and_chat_share_one_budget_per_person(settings, customer):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_USER = 3

    assert api_open(customer).status_code == 201
    assert api_open(customer).status_code == 201
    assert portal_open(customer).status_code == 302  # to the new ticket

    refused = chat_start(customer)
    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    assert refused["action"] == "start" and 0 < refused["retry_after"] <= 3600
    assert "Too many new tickets" in refused["message"]

    by_api = api_open(customer)
    assert by_api.status_code == 429
    assert 0 < int(by_api["Retry-After"]) <= 3600
    assert by_api.json()["code"] == "throttled"  # the API's one 429 shape
    assert "Too many new tickets from you this hour" in by_api.json()["detail"]

    page = portal_open(customer)
    assert page.status_code == 429
    html = page.content.decode()
    assert "Too many new tickets from you this hour (at most 3)" in html
    assert 'value="Printer on fire"' in html  # the form comes back filled in

    assert Ticket.objects.filter(requester=customer).count() == 3


def test_the_chat_counts_too(settings, customer):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_USER = 1
    assert chat_start(customer)["type"] == "chat"
    assert api_open(customer).status_code == 429


def test_one_address_has_its_own_budget_across_people(settings, customer, other_customer):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS = 2
    assert api_open(customer, "203.0.113.5").status_code == 201
    assert portal_open(customer, "203.0.113.5").status_code == 302

    refused = api_open(other_customer, "203.0.113.5")
    assert refused.status_code == 429
    assert "from your network" in refused.json()["detail"]
    # The refusal cost the other person nothing: from elsewhere they still can.
    assert api_open(other_customer, "198.51.100.7").status_code == 201


def test_the_proxy_header_names_the_address_when_configured(settings, customer, other_customer):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS = 1
    settings.HELPDESK_CLIENT_ADDRESS_HEADER = "X-Forwarded-For"
    first = api_open(customer, "10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9")
    assert first.status_code == 201
    assert api_open(customer, "10.0.0.2").status_code == 201  # no header: REMOTE_ADDR
    # Same proxy, the last (proxy-written) address repeats: refused; a spoofed first one
    # does not help.
    refused = api_open(other_customer, "10.0.0.2", HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.9")
    assert refused.status_code == 429


def test_staff_opening_for_customers_are_not_counted(settings, agent, customer):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_USER = 1
    settings.HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS = 1
    for _ in range(3):
        assert api_open(agent, requester=customer.pk).status_code == 201
    assert Ticket.objects.filter(requester=customer).count() == 3


def test_without_redis_the_budget_lets_tickets_through_and_says_so(
    settings, customer, monkeypatch, caplog
):
    monkeypatch.setattr(throttling, "_cache_down_until", float("-inf"))
    monkeypatch.setattr(throttling, "_last_warning", float("-inf"))
    settings.HELPDESK_TICKETS_PER_HOUR_PER_USER = 1
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with caplog.at_level(logging.WARNING, logger="config.throttling"):
        budget.ticket_budget_take(user=customer, address="10.0.0.1")
        budget.ticket_budget_take(user=customer, address="10.0.0.1")
    assert "rate limits are off" in caplog.text
