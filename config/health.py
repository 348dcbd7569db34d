"""Liveness and readiness endpoints for load balancers and orchestrators.

``/health/`` answers 200 while the process serves requests. ``/health/ready/`` checks each
dependency the product cannot work without (PostgreSQL, the pgvector extension, Redis, the
Celery broker) and answers 503 when any one is down, with a per-component report. When
beat last ran and the outbox (open items and the age of the oldest, failed items) are
reported too, for information: a stopped beat or worker does not make the web process
unready.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.redis_sentinel import redis_client

TIMEOUT_SECONDS = 2.0


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_pgvector() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed in this database")
    return {"version": row[0]}


def check_redis() -> dict:
    client = redis_client(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return {"version": client.info("server").get("redis_version")}
    finally:
        client.close()


def check_broker() -> dict:
    from config.celery import app

    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
        # The Redis transport connects lazily; a channel round trip proves the broker answers.
        conn.default_channel.client.ping()
    return {"transport": "redis"}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "pgvector": check_pgvector,
    "redis": check_redis,
    "celery_broker": check_broker,
}


def _run(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        status = "up"
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        detail = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        status = "down"
    return {
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        **detail,
    }


def _beat_last_seen() -> float | None:
    from config.celery import HEARTBEAT_KEY

    try:
        last = cache.get(HEARTBEAT_KEY)
    except Exception:
        return None
    return round(time.time() - last, 1) if last else None


def _outbox_summary() -> dict | None:
    """Follow-up work not yet done, and how long the oldest has waited: a growing age
    means no worker or no broker (information; it does not make the process unready)."""
    from core import outbox

    try:
        return outbox.summary()
    except Exception:
        return None


@never_cache
@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readiness(request):
    components = {name: _run(check) for name, check in CHECKS.items()}
    ready = all(c["status"] == "up" for c in components.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "components": components,
        "celery_beat_last_seen_seconds_ago": _beat_last_seen(),
        "outbox": _outbox_summary() if components["database"]["status"] == "up" else None,
    }
    return JsonResponse(body, status=200 if ready else 503)
