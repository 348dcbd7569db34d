"""Who may open a live connection and what it may follow: the session or an API token,
the page's origin, per-ticket permissions (refused and logged), and the limits on what a
connection may send, each answered with a clear error frame."""

import json
import logging

import pytest
from asgiref.sync import async_to_sync
from rest_framework.authtoken.models import Token

from support import services
from tests.realtime.conftest import communicator, connected, headers, next_of

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = "/ws/tickets/"


async def refused_after_accept(path, header_list) -> tuple[dict, int]:
    """The error frame and the close code of a connection the consumer turns away."""
    socket = communicator(path, header_list)
    accepted, _ = await socket.connect(timeout=5)
    assert accepted
    frame = await socket.receive_json_from(timeout=5)
    closed = await socket.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    await socket.wait()
    return frame, closed["code"]


async def handshake(path, header_list):
    socket = communicator(path, header_list)
    accepted, code = await socket.connect(timeout=5)
    if accepted:
        await socket.disconnect()
    return accepted, code


@pytest.mark.parametrize("path", [TICKETS, "/ws/agents/feed/", "/ws/chat/"])
def test_nobody_signed_in_is_told_so_and_closed(path):
    frame, code = async_to_sync(refused_after_accept)(path, headers())

    assert frame == {
        "type": "error",
        "code": "unauthenticated",
        "message": "Sign in to get live updates.",
    }
    assert code == 4401


def test_a_page_of_another_site_cannot_open_a_socket(customer, caplog):
    with caplog.at_level(logging.WARNING, logger="config.websocket"):
        accepted, _ = async_to_sync(handshake)(
            TICKETS, headers(customer, origin="https://evil.example")
        )

    assert accepted is False
    assert "origin 'https://evil.example' is not allowed" in caplog.text


def test_a_session_cookie_without_an_origin_is_refused(customer):
    accepted, _ = async_to_sync(handshake)(TICKETS, headers(customer, origin=None))

    assert accepted is False


def test_trusted_origins_and_allowed_hosts_on_any_port_are_accepted(customer, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://help.example.com"]

    for origin in ("https://help.example.com", "http://localhost:8000", "http://127.0.0.1:5"):
        accepted, _ = async_to_sync(handshake)(TICKETS, headers(customer, origin=origin))
        assert accepted, origin
    accepted, _ = async_to_sync(handshake)(
        TICKETS, headers(customer, origin="https://help.example.com:8443")
    )
    assert accepted is False


def test_an_api_client_authenticates_with_its_token_without_an_origin(ticket, customer):
    token = Token.objects.create(user=customer)

    async def scenario():
        socket = communicator(TICKETS, headers(origin=None, token=token.key))
        accepted, _ = await socket.connect(timeout=5)
        hello = await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"action": "subscribe", "ticket": ticket.reference})
        subscribed = await next_of(socket, "subscribed")
        await socket.disconnect()
        return accepted, hello, subscribed

    accepted, hello, subscribed = async_to_sync(scenario)()

    assert accepted
    assert hello["user"] == {"id": customer.pk, "name": customer.get_full_name(), "staff": False}
    assert hello["limits"]["max_message_bytes"] == 16 * 1024
    assert subscribed["messages"][0]["body"] == "The export button spins forever."


def test_a_wrong_token_is_refused_with_its_reason():
    frame, code = async_to_sync(refused_after_accept)(
        TICKETS, headers(origin=None, token="not-a-token")
    )

    assert (frame["code"], frame["message"], code) == (
        "unauthenticated",
        "The API token is not valid.",
        4401,
    )


def test_following_another_customers_ticket_is_refused_and_logged(
    ticket, customer, other_customer, caplog
):
    theirs = services.ticket_open(requester=other_customer, subject="Mine", description="Private")
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            answers = []
            for reference in (theirs.reference, "HD-19990101-0001"):
                await page.send_json_to({"action": "subscribe", "ticket": reference})
                answers.append(await page.receive_json_from(timeout=5))
            # The connection stays usable for what the customer may follow.
            await page.send_json_to({"action": "subscribe", "ticket": ticket.reference})
            answers.append(await next_of(page, "subscribed"))
            # Nothing of the other ticket reaches this socket.
            await _add_reply(theirs)
            return answers, await page.receive_nothing(timeout=0.7)

    with caplog.at_level(logging.WARNING, logger="support.consumers"):
        (other, missing, own), quiet = async_to_sync(scenario)()

    # The same answer whether the ticket exists or not: others' tickets stay unknown.
    assert other == {
        "type": "error",
        "code": "forbidden",
        "message": "No such ticket, or you may not follow it.",
        "ticket": theirs.reference,
    }
    assert missing["code"] == "forbidden"
    assert own["ticket"] == ticket.reference and quiet
    refusals = [r for r in caplog.records if "subscription refused" in r.getMessage()]
    assert [r.ticket for r in refusals] == [theirs.reference, "HD-19990101-0001"]
    assert refusals[0].user_id == customer.pk


async def _add_reply(ticket):
    from channels.db import database_sync_to_async

    from tests.factories import AgentFactory

    agent = await database_sync_to_async(AgentFactory)(username="agent-z")
    await database_sync_to_async(services.message_add)(ticket=ticket, author=agent, body="Hi")


def test_customers_cannot_open_the_agents_feed_nor_staff_the_chat(customer, agent):
    feed, feed_code = async_to_sync(refused_after_accept)("/ws/agents/feed/", headers(customer))
    chat, chat_code = async_to_sync(refused_after_accept)("/ws/chat/", headers(agent))

    assert (feed["code"], feed_code) == ("forbidden", 4403)
    assert (chat["code"], chat_code) == ("forbidden", 4403)
    assert "customers" in chat["message"]


def test_a_message_over_the_size_limit_gets_an_error_frame(customer, settings):
    settings.HELPDESK_WS_MAX_MESSAGE_BYTES = 1024
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            await page.send_to(text_data='{"action": "ping", "pad": "' + "é" * 600 + '"}')
            too_large = await page.receive_json_from(timeout=5)
            await page.send_json_to({"action": "ping"})
            return too_large, await page.receive_json_from(timeout=5)

    too_large, still_open = async_to_sync(scenario)()

    assert too_large == {
        "type": "error",
        "code": "message_too_large",
        "message": "A message may be at most 1024 bytes.",
        "limit": 1024,
    }
    assert still_open == {"type": "pong"}


def test_a_connection_sending_too_fast_is_slowed_then_closed(customer, settings):
    settings.HELPDESK_WS_BURST = 3
    settings.HELPDESK_WS_MESSAGES_PER_MINUTE = 6
    as_customer = headers(customer)

    async def scenario():
        socket = communicator(TICKETS, as_customer)
        await socket.connect(timeout=5)
        await socket.receive_json_from(timeout=5)  # hello
        frames = []
        for _ in range(8):
            await socket.send_json_to({"action": "ping"})
            output = await socket.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                frames.append(("closed", output["code"]))
                break
            frames.append(json.loads(output["text"]))
        await socket.wait()
        return frames

    frames = async_to_sync(scenario)()

    assert frames[:3] == [{"type": "pong"}] * 3
    limited = frames[3]
    assert limited["code"] == "rate_limited" and 9 <= limited["retry_after"] <= 10
    assert [f["code"] for f in frames[4:6]] == ["rate_limited", "rate_limited"]
    assert frames[6]["message"] == "Too many messages; the connection is closed."
    assert frames[7] == ("closed", 4429)


def test_frames_that_are_not_actions_get_error_frames(customer):
    as_customer = headers(customer)

    async def scenario():
        async with connected(TICKETS, as_customer) as page:
            answers = []
            for raw in ("not json", '["a list"]', '{"action": "explode"}', '{"action": 3}'):
                await page.send_to(text_data=raw)
                answers.append(await page.receive_json_from(timeout=5))
            await page.send_to(bytes_data=b"\x00\x01")
            answers.append(await page.receive_json_from(timeout=5))
            return [a["code"] for a in answers]

    assert async_to_sync(scenario)() == [
        "bad_json",
        "unknown_action",
        "unknown_action",
        "unknown_action",
        "bad_frame",
    ]
