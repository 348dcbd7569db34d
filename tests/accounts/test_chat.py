"""The chat socket's ``start`` waits for a verified email like the portal and the API."""

import pytest
from asgiref.sync import async_to_sync

from support.models import Ticket
from tests.realtime.conftest import connected, headers, next_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_chat_refuses_to_start_before_verification(unverified):
    as_unverified = headers(unverified)

    async def scenario():
        async with connected("/ws/chat/", as_unverified) as chat:
            await chat.send_json_to({"action": "start", "message": "Hello there"})
            return await next_of(chat, "error")

    frame = async_to_sync(scenario)()
    assert frame["code"] == "email_unverified" and frame["action"] == "start"
    assert not Ticket.objects.filter(requester=unverified).exists()
