"""The agents' live feed: a snapshot of new, escalated and SLA-at-risk tickets with their
counts, then each change as it happens and the counts after it, shaped for the agent's
filter (all, mine, unassigned); and its page in the admin, which works with a plain
reload."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from support import selectors, services
from support.models import Ticket
from tests.factories import AgentFactory
from tests.realtime.conftest import connected, frames_until_quiet, headers, next_of

pytestmark = pytest.mark.django_db(transaction=True)


def feed_path(value="all"):
    return f"/ws/agents/feed/?filter={value}"


def open_ticket(customer, subject, **extra):
    return services.ticket_open(requester=customer, subject=subject, description="…", **extra)


def test_the_snapshot_shows_each_column_with_its_counts(customer, agent):
    fresh = open_ticket(customer, "Fresh question")
    escalated = open_ticket(customer, "Angry customer")
    services.ticket_escalate(ticket=escalated, kind="complex", reason="Needs care", actor=agent)
    urgent = open_ticket(customer, "Site down", priority="urgent")  # due in 4 hours
    answered = open_ticket(customer, "Answered")
    services.message_add(ticket=answered, author=agent, body="Done?")  # awaiting the customer
    as_agent = headers(agent)

    async def scenario():
        async with connected(feed_path(), as_agent) as feed:
            return await next_of(feed, "snapshot")

    snapshot = async_to_sync(scenario)()

    columns = {key: [t["reference"] for t in cards] for key, cards in snapshot["columns"].items()}
    assert columns["new"] == [urgent.reference, fresh.reference]  # newest first
    assert columns["escalated"] == [escalated.reference]
    assert columns["at_risk"] == [urgent.reference]
    assert all(answered.reference not in cards for cards in columns.values())
    assert snapshot["counts"] == {"new": 2, "escalated": 1, "at_risk": 1}
    card = snapshot["columns"]["escalated"][0]
    assert card["url"] == f"/admin/support/ticket/{escalated.pk}/change/"
    assert card["buckets"] == ["escalated"] and card["requester"] == customer.email


def test_new_and_escalated_tickets_appear_as_they_happen(customer, agent):
    as_agent = headers(agent)

    def of_type(frames, kind):
        return [f for f in frames if f["type"] == kind]

    async def scenario():
        async with connected(feed_path(), as_agent) as feed:
            await next_of(feed, "snapshot")
            ticket = await database_sync_to_async(open_ticket)(customer, "Export broken")
            opened = await next_of(feed, "ticket"), await next_of(feed, "counts")
            await database_sync_to_async(services.ticket_escalate)(
                ticket=ticket, kind="complex", reason="Bug", actor=agent
            )
            # Within a second of the last counts: these come when the interval is over.
            escalated = await frames_until_quiet(feed, quiet=1.5)
            await database_sync_to_async(services.ticket_resolve)(ticket=ticket, actor=agent)
            resolved = await frames_until_quiet(feed, quiet=1.5)
            return opened, escalated, resolved

    (opened, counts), escalated, resolved = async_to_sync(scenario)()

    assert opened["change"] == "ticket_opened" and opened["matches"] is True
    assert opened["ticket"]["subject"] == "Export broken"
    assert opened["ticket"]["buckets"] == ["new"]
    assert counts == {
        "type": "counts",
        "filter": "all",
        "counts": {"new": 1, "escalated": 0, "at_risk": 0},
    }
    assert of_type(escalated, "ticket")[-1]["ticket"]["buckets"] == ["escalated"]
    assert of_type(escalated, "counts")[-1]["counts"] == {"new": 0, "escalated": 1, "at_risk": 0}
    assert of_type(resolved, "ticket")[-1]["ticket"]["buckets"] == []  # leaves every column
    assert of_type(resolved, "counts")[-1]["counts"] == {"new": 0, "escalated": 0, "at_risk": 0}


def test_mine_and_unassigned_filters_shape_each_agents_feed(customer, agent):
    colleague = AgentFactory(username="agent-b")
    mine, others = headers(agent), headers(colleague)

    async def scenario():
        async with (
            connected(feed_path("mine"), mine) as my_feed,
            connected(feed_path("unassigned"), others) as open_feed,
        ):
            await next_of(my_feed, "snapshot")
            await next_of(open_feed, "snapshot")
            ticket = await database_sync_to_async(open_ticket)(customer, "Who takes it?")
            first = await next_of(my_feed, "ticket"), await next_of(open_feed, "ticket")
            counted = await next_of(my_feed, "counts"), await next_of(open_feed, "counts")
            await database_sync_to_async(services.ticket_assign)(
                ticket=ticket, assignee=agent, actor=colleague
            )
            second = await next_of(my_feed, "ticket"), await next_of(open_feed, "ticket")
            recounted = await next_of(my_feed, "counts"), await next_of(open_feed, "counts")
            await open_feed.send_json_to({"action": "filter", "filter": "all"})
            switched = await next_of(open_feed, "snapshot")
            return first, counted, second, recounted, switched

    first, counted, second, recounted, switched = async_to_sync(scenario)()

    (mine_1, open_1), (mine_2, open_2) = first, second
    assert (mine_1["matches"], open_1["matches"]) == (False, True)
    assert [c["counts"]["new"] for c in counted] == [0, 1]
    assert [c["filter"] for c in counted] == ["mine", "unassigned"]
    assert (mine_2["matches"], open_2["matches"]) == (True, False)
    assert mine_2["change"] == "assigned" and mine_2["ticket"]["assignee"]
    assert [c["counts"]["new"] for c in recounted] == [1, 0]
    assert switched["filter"] == "all" and switched["counts"]["new"] == 1


def test_feed_counts_are_one_query_for_every_filter(customer, agent, django_assert_num_queries):
    colleague = AgentFactory(username="agent-b")
    for n, assignee in enumerate([agent, agent, colleague, None]):
        ticket = open_ticket(customer, f"T{n}", priority="urgent" if n == 0 else "normal")
        if assignee:
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=assignee)
    Ticket.objects.filter(subject="T3").update(sla_due_at=timezone.now() - timedelta(hours=1))

    with django_assert_num_queries(1):
        counts = selectors.feed_counts(now=timezone.now())

    assert counts["all"] == {"new": 4, "escalated": 0, "at_risk": 2}
    assert counts["unassigned"] == {"new": 1, "escalated": 0, "at_risk": 1}
    assert counts["by_assignee"][str(agent.pk)] == {"new": 2, "escalated": 0, "at_risk": 1}
    assert selectors.feed_counts_for(counts, filter="mine", user_id=colleague.pk)["new"] == 1
    assert selectors.feed_counts_for(counts, filter="mine", user_id=0) == {
        "new": 0,
        "escalated": 0,
        "at_risk": 0,
    }


def test_the_feed_page_is_linked_from_admin_and_works_without_websocket(client, customer, agent):
    ticket = open_ticket(customer, "Printer on fire", priority="urgent")
    client.force_login(agent)

    index = client.get("/admin/")
    page = client.get("/admin/support/ticket/feed/?filter=unassigned")

    assert 'href="/admin/support/ticket/feed/"' in index.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count(f'data-feed-ticket="{ticket.reference}"') == 2  # new and at risk
    assert 'data-feed-count="new">1<' in html and 'data-feed-count="escalated">0<' in html
    assert 'aria-current="true">Unassigned' in html
    assert '<script src="/static/js/feed.js"' in html


def test_customers_cannot_see_the_feed_page(client, customer):
    client.force_login(customer)

    response = client.get("/admin/support/ticket/feed/")

    assert response.status_code == 302 and "/admin/login/" in response.url


def test_a_ticket_the_clock_puts_at_risk_is_announced_once(customer, agent, settings):
    from django.core.cache import cache

    from support import tasks

    settings.HELPDESK_SLA_AT_RISK_HOURS = 4
    normal = open_ticket(customer, "Slow export")  # due in 24 h: not at risk yet
    calm = open_ticket(customer, "No rush", priority="low")
    # Its deadline comes within the at-risk window just now (as if 20 h had passed).
    Ticket.objects.filter(pk=normal.pk).update(
        sla_due_at=timezone.now() + timedelta(hours=4, seconds=-30)
    )
    cache.set(tasks._SLA_WATERMARK, timezone.now() - timedelta(minutes=1))
    as_agent = headers(agent)

    async def scenario():
        async with connected(feed_path(), as_agent) as feed:
            await next_of(feed, "snapshot")
            # The two openings may still be on their way (a loaded machine): let them pass.
            await frames_until_quiet(feed)
            first = await database_sync_to_async(tasks.announce_sla_risk)()
            frame, counts = await next_of(feed, "ticket"), await next_of(feed, "counts")
            again = await database_sync_to_async(tasks.announce_sla_risk)()
            return first, frame, counts, again, await frames_until_quiet(feed)

    first, frame, counts, again, later = async_to_sync(scenario)()

    assert (first, again) == (1, 0)  # the next run's window starts where this one ended
    assert frame["change"] == "sla_at_risk"
    assert frame["ticket"]["reference"] == normal.reference
    assert "at_risk" in frame["ticket"]["buckets"]
    assert counts["counts"]["at_risk"] == 1
    assert not later and calm.reference != frame["ticket"]["reference"]
