"""The Celery worker really executes tasks that travel through Redis (no eager mode)."""

import pytest
import redis
from django.conf import settings

from config.celery import app, ping
from config.observability import request_id_var


def test_celery_is_configured_for_a_real_redis_broker():
    assert app.conf.task_always_eager is False
    assert app.conf.broker_url.startswith("redis://")
    assert app.conf.task_acks_late is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


@pytest.mark.slow
def test_a_task_queued_in_redis_is_executed_by_a_worker_process(request):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    token = request_id_var.set("req-0123456789abcdef")
    try:
        result = ping.delay("hello")
    finally:
        request_id_var.reset(token)

    # With no worker running yet, the message waits in Redis's "celery" list.
    assert broker.llen("celery") == 1

    request.getfixturevalue("celery_worker_process")
    outcome = result.get(timeout=30)

    assert outcome == {"value": "hello", "request_id": "req-0123456789abcdef"}
    assert broker.llen("celery") == 0
