"""Live updates leave from a background publisher, not from the request: the request
returns before anything is built or sent, the frames still arrive, in commit order per
ticket; the feed's counts are computed a couple of times per burst, not once per change;
and a publisher whose Redis or database fails leaves requests, and itself, working."""

import threading

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from support import realtime, selectors, services
from tests.realtime.conftest import connected, frames_until_quiet, headers, next_of

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = "/ws/tickets/"
FEED = "/ws/agents/feed/?filter=all"


def open_ticket(customer, subject):
    return services.ticket_open(requester=customer, subject=subject, description="…")


@pytest.fixture
def gate(monkeypatch):
    """Holds the publisher before it builds anything until ``gate.set()``; records the
    threads that built payloads."""
    gate = threading.Event()
    gate.threads = set()
    build = realtime.payloads

    def held(kind, ids):
        gate.threads.add(threading.current_thread().name)
        assert gate.wait(10), "the test never opened the gate"
        return build(kind, ids)

    monkeypatch.setattr(realtime, "payloads", held)
    yield gate
    gate.set()


@pytest.fixture
def counted(monkeypatch):
    """How many times the feed's counts are computed, from any thread."""
    calls = []
    original = selectors.feed_counts

    def counting(**kwargs):
        calls.append(threading.current_thread().name)
        return original(**kwargs)

    monkeypatch.setattr(selectors, "feed_counts", counting)
    return calls


def test_the_request_returns_before_the_update_is_sent_and_the_frame_still_arrives(
    ticket, customer, agent, gate
):
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await page.send_json_to({"action": "subscribe", "ticket": ticket.reference})
            await next_of(page, "subscribed")
            message = await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="On it."
            )
            nothing_yet = await page.receive_nothing(timeout=0.3)
            gate.set()
            return message, nothing_yet, await next_of(page, "message")

    message, nothing_yet, frame = async_to_sync(scenario)()

    assert nothing_yet  # the service call had returned; the publisher was still held
    assert frame["id"] == message.pk and frame["body"] == "On it."
    assert gate.threads == {"live-publisher"}


def test_changes_to_one_ticket_arrive_in_the_order_they_were_committed(
    ticket, customer, agent, gate
):
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await page.send_json_to({"action": "subscribe", "ticket": ticket.reference})
            await next_of(page, "subscribed")
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="Fixed on our side."
            )
            await database_sync_to_async(services.ticket_resolve)(ticket=ticket, actor=agent)
            gate.set()  # the first was held while the second queued behind it
            return await frames_until_quiet(page)

    frames = async_to_sync(scenario)()

    assert [(f["type"], f["status"] if f["type"] == "ticket" else None) for f in frames] == [
        ("message", None),
        ("ticket", "resolved"),
    ]


def test_a_burst_of_changes_costs_a_couple_of_count_queries_and_ends_with_right_counts(
    customer, agent, counted, settings
):
    settings.HELPDESK_FEED_COUNTS_INTERVAL = 60  # the burst ends well inside one interval
    as_agent = headers(agent)

    async def scenario():
        async with connected(FEED, as_agent) as feed:
            await next_of(feed, "snapshot")
            del counted[:]  # the snapshot's own
            for n in range(30):
                await database_sync_to_async(open_ticket)(customer, f"Burst {n}")
            await database_sync_to_async(realtime.flush)()  # sends the counts owed now
            return await frames_until_quiet(feed)

    frames = async_to_sync(scenario)()

    tickets = [f for f in frames if f["type"] == "ticket"]
    counts = [f for f in frames if f["type"] == "counts"]
    assert len(tickets) == 30
    assert 1 <= len(counted) <= 2 and set(counted) == {"live-publisher"}
    assert len(counts) == len(counted)
    assert counts[-1]["counts"] == {"new": 30, "escalated": 0, "at_risk": 0}
    assert frames[-1]["type"] == "counts"  # after every card they count


def test_counts_follow_a_change_after_the_interval_without_any_flush(customer, agent, settings):
    settings.HELPDESK_FEED_COUNTS_INTERVAL = 0.5
    as_agent = headers(agent)

    async def scenario():
        async with connected(FEED, as_agent) as feed:
            await next_of(feed, "snapshot")
            await database_sync_to_async(open_ticket)(customer, "First")
            first = await next_of(feed, "counts")  # after a quiet spell: right away
            await database_sync_to_async(open_ticket)(customer, "Second")
            second = await next_of(feed, "counts", timeout=5)  # once the interval is over
            return first, second

    first, second = async_to_sync(scenario)()

    assert (first["counts"]["new"], second["counts"]["new"]) == (1, 2)


def test_redis_down_fails_no_request_and_the_publisher_carries_on_afterwards(
    ticket, customer, agent, monkeypatch, caplog
):
    class Down:
        async def group_send(self, group, message):
            raise ConnectionError("Redis is down")

    layer = {"now": Down()}
    real = realtime.get_channel_layer
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer["now"] or real())
    as_customer = headers(customer)

    message = services.message_add(ticket=ticket, author=agent, body="Saved anyway")
    assert realtime.flush()
    layer["now"] = None  # Redis is back

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await page.send_json_to({"action": "subscribe", "ticket": ticket.reference})
            await next_of(page, "subscribed")
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="And this one is live"
            )
            return await next_of(page, "message")

    frame = async_to_sync(scenario)()

    assert ticket.messages.filter(pk=message.pk).exists()
    assert "live update not sent" in caplog.text
    assert frame["body"] == "And this one is live"


def test_a_database_error_while_building_loses_that_update_only(
    ticket, customer, agent, monkeypatch, caplog
):
    from django.db import OperationalError

    build = realtime.payloads
    broken = {"left": 1}

    def flaky(kind, ids):
        if broken["left"]:
            broken["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return build(kind, ids)

    monkeypatch.setattr(realtime, "payloads", flaky)
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await page.send_json_to({"action": "subscribe", "ticket": ticket.reference})
            await next_of(page, "subscribed")
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="Lost live, kept in the database"
            )
            await database_sync_to_async(realtime.flush)()
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="Live again"
            )
            return await frames_until_quiet(page)

    frames = async_to_sync(scenario)()

    assert [f["body"] for f in frames if f["type"] == "message"] == ["Live again"]
    assert "live update not built" in caplog.text
    assert ticket.messages.filter(body="Lost live, kept in the database").exists()
