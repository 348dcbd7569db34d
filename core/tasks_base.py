"""The base class of every Celery task (``config.celery``): the worker side of the outbox.

A message that names an outbox item (header ``outbox_id``) runs only if it can claim the
item, and records what came of it; other messages (beat's) run as usual. Nothing here
imports a model at import time: Celery loads this class before Django is set up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from celery import Task
from celery.exceptions import Ignore, Reject, Retry

logger = logging.getLogger(__name__)

HEADER = "outbox_id"


class OutboxTask(Task):
    """Claims the outbox item a message names, runs the task, records the outcome."""

    def __call__(self, *args, **kwargs):
        from django.utils import timezone

        from core.outbox import S, claim_item, current_claim_var, record_outcome

        headers = getattr(self.request, "headers", None) or {}
        item_id = headers.get(HEADER) or getattr(self.request, HEADER, None)
        if item_id is None:
            return super().__call__(*args, **kwargs)
        claim = claim_item(int(item_id))
        if claim is None:
            logger.info("outbox: item %s is done or running elsewhere; skipped", item_id)
            return None
        token = current_claim_var.set(claim)
        heartbeat = not self.request.is_eager  # an inline run (tests) needs no lease
        if heartbeat:
            _Heartbeat.hold(claim.item_id)
        try:
            result = super().__call__(*args, **kwargs)
        except Retry as exc:
            when = exc.when if hasattr(exc.when, "tzinfo") else None
            if isinstance(exc.when, int | float):
                when = timezone.now() + timedelta(seconds=exc.when)
            record_outcome(
                claim.item_id,
                status=S.SENT,
                sent_at=when or timezone.now(),
                broker_run_id="",
                last_error=f"retrying: {exc.exc!r}"[:2000] if exc.exc else "retrying",
            )
            raise
        except (Ignore, Reject):
            record_outcome(claim.item_id, status=S.DONE, finished_at=timezone.now())
            raise
        except BaseException as exc:
            record_outcome(
                claim.item_id,
                status=S.FAILED,
                finished_at=timezone.now(),
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            raise
        else:
            record_outcome(claim.item_id, status=S.DONE, finished_at=timezone.now(), last_error="")
            return result
        finally:
            if heartbeat:
                _Heartbeat.release(claim.item_id)
            current_claim_var.reset(token)


def hold_lease(item_id: int) -> None:
    """Keep extending the lease of an item this process claimed with
    ``core.outbox.claim_due`` until :func:`release_lease` (after recording its outcome)."""
    _Heartbeat.hold(item_id)


def release_lease(item_id: int) -> None:
    _Heartbeat.release(item_id)


class _Heartbeat:
    """Extends the leases of the items this process is running, from a daemon thread, so
    a long task keeps its claim and a killed one loses it within one lease."""

    _held: set[int] = set()
    _lock = threading.Lock()
    _pid: int | None = None

    @classmethod
    def hold(cls, item_id: int) -> None:
        with cls._lock:
            cls._held.add(item_id)
            if cls._pid != os.getpid():  # first use in this (possibly forked) process
                cls._pid = os.getpid()
                threading.Thread(target=cls._run, name="outbox-heartbeat", daemon=True).start()

    @classmethod
    def release(cls, item_id: int) -> None:
        with cls._lock:
            cls._held.discard(item_id)

    @classmethod
    def _run(cls) -> None:
        from django.db import connection
        from django.utils import timezone

        from core.models import OutboxItem
        from core.outbox import S, _lease

        interval = max(_lease().total_seconds() / 3, 0.5)
        while True:
            time.sleep(interval)
            with cls._lock:
                held = list(cls._held)
            if not held:
                continue
            try:
                OutboxItem.objects.filter(pk__in=held, status=S.RUNNING).update(
                    lease_until=timezone.now() + _lease()
                )
            except Exception:
                logger.warning("outbox: could not extend leases of %s", held, exc_info=True)
            finally:
                connection.close()
