"""The transactional outbox on the real PostgreSQL and the real Redis broker: work is
recorded with the change, handed to the broker after commit, re-sent when it was lost,
and run once however often it is delivered."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import app, ping
from core import outbox
from core.models import OutboxItem
from support import services
from support.models import Message, TicketStatus

pytestmark = pytest.mark.django_db
S = OutboxItem.Status


@pytest.fixture
def broker():
    """The test session's real Redis broker, with the default queue emptied around a test."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery")
    yield client
    client.delete("celery")
    client.close()


def queued(client) -> list[dict]:
    """The messages waiting in the broker's default queue (kombu's Redis format)."""
    messages = []
    for raw in client.lrange("celery", 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        messages.append({**envelope["headers"], "args": args, "kwargs": kwargs})
    return messages


@pytest.fixture
def closed_circuit():
    """The fast path as in a new process: no broken broker seen, its run id not asked yet."""
    outbox._circuit_open_until, outbox._run_id_cache = 0.0, (0.0, "")
    yield
    outbox._circuit_open_until, outbox._run_id_cache = 0.0, (0.0, "")


def open_ticket(customer, subject="Cannot export invoices"):
    return services.ticket_open(
        requester=customer, subject=subject, description="The export spins.", type="billing"
    )


def test_work_is_recorded_with_the_change_or_not_at_all(customer):
    with pytest.raises(RuntimeError), transaction.atomic():
        open_ticket(customer)
        raise RuntimeError("the request failed after the ticket was written")
    assert not OutboxItem.objects.exists()

    ticket = open_ticket(customer)

    (item,) = OutboxItem.objects.all()
    assert (item.task, item.args, item.status) == (
        "support.tasks.analyze_ticket",
        [ticket.pk],
        S.PENDING,
    )


def test_after_commit_the_item_is_in_the_broker_with_its_id(
    customer, broker, closed_circuit, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket(customer)

    item = OutboxItem.objects.get()
    assert (item.status, item.sends) == (S.SENT, 1)
    assert item.broker_run_id == broker.info("server")["run_id"]
    (message,) = queued(broker)
    assert message["task"] == "support.tasks.analyze_ticket"
    assert message["outbox_id"] == item.pk
    assert message["args"] == [ticket.pk]


def test_a_broker_that_is_down_costs_the_request_nothing_and_the_relay_sends_later(
    customer, broker, closed_circuit, django_capture_on_commit_callbacks
):
    # Nothing listens on port 9 of this machine: the broker is unreachable.
    real_url = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            open_ticket(customer)
        with django_capture_on_commit_callbacks(execute=True):
            open_ticket(customer, subject="Second")
        elapsed = time.monotonic() - started
    finally:
        app.conf.broker_url = real_url

    assert elapsed < 3
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {S.PENDING}
    assert queued(broker) == []

    outbox._circuit_open_until = 0.0  # the broker is back; the relay's next run
    assert outbox.relay() == 2
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {S.SENT}
    assert len(queued(broker)) == 2


def test_relay_sends_again_exactly_what_was_lost(broker, closed_circuit):
    now = timezone.now()
    run_id = broker.info("server")["run_id"]
    long_ago = now - timedelta(seconds=settings.OUTBOX_RESEND_AFTER + 1)

    def item(name, **fields):
        return OutboxItem.objects.create(
            task="helpdesk.ping", args=[name], available_at=now, **fields
        )

    lost = [
        item("never handed over"),
        item("not started for too long", status=S.SENT, sent_at=long_ago, broker_run_id=run_id),
        item("broker restarted since", status=S.SENT, sent_at=now, broker_run_id="an-old-redis"),
        item("worker died", status=S.RUNNING, lease_until=now - timedelta(seconds=1)),
    ]
    kept = [
        item("queued a moment ago", status=S.SENT, sent_at=now, broker_run_id=run_id),
        item("running", status=S.RUNNING, lease_until=now + timedelta(seconds=20)),
        item("done", status=S.DONE),
        item("failed", status=S.FAILED),
        OutboxItem.objects.create(
            task="helpdesk.ping", args=["later"], available_at=now + timedelta(minutes=5)
        ),
    ]
    before = {i.pk: (i.status, i.sends) for i in kept}

    assert outbox.relay() == len(lost)

    assert sorted(m["args"][0] for m in queued(broker)) == sorted(i.args[0] for i in lost)
    for i in lost:
        i.refresh_from_db()
        assert (i.status, i.broker_run_id) == (S.SENT, run_id)
    assert {i.pk: (i.status, i.sends) for i in OutboxItem.objects.filter(pk__in=before)} == before
    assert outbox.relay() == 0  # nothing is due twice


def test_a_delivered_item_runs_once_however_often_it_arrives():
    item = outbox.schedule_after_commit(ping, "hello")

    first = ping.apply(["hello"], headers={"outbox_id": item.pk})
    second = ping.apply(["hello"], headers={"outbox_id": item.pk})

    assert first.get()["value"] == "hello"
    assert second.get() is None
    item.refresh_from_db()
    assert (item.status, item.attempts, item.lease_until) == (S.DONE, 1, None)
    assert item.finished_at is not None


def test_an_item_another_worker_holds_is_left_to_it_until_its_lease_runs_out():
    item = outbox.schedule_after_commit(ping, "hello")
    OutboxItem.objects.filter(pk=item.pk).update(
        status=S.RUNNING, attempts=1, lease_until=timezone.now() + timedelta(seconds=30)
    )
    assert ping.apply(["hello"], headers={"outbox_id": item.pk}).get() is None
    assert OutboxItem.objects.get(pk=item.pk).attempts == 1

    OutboxItem.objects.filter(pk=item.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert ping.apply(["hello"], headers={"outbox_id": item.pk}).get()["value"] == "hello"
    item.refresh_from_db()
    assert (item.status, item.attempts) == (S.DONE, 2)


def test_an_analysis_whose_worker_died_is_taken_over_and_answered_once(
    customer, kb, broker, closed_circuit
):
    from support.tasks import analyze_ticket

    ticket = services.ticket_open(
        requester=customer,
        subject="Export to CSV",
        description="How do I export my tasks to CSV?",
    )
    item = OutboxItem.objects.get(task="support.tasks.analyze_ticket")
    # The first worker claimed it, moved the ticket to "analyzing" and was killed; its
    # lease ran out and the relay sent the item again.
    services.ticket_set_status(ticket=ticket, status=TicketStatus.ANALYZING, actor_kind="ai")
    OutboxItem.objects.filter(pk=item.pk).update(
        status=S.RUNNING, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    outbox.relay()
    assert OutboxItem.objects.get(pk=item.pk).status == S.SENT

    outcome = analyze_ticket.apply([ticket.pk], headers={"outbox_id": item.pk}).get()

    ticket.refresh_from_db()
    assert outcome in {"resolved", "awaiting_customer", "escalated"}
    assert ticket.status != TicketStatus.ANALYZING
    assert ticket.messages.filter(sender_kind=Message.SenderKind.AI, is_internal=False).count() <= 1
    assert ticket.messages.filter(sender_kind=Message.SenderKind.AI).exists()
    # Delivered again later (the first message restored by the broker): nothing more.
    assert analyze_ticket.apply([ticket.pk], headers={"outbox_id": item.pk}).get() is None
    assert ticket.messages.filter(sender_kind=Message.SenderKind.AI).count() == 1


def test_without_an_outbox_claim_a_started_analysis_is_not_run_twice(customer):
    from support.tasks import analyze_ticket

    ticket = open_ticket(customer)
    services.ticket_set_status(ticket=ticket, status=TicketStatus.ANALYZING, actor_kind="ai")

    assert analyze_ticket.apply([ticket.pk]).get() == "skipped"


def test_readiness_reports_open_and_failed_work(client):
    OutboxItem.objects.create(
        task="helpdesk.ping", available_at=timezone.now(), status=S.FAILED, last_error="boom"
    )
    item = OutboxItem.objects.create(task="helpdesk.ping", available_at=timezone.now())
    OutboxItem.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(minutes=3))

    body = client.get("/health/ready/").json()

    assert body["outbox"]["open"] == 1
    assert body["outbox"]["failed"] == 1
    assert 175 <= body["outbox"]["oldest_open_seconds"] <= 200


def test_admin_shows_failed_work_to_agents_and_sends_it_again(
    client,
    agent,
    customer,
    broker,
    closed_circuit,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    failed = [
        OutboxItem.objects.create(
            task="helpdesk.ping",
            args=[n],
            available_at=timezone.now(),
            status=S.FAILED,
            last_error="SMTPServerDisconnected: Connection unexpectedly closed",
        )
        for n in range(20)
    ]
    client.force_login(customer)
    assert client.get("/admin/core/outboxitem/").status_code == 302  # not staff: to login

    client.force_login(agent)
    with django_assert_max_num_queries(12):
        page = client.get("/admin/core/outboxitem/?status=failed")
    assert page.status_code == 200
    assert page.content.decode().count("SMTPServerDisconnected") == 20
    assert client.get(f"/admin/core/outboxitem/{failed[0].pk}/change/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/core/outboxitem/",
            {"action": "retry_now", "_selected_action": [failed[0].pk, failed[1].pk]},
            follow=True,
        )
    assert "2 item(s) queued again." in response.content.decode()
    assert sorted(m["args"][0] for m in queued(broker)) == [0, 1]
    assert OutboxItem.objects.filter(status=S.FAILED).count() == 18


def test_done_work_is_forgotten_after_a_week_failed_work_is_kept():
    from core.tasks import outbox_prune

    old = timezone.now() - timedelta(days=8)
    rows = {
        status: OutboxItem.objects.create(task="helpdesk.ping", available_at=old, status=status)
        for status in (S.DONE, S.FAILED, S.PENDING)
    }
    OutboxItem.objects.filter(pk__in=[r.pk for r in rows.values()]).update(created_at=old)
    recent = OutboxItem.objects.create(task="helpdesk.ping", available_at=old, status=S.DONE)

    assert outbox_prune() == 1

    assert set(OutboxItem.objects.values_list("pk", flat=True)) == {
        rows[S.FAILED].pk,
        rows[S.PENDING].pk,
        recent.pk,
    }
