"""Presence and collision on the agent's ticket page.

Presence travels over the real ticket socket (the ASGI application, the Redis channel
layer, the Redis hash of ``support.presence``); the collision guard is the ticket page's
reply form posted through admin."""

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.urls import reverse

from support import presence, services
from tests.conftest import free_port
from tests.factories import AgentFactory
from tests.realtime.conftest import connected, frames_until_quiet, headers, next_of

TICKETS = "/ws/tickets/"
live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ana(db):
    return AgentFactory(username="ana", first_name="Ana", last_name="Lopez")


@pytest.fixture
def ben(db):
    return AgentFactory(username="ben", first_name="Ben", last_name="Okafor")


async def subscribe(socket, reference) -> dict:
    await socket.send_json_to({"action": "subscribe", "ticket": reference})
    return await next_of(socket, "subscribed")


async def say(socket, reference, state):
    await socket.send_json_to({"action": "presence", "ticket": reference, "state": state})


def seen_by(frames) -> list[list[tuple[str, str]]]:
    """Each presence frame as [(name, state), …]."""
    return [
        [(agent["name"], agent["state"]) for agent in frame["agents"]]
        for frame in frames
        if frame["type"] == "presence"
    ]


@live
def test_two_agents_see_each_other_typing_and_leaving(ticket, ana, ben):
    as_ana, as_ben = headers(ana), headers(ben)

    async def scenario():
        async with connected(TICKETS, as_ana) as a:
            first = await subscribe(a, ticket.reference)
            async with connected(TICKETS, as_ben) as b:
                late = await subscribe(b, ticket.reference)
                a_joined = await frames_until_quiet(a)
                await say(b, ticket.reference, "typing")
                a_typing = await frames_until_quiet(a)
                await say(b, ticket.reference, "typing")  # the heartbeat: nothing new
                a_heartbeat = await frames_until_quiet(a)
                b_frames = await frames_until_quiet(b)
            a_left = await frames_until_quiet(a)
        return first, late, a_joined, a_typing, a_heartbeat, b_frames, a_left

    first, late, a_joined, a_typing, a_heartbeat, b_frames, a_left = async_to_sync(scenario)()

    assert first["agents"] == []  # alone on the ticket
    # Ben joins late: his snapshot already lists Ana, viewing since she subscribed.
    (ana_here,) = late["agents"]
    assert (ana_here["id"], ana_here["name"], ana_here["state"]) == (ana.pk, "Ana Lopez", "viewing")
    assert ana_here["since"]
    assert seen_by(a_joined) == [[("Ben Okafor", "viewing")]]
    assert seen_by(a_typing) == [[("Ben Okafor", "typing")]]
    assert a_heartbeat == []
    assert all(ben.pk not in [x["id"] for x in f["agents"]] for f in b_frames if "agents" in f)
    assert seen_by(a_left) == [[]]  # Ben closed his page


@live
def test_two_tabs_of_one_agent_count_once_and_until_both_close(ticket, ana, ben):
    as_ana, as_ben = headers(ana), headers(ben)

    async def scenario():
        async with connected(TICKETS, as_ana) as a:
            await subscribe(a, ticket.reference)
            async with connected(TICKETS, as_ben) as tab1:
                await subscribe(tab1, ticket.reference)
                async with connected(TICKETS, as_ben) as tab2:
                    await subscribe(tab2, ticket.reference)
                    await say(tab1, ticket.reference, "typing")
                    both_open = await frames_until_quiet(a)
                    await tab1.send_json_to({"action": "unsubscribe", "ticket": ticket.reference})
                    one_closed = await frames_until_quiet(a)
                all_closed = await frames_until_quiet(a)
        return both_open, one_closed, all_closed

    both_open, one_closed, all_closed = async_to_sync(scenario)()

    assert seen_by(both_open)[-1] == [("Ben Okafor", "typing")]  # the busier tab counts
    assert seen_by(one_closed) == [[("Ben Okafor", "viewing")]]  # still here in tab 2
    assert seen_by(all_closed) == [[]]


@live
def test_a_connection_that_vanished_expires(ticket, ana, ben, settings):
    settings.HELPDESK_PRESENCE_TTL_SECONDS = 1
    # Ben's browser died without closing its socket: his entry stays until it is stale.
    presence.entry_set(
        ticket_id=ticket.pk, connection="gone", user=ben, state="typing", since="2026-01-01"
    )
    as_ana = headers(ana)

    async def scenario():
        async with connected(TICKETS, as_ana) as a:
            first = await subscribe(a, ticket.reference)
            await asyncio.sleep(1.2)
            await say(a, ticket.reference, "viewing")  # Ana's heartbeat
            return first, await frames_until_quiet(a)

    first, later = async_to_sync(scenario)()

    assert [(x["name"], x["state"]) for x in first["agents"]] == [("Ben Okafor", "typing")]
    assert seen_by(later) == [[]]
    assert presence.entry_list(ticket_id=ticket.pk) == []


@live
def test_customers_neither_see_nor_send_presence(ticket, customer, ana):
    as_customer, as_ana = headers(customer), headers(ana)

    async def scenario():
        async with (
            connected(TICKETS, as_customer) as page,
            connected(TICKETS, as_ana) as desk,
        ):
            subscribed = await subscribe(page, ticket.reference)
            await subscribe(desk, ticket.reference)
            await say(desk, ticket.reference, "typing")
            customer_frames = await frames_until_quiet(page)
            await say(page, ticket.reference, "typing")
            refusal = await next_of(page, "error")
            desk_frames = await frames_until_quiet(desk)
            here = presence.entry_list(ticket_id=ticket.pk)
        return subscribed, customer_frames, refusal, desk_frames, here

    subscribed, customer_frames, refusal, desk_frames, here = async_to_sync(scenario)()

    assert "agents" not in subscribed
    assert customer_frames == []
    assert refusal["code"] == "forbidden"
    assert refusal["message"] == "Only support staff share presence on a ticket."
    assert desk_frames == []
    assert [e["name"] for e in here] == ["Ana Lopez"]  # the customer is not listed


@live
def test_presence_needs_a_subscription_and_a_known_state(ticket, ana):
    as_ana = headers(ana)

    async def scenario():
        async with connected(TICKETS, as_ana) as desk:
            await say(desk, ticket.reference, "viewing")
            unsubscribed = await next_of(desk, "error")
            await subscribe(desk, ticket.reference)
            await say(desk, ticket.reference, "asleep")
            bad_state = await next_of(desk, "error")
        return unsubscribed, bad_state

    unsubscribed, bad_state = async_to_sync(scenario)()

    assert unsubscribed["code"] == "not_subscribed"
    assert unsubscribed["message"] == "Subscribe to the ticket first."
    assert bad_state["code"] == "bad_request"
    assert bad_state["message"] == "state is one of: viewing, typing, idle."


@live
def test_without_redis_presence_is_off_and_the_page_keeps_working(
    ticket, customer, ana, monkeypatch, caplog, settings
):
    settings.CACHE_URL = f"redis://127.0.0.1:{free_port()}/2"  # nobody listens there
    monkeypatch.setattr(presence, "_client", None)
    monkeypatch.setattr(presence, "_down_until", float("-inf"))
    monkeypatch.setattr(presence, "_outage_logged", False)
    monkeypatch.setattr(presence, "RETRY_AFTER", 0.0)  # ask Redis every time: still one log
    as_ana = headers(ana)

    async def scenario():
        async with connected(TICKETS, as_ana) as desk:
            subscribed = await subscribe(desk, ticket.reference)
            await say(desk, ticket.reference, "typing")
            await say(desk, ticket.reference, "viewing")
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=customer, body="Any news?"
            )
            return subscribed, await frames_until_quiet(desk)

    with caplog.at_level(logging.WARNING, logger="support.presence"):
        subscribed, frames = async_to_sync(scenario)()

    assert subscribed["agents"] == [] and subscribed["messages"]
    assert [f["type"] for f in frames] == ["message"]  # no error frame, the update arrives
    assert frames[0]["body"] == "Any news?"
    warnings = [r for r in caplog.records if r.name == "support.presence"]
    assert len(warnings) == 1 and "presence is unavailable" in warnings[0].getMessage()


# ---- collision: the reply form ------------------------------------------------------------


def page(client, ticket):
    return client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))


def reply(client, ticket, **data):
    url = reverse("admin:support_ticket_act", args=[ticket.pk, "reply"])
    return client.post(url, data, follow=True)


@pytest.mark.django_db
def test_a_reply_written_before_a_new_message_is_held_and_kept(client, ticket, agent, customer):
    client.force_login(agent)
    opened = page(client, ticket)
    seen = opened.context["seen_message_id"]
    assert seen == ticket.messages.latest("pk").pk
    assert f'name="seen_message_id" value="{seen}"' in opened.content.decode()
    assert b"data-presence" in opened.content and b"data-collision-warning" in opened.content
    services.message_add(ticket=ticket, author=customer, body="Never mind, found it!")
    count = ticket.messages.count()

    held = reply(client, ticket, body="Try clearing the cache.", seen_message_id=seen)

    assert ticket.messages.count() == count  # not sent
    html = held.content.decode()
    assert "A new message arrived after you opened the ticket — read it, then send again." in html
    assert ">Try clearing the cache.</textarea>" in html  # the draft is back in the box
    assert "Never mind, found it!" in html
    assert held.context["seen_message_id"] == ticket.messages.latest("pk").pk
    assert ">Try clearing the cache.</textarea>" not in page(client, ticket).content.decode()

    sent = reply(
        client, ticket, body="Glad it works!", seen_message_id=seen, confirm_send="1"
    )  # the agent read it and chose to send anyway

    assert "Reply sent." in sent.content.decode()
    assert ticket.messages.latest("pk").body == "Glad it works!"


@pytest.mark.django_db
def test_what_does_not_hold_a_reply(client, ticket, agent, customer):
    client.force_login(agent)
    seen = page(client, ticket).context["seen_message_id"]
    colleague = AgentFactory(username="colleague-agent")
    # The agent's own reply and a colleague's internal note are nothing new to answer.
    services.message_reply(ticket=ticket, author=agent, body="Looking into it.")
    services.message_add(ticket=ticket, author=colleague, body="FYI legacy", is_internal=True)

    assert (
        "Reply sent."
        in reply(client, ticket, body="One more thing", seen_message_id=seen).content.decode()
    )

    services.message_add(ticket=ticket, author=customer, body="Hello?")
    note = reply(client, ticket, body="Customer pinged", is_internal="on", seen_message_id=seen)
    assert "Internal note added." in note.content.decode()  # a note reaches no customer
    plain = reply(client, ticket, body="No form field, no check")  # e.g. an older page
    assert "Reply sent." in plain.content.decode()


@pytest.mark.django_db
def test_a_garbled_seen_message_id_is_refused_and_the_draft_kept(client, ticket, agent):
    client.force_login(agent)

    response = reply(client, ticket, body="Draft", seen_message_id="yesterday", and_resolve="on")

    html = response.content.decode()
    assert "Not a message id: reload the ticket and send again." in html
    assert ">Draft</textarea>" in html
    assert 'name="and_resolve" checked' in html
    assert not ticket.messages.filter(body="Draft").exists()


def test_agents_collapse_connections_to_the_most_active_one():
    entries = [
        {"user": 1, "name": "Ana", "state": "idle", "since": "a"},
        {"user": 2, "name": "Ben", "state": "viewing", "since": "b"},
        {"user": 1, "name": "Ana", "state": "typing", "since": "c"},
    ]

    assert presence.agents(entries, exclude_user=2) == [
        {"id": 1, "name": "Ana", "state": "typing", "since": "c"}
    ]


# ---- the same guard in the API ----------------------------------------------------------


@pytest.mark.django_db
def test_the_api_answers_409_to_a_stale_reply_when_asked_to_check(ticket, agent, customer):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(agent)
    messages = f"/api/tickets/{ticket.reference}/messages/"
    seen = client.get(messages).json()[-1]["id"]
    services.message_add(ticket=ticket, author=customer, body="Update: it works now")

    stale = client.post(messages, {"body": "Try again?", "seen_message_id": seen}, format="json")
    unchecked = client.post(messages, {"body": "No check asked"}, format="json")
    confirmed = client.post(
        messages,
        {"body": "Great news!", "seen_message_id": seen, "confirm_send": True},
        format="json",
    )
    bad = client.post(messages, {"body": "x", "seen_message_id": -3}, format="json")

    assert stale.status_code == 409
    assert stale.json() == {"detail": presence.STALE_REPLY, "code": "stale_reply"}
    assert not ticket.messages.filter(body="Try again?").exists()
    assert unchecked.status_code == 201 and confirmed.status_code == 201
    assert bad.status_code == 400 and "seen_message_id" in bad.json()
