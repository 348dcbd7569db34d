"""Live ticket pages over the real ASGI application and the real Redis channel layer:
what the services change reaches the sockets after commit (never on rollback), internal
notes only reach staff, and a reconnecting page catches up by message id."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.db import transaction

from support import realtime, services
from tests.realtime.conftest import connected, frames_until_quiet, headers, next_of

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = "/ws/tickets/"


async def subscribe(socket, reference, **extra) -> dict:
    await socket.send_json_to({"action": "subscribe", "ticket": reference, **extra})
    return await next_of(socket, "subscribed")


def of_type(frames, kind):
    return [frame for frame in frames if frame["type"] == kind]


def test_a_reply_reaches_customer_and_agent_pages_in_their_own_shape(ticket, customer, agent):
    as_customer, as_agent = headers(customer), headers(agent)

    async def scenario():
        async with connected(TICKETS, as_customer) as page, connected(TICKETS, as_agent) as desk:
            first = await subscribe(page, ticket.reference)
            await subscribe(desk, ticket.reference)
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="Clear the cache, then export again."
            )
            return first, await frames_until_quiet(page), await frames_until_quiet(desk)

    first, page_frames, desk_frames = async_to_sync(scenario)()

    assert [m["body"] for m in first["messages"]] == ["The export button spins forever."]
    assert first["state"]["status_label"] == "Received"  # as customers read it
    (seen,) = page_frames  # one frame per change: the message, with the state it led to
    assert seen["type"] == "message" and seen["body"] == "Clear the cache, then export again."
    assert seen["sender_kind"] == "agent" and seen["sender"].endswith("· Support")
    assert f'id="message-{seen["id"]}"' in seen["html"] and 'class="card' in seen["html"]
    assert seen["state"]["status"] == "awaiting_customer"
    assert seen["state"]["status_label"] == "Waiting for your reply"
    assert "events" not in seen["state"] and "ai" not in seen
    (staff_seen,) = desk_frames
    assert staff_seen["id"] == seen["id"] and 'class="hd-msg hd-agent' in staff_seen["html"]
    assert staff_seen["state"]["status_label"] == "Awaiting customer"
    assert staff_seen["state"]["fields"]["first_response"] != "—"
    assert [e["description"] for e in staff_seen["state"]["events"]][-2:] == [
        "Message added",
        "status changed from new to awaiting_customer",
    ]


def test_sockets_hear_of_a_change_only_once_it_commits(ticket, customer, agent):
    as_customer = headers(customer)
    atomic = transaction.atomic()

    def write_without_committing():
        atomic.__enter__()
        services.message_add(ticket=ticket, author=agent, body="Written, not committed yet")

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await subscribe(page, ticket.reference)
            await sync_to_async(write_without_committing)()
            before = await frames_until_quiet(page, quiet=0.7)
            await sync_to_async(atomic.__exit__)(None, None, None)  # COMMIT
            after = await frames_until_quiet(page)
            return before, after

    before, after = async_to_sync(scenario)()

    assert before == []
    assert [f["body"] for f in of_type(after, "message")] == ["Written, not committed yet"]


def test_nothing_reaches_the_sockets_when_the_transaction_rolls_back(ticket, customer, agent):
    as_customer, as_agent = headers(customer), headers(agent)

    def fail_midway():
        try:
            with transaction.atomic():
                services.message_add(ticket=ticket, author=agent, body="Draft that never was")
                services.ticket_escalate(
                    ticket=ticket, kind="complex", reason="Tricky", actor=agent
                )
                raise RuntimeError("boom")
        except RuntimeError:
            pass

    async def scenario():
        async with connected(TICKETS, as_customer) as page, connected(TICKETS, as_agent) as desk:
            await subscribe(page, ticket.reference)
            await subscribe(desk, ticket.reference)
            await sync_to_async(fail_midway)()
            return await frames_until_quiet(page, quiet=0.7), await frames_until_quiet(desk)

    page_frames, desk_frames = async_to_sync(scenario)()

    assert page_frames == [] and desk_frames == []
    ticket.refresh_from_db()
    assert ticket.status == "new" and not ticket.messages.filter(body__startswith="Draft").exists()


def test_internal_notes_reach_staff_sockets_only(ticket, customer, org_admin, agent):
    as_customer, as_org_admin, as_agent = headers(customer), headers(org_admin), headers(agent)

    async def scenario():
        async with (
            connected(TICKETS, as_customer) as page,
            connected(TICKETS, as_org_admin) as org_page,
            connected(TICKETS, as_agent) as desk,
        ):
            for socket in (page, org_page, desk):
                await subscribe(socket, ticket.reference)
            note = await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body="Customer is on the legacy plan", is_internal=True
            )
            frames = [await frames_until_quiet(s) for s in (page, org_page, desk)]
            # A page that (re)subscribes is not sent the note either.
            resync = [await subscribe(s, ticket.reference, after=0) for s in (page, desk)]
            return note, frames, resync

    note, (page_frames, org_frames, desk_frames), (page_resync, desk_resync) = async_to_sync(
        scenario
    )()

    assert page_frames == [] and org_frames == []
    (staff_note,) = of_type(desk_frames, "message")
    assert staff_note["id"] == note.pk and staff_note["is_internal"] is True
    assert "hd-internal" in staff_note["html"]
    assert "state" not in staff_note  # a note changes nothing else
    assert note.pk not in [m["id"] for m in page_resync["messages"]]
    assert note.pk in [m["id"] for m in desk_resync["messages"]]


def test_status_changes_and_escalations_are_live(ticket, customer, agent):
    as_customer, as_agent = headers(customer), headers(agent)

    async def scenario():
        async with connected(TICKETS, as_customer) as page, connected(TICKETS, as_agent) as desk:
            await subscribe(page, ticket.reference)
            await subscribe(desk, ticket.reference)
            await database_sync_to_async(services.ticket_escalate)(
                ticket=ticket, kind="complex", reason="Needs the billing team", actor=agent
            )
            escalated = await frames_until_quiet(page), await frames_until_quiet(desk)
            await database_sync_to_async(services.ticket_assign)(
                ticket=ticket, assignee=agent, actor=agent
            )
            await database_sync_to_async(services.ticket_resolve)(ticket=ticket, actor=agent)
            return escalated, await frames_until_quiet(page), await frames_until_quiet(desk)

    (page_esc, desk_esc), page_later, desk_later = async_to_sync(scenario)()

    assert [f["status_label"] for f in of_type(page_esc, "ticket")] == ["With our team"]
    (desk_state,) = of_type(desk_esc, "ticket")
    assert desk_state["badge_class"] == "hd-badge hd-status-escalated"
    assert "Escalated" in [e["description"] for e in desk_state["events"]]
    assert [f["status"] for f in of_type(page_later, "ticket")] == ["escalated", "resolved"]
    assert of_type(page_later, "ticket")[-1]["is_open"] is False
    assert of_type(desk_later, "ticket")[0]["fields"]["assignee"].startswith("agent-a")


def test_a_reconnecting_page_catches_up_on_what_it_missed(ticket, customer, agent):
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            first = await subscribe(page, ticket.reference)
        last_seen = first["messages"][-1]["id"]
        for body in ("First while away", "Second while away"):
            await database_sync_to_async(services.message_add)(
                ticket=ticket, author=agent, body=body
            )
        async with connected(TICKETS, as_customer) as page:
            return await subscribe(page, ticket.reference, after=last_seen)

    resync = async_to_sync(scenario)()

    assert [m["body"] for m in resync["messages"]] == ["First while away", "Second while away"]
    assert resync["state"]["status"] == "awaiting_customer"


def test_the_ai_answer_and_its_metadata_are_live(kb, customer, agent):
    from support.ai.pipeline import analyze_ticket

    ticket = services.ticket_open(
        requester=customer,
        subject="Forgot my password",
        description="How do I reset my password? I forgot it.",
    )
    as_customer, as_agent = headers(customer), headers(agent)

    async def scenario():
        async with connected(TICKETS, as_customer) as page, connected(TICKETS, as_agent) as desk:
            await subscribe(page, ticket.reference)
            await subscribe(desk, ticket.reference)
            outcome = await database_sync_to_async(analyze_ticket)(ticket.pk)
            return outcome, await frames_until_quiet(page), await frames_until_quiet(desk)

    outcome, page_frames, desk_frames = async_to_sync(scenario)()

    assert outcome == "resolved"
    statuses = [f["status"] for f in of_type(page_frames, "ticket")]
    assert statuses[0] == "analyzing" and statuses[-1] == "resolved"
    (answer,) = of_type(page_frames, "message")
    assert answer["sender"] == "AI assistant" and "ai" not in answer
    assert "Forgot password" in answer["body"]
    assert of_type(page_frames, "stream.start") == []  # streaming is for the chat widget
    (staff_answer,) = [m for m in of_type(desk_frames, "message") if not m["is_internal"]]
    assert staff_answer["ai"]["model"] == "local-extractive"
    assert staff_answer["ai"]["article_ids"] == [kb["Reset a forgotten password"].pk]
    assert "confidence" in staff_answer["html"]


def test_a_broken_channel_layer_never_fails_the_change(
    ticket, agent, monkeypatch, caplog, run_effects
):
    class Down:
        async def group_send(self, group, message):
            raise ConnectionError("Redis is down")

    monkeypatch.setattr(realtime, "get_channel_layer", lambda: Down())

    with run_effects():
        message = services.message_add(ticket=ticket, author=agent, body="Still saved")
    realtime.flush()

    assert message.pk and ticket.messages.filter(body="Still saved").exists()
    assert "live update not sent" in caplog.text
