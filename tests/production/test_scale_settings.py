"""Settings past one machine: Redis Sentinel, PgBouncer and Celery queues per kind of
work, each read by the libraries that use them (a settings load in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config import queues
from config.redis_sentinel import parse_sentinels
from config.settings import redis_db_url
from tests.conftest import BASE_DIR, subprocess_env


def run_child(code: str, **env: str) -> dict:
    """Run ``code`` after ``django.setup()`` in a child process; it prints one JSON line."""
    result = subprocess.run(
        [sys.executable, "-c", "import django, json\ndjango.setup()\n" + code],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


SENTINEL_CHILD = r"""
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from channels.layers import get_channel_layer
from channels_redis.utils import create_pool
from config.celery import app
from config.redis_sentinel import redis_client

broker = app.connection_for_write()
layer = get_channel_layer()
channels_pool = create_pool(layer.hosts[0])
cache_pool = cache._cache._get_connection_pool(True)
presence = redis_client(settings.CACHE_URL)
print("RESULT " + json.dumps({
    "broker_url": settings.CELERY_BROKER_URL,
    "broker_transport": type(broker.transport).__name__,
    "broker_master": app.conf.broker_transport_options.get("master_name"),
    "result_backend": type(app.backend).__name__,
    "result_master": app.conf.result_backend_transport_options.get("master_name"),
    "channels_pool": type(channels_pool).__name__,
    "channels_service": channels_pool.service_name,
    "channels_db": channels_pool.connection_kwargs.get("db"),
    "channels_password": channels_pool.connection_kwargs.get("password"),
    "cache_pool": type(cache_pool).__name__,
    "cache_service": cache_pool.service_name,
    "cache_db": cache_pool.connection_kwargs.get("db"),
    "presence_service": presence.connection_pool.service_name,
    "presence_db": presence.connection_pool.connection_kwargs.get("db"),
    "server_side_cursors_off": connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"],
    "prepare_threshold": connection.get_connection_params().get("prepare_threshold", "unset"),
}))
"""


def test_sentinels_reach_celery_channels_and_the_cache_and_pgbouncer_mode_is_safe():
    out = run_child(
        SENTINEL_CHILD,
        REDIS_SENTINELS="sentinel-1:26379, sentinel-2:26380,sentinel-3",
        REDIS_SENTINEL_MASTER="helpdesk",
        REDIS_SENTINEL_PASSWORD="s3cret/pw",
        DATABASE_PGBOUNCER="true",
    )

    assert out["broker_url"] == (
        "sentinel://:s3cret%2Fpw@sentinel-1:26379/0;sentinel://:s3cret%2Fpw@sentinel-2:26380/0;"
        "sentinel://:s3cret%2Fpw@sentinel-3:26379/0"
    )
    assert out["broker_transport"] == "SentinelTransport"
    assert out["broker_master"] == out["result_master"] == "helpdesk"
    assert out["result_backend"] == "SentinelBackend"
    assert (out["channels_pool"], out["channels_service"]) == ("SentinelConnectionPool", "helpdesk")
    assert out["channels_db"] == 3 and out["channels_password"] == "s3cret/pw"
    assert (out["cache_pool"], out["cache_service"], out["cache_db"]) == (
        "SentinelConnectionPool",
        "helpdesk",
        2,
    )
    assert (out["presence_service"], out["presence_db"]) == ("helpdesk", 2)
    # Transaction pooling: no server-side cursors, no prepared statements.
    assert out["server_side_cursors_off"] is True
    assert out["prepare_threshold"] is None


def test_sentinel_addresses_are_read_with_the_default_port_and_a_bad_one_stops_the_start():
    assert parse_sentinels(["s1:26380", " s2 ", ""]) == [("s1", 26380), ("s2", 26379)]
    with pytest.raises(ImproperlyConfigured, match="'sentinel-1:port' is not host:port"):
        parse_sentinels(["sentinel-1:port"])


# ---- queues --------------------------------------------------------------------------

SPLIT_CHILD = r"""
from core.outbox import schedule_after_commit
from config.celery import app

# Through the outbox (send_task by name), as every service schedules work.
schedule_after_commit("support.tasks.analyze_ticket", 0)
schedule_after_commit("support.tasks.ticket_effects", "resolved", 0)
schedule_after_commit("knowledge.tasks.embed_article", 0)
schedule_after_commit("core.tasks.outbox_prune")
print("RESULT " + json.dumps({"declared": sorted(app.amqp.queues)}))
"""


@pytest.fixture
def scratch_broker():
    """A Redis database of its own for the child's broker, emptied after."""
    url = redis_db_url(settings.REDIS_URL, 9)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


@pytest.mark.slow
def test_split_queues_send_ai_and_email_work_to_their_own_queues(transactional_db, scratch_broker):
    url, client = scratch_broker

    out = run_child(SPLIT_CHILD, HELPDESK_CELERY_QUEUES="split", CELERY_BROKER_URL=url)

    # A worker started without -Q consumes every declared queue: nothing is stranded.
    assert out["declared"] == ["ai", "celery", "email"]
    waiting = {name: client.llen(name) for name in queues.QUEUES}
    assert waiting == {"ai": 2, "email": 1, "celery": 1}


def test_by_default_every_task_goes_to_the_one_queue_every_worker_consumes():
    route = current_app.amqp.router.route({}, "support.tasks.analyze_ticket")

    assert settings.HELPDESK_CELERY_QUEUES == "single"
    assert route["queue"].name == "celery"


def test_every_routed_task_exists():
    """A renamed task would silently fall back to the default queue."""
    current_app.loader.import_default_modules()

    for name in (*queues.AI_TASKS, *queues.EMAIL_TASKS):
        assert name in current_app.tasks, name
