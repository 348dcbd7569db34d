"""A Channels group message crosses the real Redis layer between two layer instances."""

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings


def _layer() -> RedisChannelLayer:
    # A fresh instance with the project's config stands for another process.
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    return RedisChannelLayer(**config)


def test_the_configured_layer_is_redis():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


def test_group_message_crosses_redis_between_processes():
    sender, receiver = _layer(), _layer()

    async def scenario():
        channel = await receiver.new_channel()
        await receiver.group_add("ticket-42", channel)
        # The membership lives in Redis, where the sending side can see it.
        client = redis.Redis.from_url(settings.CHANNELS_REDIS_URL)
        try:
            assert client.exists("helpdesk:group:ticket-42") == 1
        finally:
            client.close()
        await sender.group_send("ticket-42", {"type": "ticket.message", "body": "hi"})
        message = await receiver.receive(channel)
        await receiver.group_discard("ticket-42", channel)
        await sender.close_pools()
        await receiver.close_pools()
        return message

    message = async_to_sync(scenario)()

    assert message == {"type": "ticket.message", "body": "hi"}
