"""The transactional outbox: follow-up work that cannot be lost.

A service that owes work after its change (an AI analysis, an email, an embedding, a
GitHub call) calls :func:`schedule_after_commit` inside its transaction. That writes an
:class:`~core.models.OutboxItem` row in the same transaction, so the work commits with the
change or not at all, and hands it to Celery:

1. **Fast path**: right after the commit, the new rows are published to the broker
   (``retry=False``: a broker that is down costs the request one failed connect, then a
   short circuit breaker skips the fast path for a few seconds).
2. **Relay** (:func:`relay`, beat task ``core.tasks.outbox_relay`` every few seconds) sends
   what is still due: items never handed over; items handed to a broker that has since
   restarted (its run id changed) or that nobody started for ``OUTBOX_RESEND_AFTER``
   seconds; items whose worker died mid-run (its lease ran out).
3. **Acknowledgement**: every task runs through :class:`OutboxTask`, which claims the item
   before running (a done or running item is skipped, so a re-sent message never runs the
   work twice), extends the claim's lease while it runs (a heartbeat thread), and records
   ``done``, ``failed`` with the error, or the retry Celery scheduled
   (:mod:`core.tasks_base`). A task that works in batches claims more due items of its
   own kind with :func:`claim_due` (SKIP LOCKED: never an item another worker holds).

Tasks must still be idempotent: a worker killed after the work but before recording
``done`` runs it again on the next delivery.

Changes that happened in the past (the demo's history) are written under
:func:`writing_history`: nothing is owed for them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from core.models import OutboxItem
from core.tasks_base import HEADER

logger = logging.getLogger(__name__)
S = OutboxItem.Status


def _setting(name: str, default):
    return getattr(settings, name, default)


# --------------------------------------------------------------------------------------
# Scheduling
# --------------------------------------------------------------------------------------


def schedule_after_commit(task, *args, countdown: float = 0, **kwargs) -> OutboxItem | None:
    """Record ``task(*args, **kwargs)`` as owed by the current transaction.

    ``task`` is a Celery task or its name; arguments must be JSON (ids, not objects).
    Outside a transaction the row commits at once and is handed over straight away.
    Records nothing (returns None) while :func:`writing_history`.
    """
    if _writing_history.get():
        return None
    name = task if isinstance(task, str) else task.name
    item = OutboxItem.objects.create(
        task=name,
        args=list(args),
        kwargs=kwargs,
        available_at=timezone.now() + timedelta(seconds=countdown),
    )
    if countdown <= 0:
        transaction.on_commit(lambda: send_now([item.pk]))
    return item


_writing_history: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "outbox_writing_history", default=False
)


def is_writing_history() -> bool:
    """True inside :func:`writing_history`: the changes being written are past ones."""
    return _writing_history.get()


@contextmanager
def writing_history() -> Iterator[None]:
    """Write changes that happened in the past (the demo's history, an import) through
    the services, with nothing following from them now.

    The block runs in one transaction. Inside it the outbox records no work (no AI
    analysis, email, training harvest, embedding …), and the after-commit callbacks
    registered inside it (live updates, the outbox's fast path) are dropped instead of
    run when it commits. The rows are exactly those the services write.
    """
    with transaction.atomic():
        # Django keeps the pending callbacks on the connection; ours are the tail.
        registered = len(connection.run_on_commit)
        token = _writing_history.set(True)
        try:
            yield
        finally:
            _writing_history.reset(token)
            del connection.run_on_commit[registered:]


# The fast path stays off this long after the broker refused a message, so that during an
# outage each request does not wait on a connect first. The relay covers what it skips.
_CIRCUIT_SECONDS = 5.0
_circuit_open_until = 0.0


def _open_circuit() -> None:
    global _circuit_open_until
    _circuit_open_until = time.monotonic() + _CIRCUIT_SECONDS


def send_now(ids: list[int]) -> int:
    """The fast path: hand these just-committed items to the broker, unless it was down a
    moment ago. One UPDATE … RETURNING claims them for sending. Never raises: what could
    not be sent is pending again, for the relay."""
    if time.monotonic() < _circuit_open_until:
        return 0
    try:
        run_id = _recent_run_id()
    except Exception as exc:
        _open_circuit()
        logger.warning("outbox: broker unavailable (%s); items wait for the relay", exc)
        return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE core_outboxitem SET status = %s, sends = sends + 1, sent_at = %s,"
                " broker_run_id = %s WHERE id = ANY(%s) AND status = %s"
                " RETURNING id, task, args, kwargs, sends",
                [S.SENT, timezone.now(), run_id, list(ids), S.PENDING],
            )
            rows = cursor.fetchall()
    except Exception:  # a committed change must never fail on its follow-up work
        logger.exception("outbox fast path failed", extra={"outbox_ids": ids})
        return 0
    sent = 0
    for pk, task, args, kwargs, sends in rows:
        item = OutboxItem(pk=pk, task=task, args=_json(args), kwargs=_json(kwargs), sends=sends)
        try:
            _publish(item)
        except Exception as exc:
            _open_circuit()
            _unsend(item, exc)
            logger.warning("outbox: could not send %s: %s", item, exc)
        else:
            sent += 1
    return sent


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _unsend(item: OutboxItem, exc: Exception) -> None:
    """The broker refused it: back to how it was before this send."""
    OutboxItem.objects.filter(pk=item.pk, status=S.SENT).update(
        status=S.PENDING if item.sends == 1 else S.SENT,
        sends=F("sends") - 1,
        sent_at=None,
        last_error=f"not sent: {type(exc).__name__}: {exc}"[:2000],
    )


_run_id_cache: tuple[float, str] = (0.0, "")


def _recent_run_id() -> str:
    """The broker's run id, asked at most once a relay period per process."""
    global _run_id_cache
    checked, run_id = _run_id_cache
    if time.monotonic() - checked > _setting("OUTBOX_RELAY_SECONDS", 5.0):
        run_id = "" if current_app.conf.task_always_eager else _broker_run_id()
        _run_id_cache = (time.monotonic(), run_id)
    return run_id


# --------------------------------------------------------------------------------------
# Relay
# --------------------------------------------------------------------------------------


def _broker_run_id() -> str:
    """The broker instance's identity: it changes when Redis restarts (and may have lost
    its queues). Raises when the broker does not answer."""
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=_setting("OUTBOX_BROKER_TIMEOUT", 1.0))
        client = conn.default_channel.client
        return str(client.info("server").get("run_id", ""))


def _due(now, run_id: str) -> Q:
    resend_after = timedelta(seconds=_setting("OUTBOX_RESEND_AFTER", 300))
    return (
        Q(status=S.PENDING, available_at__lte=now)
        | Q(status=S.SENT, sent_at__lt=now - resend_after)
        | (Q(status=S.SENT) & ~Q(broker_run_id="") & ~Q(broker_run_id=run_id))
        | Q(status=S.RUNNING, lease_until__lt=now)
    )


def _publish(item: OutboxItem) -> None:
    app = current_app
    options = {"headers": {HEADER: item.pk}}
    if app.conf.task_always_eager:  # tests that run effects inline: send_task never does
        app.loader.import_default_modules()
        app.tasks[item.task].apply_async(item.args, item.kwargs, **options)
    else:
        # No result: the outbox records the outcome. (Asking for one would also make the
        # Redis result backend subscribe first, retrying 20 times while Redis is down.)
        app.send_task(
            item.task,
            args=item.args,
            kwargs=item.kwargs,
            retry=False,
            ignore_result=True,
            **options,
        )


def relay(*, ids: list[int] | None = None, limit: int = 500) -> int:
    """Hand due items to the broker; returns how many were sent.

    With ``ids``: only those, if still pending (the fast path). Rows are locked with SKIP
    LOCKED, so two relays never send the same item at once. Stops at the first broker
    error; what is left stays due for the next run.
    """
    app = current_app
    eager = app.conf.task_always_eager
    try:
        run_id = "" if eager else _broker_run_id()
    except Exception as exc:
        _open_circuit()
        logger.warning("outbox: broker unavailable (%s); items wait for the relay", exc)
        return 0
    now = timezone.now()
    sent = 0
    with transaction.atomic():
        rows = OutboxItem.objects.select_for_update(skip_locked=True)
        if ids is not None:
            rows = rows.filter(pk__in=ids, status=S.PENDING)
        else:
            rows = rows.filter(_due(now, run_id))
        items = list(rows.order_by("available_at", "id")[:limit])
        resent = [i.pk for i in items if i.sends]
        for item in items:
            # Recorded as sent before publishing: an eager run (tests) claims the row and
            # records its outcome inside _publish.
            item.status, item.sent_at, item.broker_run_id = S.SENT, now, run_id
            item.sends += 1
            item.save(update_fields=["status", "sent_at", "broker_run_id", "sends"])
            try:
                _publish(item)
            except Exception as exc:
                _open_circuit()
                logger.warning("outbox: could not send %s: %s", item, exc)
                _unsend(item, exc)
                break
            sent += 1
    if resent:
        logger.warning("outbox: sent again %s", resent, extra={"outbox_ids": resent})
    return sent


# --------------------------------------------------------------------------------------
# The worker side: claim, lease, outcome
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    item_id: int
    attempt: int
    #: The previous attempt started and its worker died (its lease ran out): the task may
    #: need to take over state that attempt left half-way.
    resumed: bool


current_claim_var: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "outbox_claim", default=None
)


def current_claim() -> Claim | None:
    """The outbox item the running task is working on, if it came from the outbox."""
    return current_claim_var.get()


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease() -> timedelta:
    return timedelta(seconds=_setting("OUTBOX_LEASE_SECONDS", 30))


def claim_item(item_id: int) -> Claim | None:
    now = timezone.now()
    with transaction.atomic():
        item = OutboxItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None or item.status in (S.DONE, S.FAILED):
            return None
        if item.status == S.RUNNING and item.lease_until and item.lease_until > now:
            return None  # another worker holds it; if that worker dies, the relay re-sends
        # A lease is released with every recorded outcome (done, failed, retry): one still
        # here belonged to an attempt that died mid-run (the relay re-sent its item).
        resumed = item.lease_until is not None
        item.status, item.started_at, item.lease_until = S.RUNNING, now, now + _lease()
        item.worker, item.attempts = _worker_name(), item.attempts + 1
        item.save(update_fields=["status", "started_at", "lease_until", "worker", "attempts"])
        return Claim(item_id=item.pk, attempt=item.attempts, resumed=resumed)


def claim_due(task: str, *, limit: int, now=None) -> list[tuple[Claim, OutboxItem]]:
    """Claim up to ``limit`` more items of ``task`` that are due and that no worker has
    started (pending, or handed to the broker): a worker that works in batches takes them
    along with the item it was sent. Each is claimed as :func:`claim_item` would (running,
    with a lease the caller must keep alive and an outcome it must record); their own
    messages, when they arrive, find them running or done and are skipped. Rows are locked
    with SKIP LOCKED, so two workers never claim the same item; an item whose worker dies
    is re-sent by the relay when its lease runs out, as ever. Oldest first."""
    if limit <= 0:
        return []
    now = now or timezone.now()
    with transaction.atomic():
        items = list(
            OutboxItem.objects.select_for_update(skip_locked=True)
            .filter(task=task, available_at__lte=now)
            .filter(Q(status=S.PENDING) | Q(status=S.SENT, sent_at__lte=now))
            .order_by("available_at", "id")[:limit]
        )
        claimed = []
        for item in items:
            # A lease still here: the item's previous worker died mid-run (as claim_item).
            resumed = item.lease_until is not None
            item.status, item.started_at, item.lease_until = S.RUNNING, now, now + _lease()
            item.worker, item.attempts = _worker_name(), item.attempts + 1
            claimed.append((Claim(item_id=item.pk, attempt=item.attempts, resumed=resumed), item))
        OutboxItem.objects.bulk_update(
            items, ["status", "started_at", "lease_until", "worker", "attempts"]
        )
    return claimed


def record_outcome(item_id: int, **fields) -> None:
    OutboxItem.objects.filter(pk=item_id, status=S.RUNNING).update(lease_until=None, **fields)


# --------------------------------------------------------------------------------------
# For people: readiness and admin
# --------------------------------------------------------------------------------------


def summary() -> dict:
    """Open and failed items, and the age of the oldest open one (readiness reports it)."""
    open_rows = OutboxItem.objects.filter(status__in=OutboxItem.OPEN)
    oldest = open_rows.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "open": open_rows.count(),
        "oldest_open_seconds": round((timezone.now() - oldest).total_seconds(), 1)
        if oldest
        else None,
        "failed": OutboxItem.objects.filter(status=S.FAILED).count(),
    }


def retry(item_ids: list[int]) -> int:
    """Send failed (or stuck) items again now; returns how many were queued."""
    changed = (
        OutboxItem.objects.filter(pk__in=item_ids)
        .exclude(status=S.DONE)
        .update(status=S.PENDING, available_at=timezone.now(), lease_until=None, last_error="")
    )
    transaction.on_commit(lambda: send_now(list(item_ids)))
    return changed


def prune(*, keep_days: int) -> int:
    """Delete done items older than ``keep_days`` (failed ones stay until a person acts);
    returns how many went."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = OutboxItem.objects.filter(status=S.DONE, created_at__lt=cutoff).delete()
    return deleted
