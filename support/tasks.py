"""Celery tasks of support: thin, take ids, idempotent, call services."""

from __future__ import annotations

import logging
import random
import smtplib

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.core.cache import cache

from support import notifications
from support.models import Escalation, Message, Ticket

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_up_ai(**_kwargs) -> None:
    """Each worker process that may analyse tickets loads the embedding model and builds
    the examples' index when it starts, not on its first ticket (``planner.warm_up``).
    Off under tests (``HELPDESK_AI_WARM_UP``): their many short-lived workers rarely
    analyse, and each warm-up costs a process several seconds of CPU."""
    if not settings.HELPDESK_AI_WARM_UP or not _consumes_ai_queue():
        return
    from support.ai import planner

    try:
        planner.warm_up()
    except Exception:  # the first analysis tries again, and escalates if it must
        logger.exception("AI warm-up failed")


def _consumes_ai_queue() -> bool:
    """Whether this worker consumes the queue ``analyze_ticket`` goes to (queues split,
    config/queues.py: an email-only worker needs no model)."""
    from celery import current_app

    route = (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).get(
        "support.tasks.analyze_ticket", {}
    )
    queue = route.get("queue", current_app.conf.task_default_queue)
    try:
        return queue in current_app.amqp.queues.consume_from
    except Exception:
        return True


def is_transient(exc: BaseException) -> bool:
    """Worth another try later: the network, a timeout, a disconnect, an SMTP server that
    answers 4xx (busy, greylisting). A 5xx answer (recipient refused, authentication
    rejected) will not change by waiting."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPException | OSError | ConnectionError | TimeoutError)


@shared_task(bind=True, acks_late=True, max_retries=settings.HELPDESK_EMAIL_MAX_RETRIES)
def ticket_effects(
    self,
    kind: str,
    ticket_id: int,
    message_id: int | None = None,
    escalation_id: int | None = None,
    user_id: int | None = None,
) -> int:
    """What follows a committed ticket change: the emails of ``support.notifications``.

    Scheduled through the outbox, which runs it once per change (a re-sent message finds
    the item done). A transient SMTP or network error is retried with exponential backoff;
    the final failure is recorded on the ticket (an internal event) and stays visible on
    the outbox item, never silent.
    """
    ids = {"message_id": message_id, "escalation_id": escalation_id, "user_id": user_id}
    ticket = (
        Ticket.objects.select_related("requester", "assignee", "team").filter(pk=ticket_id).first()
    )
    if ticket is None:
        return 0
    try:
        return _run(kind, ticket, **ids)
    except Exception as exc:
        retries = self.request.retries
        if is_transient(exc) and retries < self.max_retries:
            base = settings.HELPDESK_EMAIL_RETRY_BASE_SECONDS
            countdown = min(base * 2**retries, 3600) * random.uniform(0.8, 1.2)  # noqa: S311
            logger.warning(
                "email %s for ticket %s failed (%s); retry %s in %.0f s",
                kind,
                ticket_id,
                exc,
                retries + 1,
                countdown,
                extra={"effect": kind, "ticket_id": ticket_id},
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        from support import services

        services.ticket_notification_failed(
            ticket_id=ticket_id,
            effect=kind,
            error=f"{type(exc).__name__}: {exc}",
            attempts=retries + 1,
        )
        if kind == "public_reply" and message_id:
            # Shown beside the reply to agents, like a provider's bounce.
            message = Message.objects.filter(pk=message_id).first()
            if message is not None:
                services.message_record_delivery(
                    message=message,
                    event="failed",
                    detail={
                        "event_id": f"local:{self.request.id}",
                        "esp": "SMTP",
                        "description": f"{type(exc).__name__}: {exc}"[:500],
                    },
                )
        logger.error(
            "email %s for ticket %s given up after %s attempts: %s",
            kind,
            ticket_id,
            retries + 1,
            exc,
            extra={"effect": kind, "ticket_id": ticket_id},
        )
        raise


def _run(kind: str, ticket: Ticket, *, message_id, escalation_id, user_id) -> int:
    if kind == "public_reply":
        return notifications.public_reply(ticket, Message.objects.get(pk=message_id))
    if kind == "resolved":
        return notifications.resolved(ticket)
    if kind == "escalated":
        return notifications.escalated(ticket, Escalation.objects.get(pk=escalation_id))
    if kind == "assigned":
        from django.contrib.auth import get_user_model

        return notifications.assigned(ticket, get_user_model().objects.get(pk=user_id))
    if kind == "customer_replied":
        return notifications.customer_replied(ticket, Message.objects.get(pk=message_id))
    return 0  # ticket_opened, rated: no email; later parts of the product act on them


@shared_task(bind=True, acks_late=True, max_retries=0)
def analyze_ticket(self, ticket_id: int) -> str:
    """The AI agent's turn on a ticket; safe to deliver twice (only "new" is analyzed).

    When the outbox sends it again because the worker of the previous attempt died
    mid-analysis, that attempt's "analyzing" ticket is taken over and analyzed anew.

    A worker takes other analyses that are due with it (``HELPDESK_AI_BATCH_SIZE`` in
    all, claimed from the outbox: never one another worker holds) and embeds their
    questions in one call; each ticket's outbox item is recorded done as soon as it is,
    and their own messages, when they come, find them done. A worker killed mid-batch
    loses nothing: the items it had not finished are re-sent when their leases run out.
    """
    from core.outbox import claim_due, current_claim
    from support.ai.pipeline import analyze_ticket as run

    claim = current_claim()
    batch = settings.HELPDESK_AI_BATCH_SIZE
    others = []
    if claim is not None and not self.request.is_eager and batch > 1:
        others = claim_due(self.name, limit=batch - 1)
    if not others:
        return run(ticket_id, resume=bool(claim and claim.resumed))
    return _analyze_batch(ticket_id, claim, others)


def _analyze_batch(ticket_id: int, claim, others: list) -> str:
    """Analyse the task's own ticket and those of the claimed ``others`` ((claim, outbox
    item) pairs) as one batch, recording each other item's outcome as soon as its ticket
    is done. The own ticket's error, if any, is raised at the end: the outbox records it
    as it records a single analysis's."""
    from collections import defaultdict

    from core.tasks_base import hold_lease, release_lease
    from support.ai.pipeline import analyze_tickets

    claims_of: dict[int, list] = defaultdict(list)  # ticket id → the other items naming it
    for other, item in others:
        claims_of[_ticket_of(item)].append(other)
        hold_lease(other.item_id)
    errors: dict[int, BaseException] = {}

    def on_done(done_id: int, outcome: str, error: BaseException | None) -> None:
        if error is not None:
            errors[done_id] = error
        for other in claims_of.pop(done_id, []):
            _record_claimed(other.item_id, error)

    resumed = {tid for tid, claims in claims_of.items() if any(c.resumed for c in claims)}
    if claim.resumed:
        resumed.add(ticket_id)
    order = [ticket_id, *(tid for tid in claims_of if tid != ticket_id)]
    try:
        outcomes = analyze_tickets(order, resumed=resumed, on_done=on_done)
    finally:
        # Left only when the batch itself broke: the relay re-sends them once their
        # leases run out, and the next attempt takes their tickets over.
        for claims in claims_of.values():
            for other in claims:
                release_lease(other.item_id)
    if ticket_id in errors:
        raise errors[ticket_id]
    return outcomes[ticket_id]


def _record_claimed(item_id: int, error: BaseException | None) -> None:
    from django.utils import timezone

    from core.outbox import S, record_outcome
    from core.tasks_base import release_lease

    if error is None:
        record_outcome(item_id, status=S.DONE, finished_at=timezone.now(), last_error="")
    else:
        record_outcome(
            item_id,
            status=S.FAILED,
            finished_at=timezone.now(),
            last_error=f"{type(error).__name__}: {error}"[:2000],
        )
    release_lease(item_id)


def _ticket_of(item) -> int:
    return int(item.args[0] if item.args else item.kwargs["ticket_id"])


@shared_task(ignore_result=True)
def sweep_stuck_tickets(stuck_minutes: int = 10) -> dict:
    """Tickets whose analysis died or never started: escalate or queue them again."""
    from datetime import timedelta

    from django.db.models import BigIntegerField
    from django.db.models.fields.json import KeyTextTransform
    from django.db.models.functions import Cast
    from django.utils import timezone

    from core.models import OutboxItem
    from support import services

    cutoff = timezone.now() - timedelta(minutes=stuck_minutes)
    # An analysis the outbox still owes (broker away, a dead worker's lease running out)
    # is the outbox's to deliver: neither given up on nor scheduled a second time.
    owed = OutboxItem.objects.filter(
        task=analyze_ticket.name, status__in=OutboxItem.OPEN
    ).values_list(Cast(KeyTextTransform("0", "args"), BigIntegerField()), flat=True)
    candidates = Ticket.objects.filter(updated_at__lt=cutoff).exclude(pk__in=owed)
    stuck = list(
        candidates.filter(status__in=["analyzing", "ai_responding"]).values_list("pk", flat=True)
    )
    escalated = sum(
        services.ticket_analysis_give_up(
            ticket_id=ticket_id, reason="AI unavailable: the analysis did not finish in time."
        )
        == "escalated"
        for ticket_id in stuck
    )
    waiting = list(candidates.filter(status="new").values_list("pk", flat=True)[:500])
    requeued = sum(services.ticket_analysis_requeue(ticket_id=ticket_id) for ticket_id in waiting)
    return {"escalated": escalated, "requeued": requeued}


@shared_task(acks_late=True)
def draft_answer(ticket_id: int) -> str:
    """An agent asked for the AI's answer on a ticket people handle (an internal note)."""
    from support.ai.pipeline import draft_for_people

    return draft_for_people(ticket_id)


@shared_task(
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def harvest_training_example(ticket_id: int) -> int | None:
    """Keep a well-rated resolution as a training example (idempotent per ticket)."""
    from support import services

    example = services.training_example_harvest(ticket_id=ticket_id)
    return example.pk if example else None


@shared_task(ignore_result=True)
def prune_ai_traces(batch: int = 1000) -> int:
    """Beat, daily: delete the AI's decision traces older than
    ``HELPDESK_AI_TRACE_RETENTION_DAYS`` (in batches); returns how many went."""
    from support import services

    return services.ai_traces_prune(
        keep_days=settings.HELPDESK_AI_TRACE_RETENTION_DAYS, batch=batch
    )


_SLA_WATERMARK = "support:sla-risk:announced-until"


@shared_task
def announce_sla_risk(limit: int = 500) -> int:
    """Beat, every minute: open tickets that the clock alone moved into "SLA at risk"
    (``sla_at_risk_at``, business time) or past their deadline since the last run are
    announced to the agents' live feed (every other change is announced when it
    commits), and the ones past their deadline get ``sla_breached_at`` stamped. Returns
    how many were announced."""
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import F, Q
    from django.utils import timezone

    from support import realtime, services

    now = timezone.now()
    since = cache.get(_SLA_WATERMARK) or now - timedelta(minutes=2)
    at_risk = timedelta(hours=settings.HELPDESK_SLA_AT_RISK_HOURS)
    # A due time written without its at-risk instant counts by the wall clock.
    unset = Q(sla_at_risk_at__isnull=True) | Q(sla_at_risk_at__gt=F("sla_due_at") - at_risk)
    crossed = (
        Q(sla_at_risk_at__gt=since, sla_at_risk_at__lte=now)
        | Q(sla_due_at__gt=since, sla_due_at__lte=now)
        | (unset & Q(sla_due_at__gt=since + at_risk, sla_due_at__lte=now + at_risk))
    )
    ids = list(
        Ticket.objects.open()
        .filter(crossed)
        .order_by("sla_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    services.ticket_sla_stamp_breaches(now=now)
    for ticket_id in ids:
        realtime.announce("sla_at_risk", {"ticket_id": ticket_id})
    cache.set(_SLA_WATERMARK, now, timeout=None)
    return len(ids)


@shared_task(ignore_result=True)
def poll_mailboxes() -> int:
    """Beat, every ``HELPDESK_IMAP_POLL_SECONDS``: one ``poll_mailbox`` task per active
    IMAP mailbox, so one slow server does not hold up the others."""
    from support.models import Mailbox

    ids = list(Mailbox.objects.filter(is_active=True).values_list("pk", flat=True))
    expires = max(settings.HELPDESK_IMAP_POLL_SECONDS * 2, 60)
    for mailbox_id in ids:
        poll_mailbox.apply_async((mailbox_id,), expires=expires)  # a stale poll is skipped
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def poll_mailbox(mailbox_id: int) -> int:
    """Read one mailbox's new mail into the desk (``support.email.imap_poll``): one poll
    per mailbox at a time; the mail server's failures are recorded on the mailbox and the
    next beat run retries, so this task never retries itself."""
    from support.email.imap_poll import mailbox_poll

    return mailbox_poll(mailbox_id)


@shared_task(acks_late=True)
def execute_action_run(run_id: int) -> str:
    """Run an HTTP action the customer confirmed (and an agent approved, when it needs
    that), and post the outcome on the ticket. Owed through the outbox by the service that
    queued the run; idempotent: only a queued run runs, so a redelivered message does
    nothing. A failed call is recorded and handed to people, never raised."""
    from support import services

    return services.action_run_execute(run_id)
