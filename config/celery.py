"""The Celery app: Redis broker, JSON only, late acks; settings under ``CELERY_*``.

Run a worker with ``celery -A config worker`` and beat with ``celery -A config beat``
(``make run`` starts both). Tasks live in each app's ``tasks.py``.
"""

from __future__ import annotations

import os
import time

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task runs through the outbox's base class (core.tasks_base): a message that names
# an outbox item claims it first and records its outcome.
app = Celery("helpdesk", task_cls="core.tasks_base:OutboxTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_KEY = "helpdesk:beat:last"


@app.task(name="helpdesk.heartbeat", ignore_result=True)
def heartbeat() -> float:
    """Scheduled by beat every minute; readiness shows when beat last ran."""
    from django.core.cache import cache

    now = time.time()
    cache.set(HEARTBEAT_KEY, now, timeout=None)
    return now


@app.task(name="helpdesk.ping")
def ping(value: str = "pong") -> dict:
    """Round trip through the broker and a worker; used by tests and operators."""
    from config.observability import current_request_id

    return {"value": value, "request_id": current_request_id()}


def _connect_signals() -> None:
    from config import metrics
    from config.observability import connect_celery_signals

    connect_celery_signals()
    metrics.connect_celery_signals()  # tasks by name and outcome, their run time


_connect_signals()
