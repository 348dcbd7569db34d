"""The pages that go live: the markup and scripts the live updates hook into, served
from our own static files, on pages that still work without them."""

import re

import pytest

from support import services

pytestmark = pytest.mark.django_db


def scripts(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', html)


def test_the_portal_ticket_page_is_live(client, ticket, customer, agent):
    services.message_add(ticket=ticket, author=agent, body="Internal", is_internal=True)
    client.force_login(customer)

    html = client.get(ticket.get_absolute_url()).content.decode()

    assert f'data-live-ticket="{ticket.reference}"' in html
    assert "data-live-conversation" in html and "data-live-status" in html
    assert 'data-live-field="status"' in html and "data-live-indicator" in html
    assert "/static/js/live.js" in scripts(html)
    assert all(src.startswith("/static/") for src in scripts(html))  # nothing from a CDN
    assert "Internal" not in html
    assert 'action="/tickets/' in html  # the reply form posts as before


def test_the_agent_ticket_page_is_live(client, ticket, agent):
    client.force_login(agent)

    html = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()

    assert f'data-live-ticket="{ticket.reference}"' in html
    assert "data-live-events" in html and 'data-event-id="' in html
    assert 'data-live-field="assignee"' in html and "data-live-priority" in html
    assert "/static/js/live.js" in scripts(html)


def test_the_help_center_offers_the_chat_to_customers(client, customer, categories):
    client.force_login(customer)

    html = client.get("/help/").content.decode()

    assert "data-chat" in html and 'data-signed-in="true"' in html
    assert "/static/js/chat.js" in scripts(html) and "/static/js/live.js" in scripts(html)
    assert "<noscript>" in html and "/tickets/new/" in html  # without JavaScript: a ticket


def test_visitors_are_asked_to_sign_in_and_staff_get_no_chat(client, agent, categories):
    anonymous = client.get("/help/c/account/?page=2").content.decode()
    client.force_login(agent)
    staff = client.get("/help/").content.decode()

    assert 'data-signed-in="false"' in anonymous
    assert "/accounts/login/?next=/help/c/account/%3Fpage%3D2" in anonymous
    assert "data-chat" not in staff
