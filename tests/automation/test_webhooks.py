"""Outbound webhooks: the events real services produce, signed deliveries to a real local
HTTP server, retries with the backoff schedule, disabling after repeated failures, SSRF
refusal, and nothing queued for a change that rolls back."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automation import webhooks
from automation.models import WebhookDelivery, WebhookEndpoint
from automation.services import webhooks as services
from automation.tasks import deliver_webhook, notify_webhook_disabled
from core.clock import set_clock
from core.errors import DomainError
from core.models import OutboxItem
from support import services as support
from tests.servers import free_port

ALL_EVENTS = [
    "ticket.created",
    "ticket.updated",
    "ticket.resolved",
    "message.added",
    "feature_request.status_changed",
]


class Receiver:
    """A thread-based HTTP server that records every request and answers from a script:
    ``(status, body)`` tuples, ``("sleep", seconds)`` or ``("redirect", url)``; 200 when
    the script is empty."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                step = receiver.script.pop(0) if receiver.script else (200, b"ok")
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = (200, b"late")
                if step[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", step[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, text = step
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                with contextlib.suppress(OSError):  # a client that gave up (timeout)
                    self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def json(self, index: int = -1) -> dict:
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def verify(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as documented in automation/webhooks.py."""
    timestamp = headers["X-Helpdesk-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = headers["X-Helpdesk-Signature"].removeprefix("v1=")
    return hmac.compare_digest(expected.hexdigest(), given)


def endpoint_for(url, agent, events=None, name="Receiver", **extra):
    return services.endpoint_create(
        name=name, url=url, events=ALL_EVENTS if events is None else events, actor=agent, **extra
    )


def deliveries(event=None):
    rows = WebhookDelivery.objects.order_by("id")
    return list(rows.filter(event=event) if event else rows)


def open_ticket(customer):
    return support.ticket_open(
        requester=customer,
        subject="Cannot export invoices",
        description="The export button spins forever.",
        type="billing",
    )


def send_all() -> list[str]:
    return [deliver_webhook(d.pk) for d in deliveries()]


# --------------------------------------------------------------------------------------
# Events from the real services, signed and delivered
# --------------------------------------------------------------------------------------


def test_an_opened_ticket_is_posted_signed_to_the_receiver(receiver, agent, customer):
    endpoint = endpoint_for(receiver.url, agent)

    ticket = open_ticket(customer)

    (delivery,) = deliveries()
    assert delivery.event == "ticket.created"
    assert OutboxItem.objects.filter(
        task="automation.tasks.deliver_webhook", args=[delivery.pk]
    ).exists()
    assert deliver_webhook(delivery.pk) == "succeeded"
    (request,) = receiver.requests
    headers = request["headers"]
    assert verify(endpoint.secret, headers, request["body"])
    assert not verify("whsec_wrong", headers, request["body"])
    assert headers["X-Helpdesk-Event"] == "ticket.created"
    assert headers["X-Helpdesk-Delivery"] == str(delivery.event_id)
    assert headers["Content-Type"] == "application/json"
    assert headers["Host"] == receiver.url.split("/")[2]  # sent to the checked address
    body = receiver.json()
    assert body["id"] == str(delivery.event_id)
    assert body["event"] == "ticket.created"
    data = body["data"]["ticket"]
    assert data["reference"] == ticket.reference
    assert data["subject"] == "Cannot export invoices"
    assert data["status"] == ticket.status
    assert data["type"] == "billing"
    assert data["requester"]["email"] == customer.email
    assert data["organization"] == "Acme"
    assert data["url"].endswith(ticket.get_absolute_url())
    opening = body["data"]["message"]
    assert opening["body"] == "The export button spins forever." and opening["internal"] is False
    assert opening["sender_kind"] == "customer"
    assert (
        "secret" not in request["body"].decode() and endpoint.secret not in request["body"].decode()
    )
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert delivery.response_status == 200 and delivery.response_body == "ok"
    assert delivery.response_ms is not None and delivery.delivered_at
    # Run twice (a re-sent message): nothing is posted again.
    assert deliver_webhook(delivery.pk) == "finished"
    assert len(receiver.requests) == 1


def test_the_outbox_hands_the_delivery_to_its_task(receiver, agent, customer, run_effects):
    ticket = open_ticket(customer)
    endpoint_for(receiver.url, agent, events=["ticket.updated"])

    with run_effects():  # (a priority change: no AI analysis to run inline)
        support.ticket_change_priority(ticket=ticket, priority="urgent", actor=agent)

    (delivery,) = deliveries()
    assert delivery.status == "succeeded"
    assert [r["headers"]["X-Helpdesk-Delivery"] for r in receiver.requests] == [
        str(delivery.event_id)
    ]
    item = OutboxItem.objects.get(task="automation.tasks.deliver_webhook")
    assert item.status == OutboxItem.Status.DONE


def test_changes_replies_and_resolution_become_their_events(receiver, agent, customer):
    ticket = open_ticket(customer)
    endpoint_for(receiver.url, agent)

    support.ticket_change_priority(ticket=ticket, priority="high", actor=agent)
    support.ticket_set_status(ticket=ticket, status="escalated", actor=agent)
    support.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    support.message_add(ticket=ticket, author=agent, body="Try clearing the cache.")
    support.message_add(ticket=ticket, author=customer, body="Still spinning.")
    support.ticket_resolve(ticket=ticket, actor=agent)

    events = [d.event for d in deliveries()]
    assert "ticket.created" not in events  # the endpoint came after the opening
    assert events.count("message.added") == 2
    assert "ticket.resolved" in events
    updated = [d.payload["data"]["changes"] for d in deliveries("ticket.updated")]
    fields = [change["field"] for changes in updated for change in changes]
    assert {"priority", "assignee", "status"} <= set(fields)
    priority = next(c for changes in updated for c in changes if c["field"] == "priority")
    assert priority == {"field": "priority", "old": "normal", "new": "high"}
    # Each payload says what was true at its change.
    first_update = deliveries("ticket.updated")[0].payload["data"]["ticket"]
    assert first_update["priority"] == "high" and first_update["assignee"] is None
    assert first_update["status"] == "new"
    status_changes = [c for changes in updated for c in changes if c["field"] == "status"]
    assert status_changes[0] == {"field": "status", "old": "new", "new": "escalated"}
    assert status_changes[-1]["new"] == "resolved"
    replies = [d.payload["data"]["message"] for d in deliveries("message.added")]
    assert [(m["sender_kind"], m["body"], m["internal"]) for m in replies] == [
        ("agent", "Try clearing the cache.", False),
        ("customer", "Still spinning.", False),
    ]
    assert deliveries("ticket.resolved")[0].payload["data"]["ticket"]["status"] == "resolved"

    assert set(send_all()) == {"succeeded"}
    received = [r["headers"]["X-Helpdesk-Event"] for r in receiver.requests]
    assert received == events
    assert all(WebhookEndpoint.objects.get().secret for _ in received)


def test_internal_notes_reach_only_endpoints_that_opted_in(receiver, agent, customer):
    ticket = open_ticket(customer)
    plain = endpoint_for(receiver.url, agent, events=["message.added"], name="Plain")
    opted = endpoint_for(
        receiver.url, agent, events=["message.added"], name="Internal", include_internal=True
    )

    support.message_add(
        ticket=ticket, author=agent, body="Customer is on the old plan.", is_internal=True
    )

    (delivery,) = deliveries()
    assert delivery.endpoint == opted and delivery.endpoint != plain
    assert delivery.payload["data"]["message"]["internal"] is True


def test_an_endpoint_receives_only_what_it_subscribed_to(receiver, agent, customer):
    endpoint_for(receiver.url, agent, events=["ticket.resolved"])
    ticket = open_ticket(customer)
    support.ticket_change_priority(ticket=ticket, priority="urgent", actor=agent)
    assert deliveries() == []
    support.ticket_resolve(ticket=ticket, actor=agent)
    assert [d.event for d in deliveries()] == ["ticket.resolved"]


def test_a_feature_request_status_change_is_posted(receiver, agent, customer):
    from feedback import services as feedback

    feature = feedback.request_submit(author=customer, title="Dark mode for the dashboard")
    endpoint_for(receiver.url, agent, events=["feature_request.status_changed"])

    feedback.request_change_status(request=feature, status="planned", actor=agent)

    (delivery,) = deliveries()
    assert deliver_webhook(delivery.pk) == "succeeded"
    body = receiver.json()
    assert body["event"] == "feature_request.status_changed"
    assert body["data"]["feature_request"]["title"] == "Dark mode for the dashboard"
    assert body["data"]["feature_request"]["status"] == "planned"
    assert body["data"]["changes"] == [{"field": "status", "old": "open", "new": "planned"}]


def test_a_rule_call_queues_a_rule_action_delivery(receiver, agent, customer):
    ticket = open_ticket(customer)
    endpoint = endpoint_for(receiver.url, agent, events=[])
    rule = SimpleNamespace(pk=7, name="VIP escalation")

    delivery = webhooks.queue_rule_call(endpoint_id=endpoint.pk, ticket=ticket, rule=rule)

    assert delivery.event == "rule.action"
    assert delivery.payload["data"]["rule"] == {"id": 7, "name": "VIP escalation"}
    assert delivery.payload["data"]["ticket"]["reference"] == ticket.reference
    services.endpoint_disable(endpoint=endpoint, actor=agent, reason="Paused.")
    assert webhooks.queue_rule_call(endpoint_id=endpoint.pk, ticket=ticket, rule=rule) is None


def test_a_change_that_rolls_back_queues_nothing(receiver, agent, customer):
    endpoint_for(receiver.url, agent)
    outbox_before = OutboxItem.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        open_ticket(customer)
        assert len(deliveries()) == 1
        raise RuntimeError("the request failed later")

    assert deliveries() == []
    assert OutboxItem.objects.count() == outbox_before


def test_with_no_endpoint_a_change_costs_at_most_one_query(agent, customer):
    ticket = open_ticket(customer)  # the subscriptions are read once, then cached
    with CaptureQueriesContext(connection) as queries:
        support.ticket_change_priority(ticket=ticket, priority="high", actor=agent)
        support.message_add(ticket=ticket, author=agent, body="On it.")
    assert not [q for q in queries.captured_queries if "automation_webhook" in q["sql"]]
    assert deliveries() == []


def test_a_new_endpoint_is_heard_at_once_despite_the_cache(receiver, agent, customer):
    ticket = open_ticket(customer)  # caches "no endpoint"
    endpoint = endpoint_for(receiver.url, agent, events=["ticket.updated"])
    support.ticket_change_priority(ticket=ticket, priority="high", actor=agent)
    assert len(deliveries()) == 1
    services.endpoint_update(endpoint=endpoint, actor=agent, is_active=False)
    support.ticket_change_priority(ticket=ticket, priority="low", actor=agent)
    assert len(deliveries()) == 1


# --------------------------------------------------------------------------------------
# Failures, retries, disabling
# --------------------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_on_the_backoff_schedule(receiver, agent, customer, settings):
    settings.HELPDESK_WEBHOOKS_TIMEOUT_SECONDS = 0.5
    settings.HELPDESK_WEBHOOKS_RETRY_SCHEDULE = [60, 300, 1800, 7200, 21600, 43200]
    endpoint = endpoint_for(receiver.url, agent, events=["ticket.created"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=3)
    open_ticket(customer)
    (delivery,) = deliveries()
    receiver.script = [(500, b"boom " * 1000), ("sleep", 2)]
    start = timezone.now()

    with set_clock(start) as clock:
        # 1: HTTP 500 → retry in 1 minute, through the outbox.
        assert deliver_webhook(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        assert delivery.attempts == 1 and delivery.response_status == 500
        assert delivery.response_body.startswith("boom") and len(delivery.response_body) <= 2048
        assert delivery.error == "HTTP 500"
        assert delivery.next_attempt_at == start + timedelta(seconds=60)
        retry_items = OutboxItem.objects.filter(
            task="automation.tasks.deliver_webhook", args=[delivery.pk]
        ).order_by("id")
        assert retry_items.count() == 2
        assert retry_items.last().available_at == delivery.next_attempt_at
        # A copy of the message arriving early does nothing.
        assert deliver_webhook(delivery.pk) == "not due"
        assert len(receiver.requests) == 1

        # 2: a timeout → retry in 5 minutes.
        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        assert delivery.attempts == 2 and delivery.response_status is None
        assert delivery.error.startswith("timeout")
        assert delivery.next_attempt_at == clock.now() + timedelta(seconds=300)

        # 3: connection refused → retry in 30 minutes.
        dead = f"http://127.0.0.1:{free_port()}/hooks"
        services.endpoint_update(endpoint=endpoint, actor=agent, url=dead)
        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "retrying"
        delivery.refresh_from_db()
        assert delivery.attempts == 3 and "ConnectError" in delivery.error
        assert delivery.next_attempt_at == clock.now() + timedelta(seconds=1800)

        # 4: the receiver is back → succeeded, the endpoint's failure count reset.
        services.endpoint_update(endpoint=endpoint, actor=agent, url=receiver.url)
        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "succeeded"
    delivery.refresh_from_db()
    assert delivery.attempts == 4 and delivery.error == "" and delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    assert OutboxItem.objects.filter(task="automation.tasks.deliver_webhook").count() == 4


def test_a_redirect_is_not_followed(receiver, agent, customer):
    endpoint_for(receiver.url, agent, events=["ticket.created"])
    receiver.script = [("redirect", "http://169.254.169.254/latest/meta-data/")]
    open_ticket(customer)
    (delivery,) = deliveries()
    assert deliver_webhook(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.response_status == 302 and "not followed" in delivery.error
    assert len(receiver.requests) == 1


def test_after_the_last_attempt_the_delivery_fails_and_the_endpoint_is_disabled(
    receiver, agent, manager, customer, settings, client
):
    settings.HELPDESK_WEBHOOKS_RETRY_SCHEDULE = [60]
    settings.HELPDESK_WEBHOOKS_DISABLE_AFTER = 2
    endpoint = endpoint_for(receiver.url, agent, events=["ticket.created"])
    receiver.script = [(503, b"down")] * 10
    start = timezone.now()

    with set_clock(start) as clock:
        for n in range(2):
            open_ticket(customer)
            delivery = deliveries()[-1]
            assert deliver_webhook(delivery.pk) == "retrying"
            clock.move_to(clock.now() + timedelta(seconds=60))
            assert deliver_webhook(delivery.pk) == "failed"
            endpoint.refresh_from_db()
            assert endpoint.consecutive_failures == n + 1

    assert endpoint.is_active is False and endpoint.disabled_at
    assert "2 deliveries in a row failed" in endpoint.disabled_reason
    assert "HTTP 503" in endpoint.disabled_reason
    (notice,) = OutboxItem.objects.filter(task="automation.tasks.notify_webhook_disabled")
    assert notice.args == [endpoint.pk]
    # The staff email (the outbox item's task).
    assert notify_webhook_disabled(endpoint.pk) == 1
    (email,) = mail.outbox
    assert manager.email in email.to
    assert endpoint.name in email.subject and "HTTP 503" in email.body
    # The admin tells it too.
    client.force_login(agent)
    page = client.get("/admin/automation/webhookendpoint/")
    assert "is disabled since" in page.content.decode()
    assert endpoint.disabled_reason in page.content.decode()
    # Nothing more is queued for it…
    open_ticket(customer)
    assert len(deliveries()) == 2
    # …and a delivery queued before it was disabled is not sent.
    services.endpoint_enable(endpoint=endpoint, actor=agent)
    open_ticket(customer)
    queued = deliveries()[-1]
    services.endpoint_disable(endpoint=endpoint, actor=agent, reason="Paused.")
    sent_before = len(receiver.requests)
    assert deliver_webhook(queued.pk) == "abandoned"
    assert len(receiver.requests) == sent_before


def test_enabling_again_in_admin_resets_the_failure_count(agent, receiver, client):
    endpoint = endpoint_for(receiver.url, agent, events=["ticket.created"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=5)
    services.endpoint_disable(endpoint=endpoint, actor=None, reason="5 deliveries failed.")
    client.force_login(agent)

    page = client.get(f"/admin/automation/webhookendpoint/{endpoint.pk}/change/")
    assert "Disabled since" in page.content.decode()
    response = client.post(
        f"/admin/automation/webhookendpoint/{endpoint.pk}/change/",
        {
            "name": endpoint.name,
            "url": endpoint.url,
            "events": ["ticket.created"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0
    assert endpoint.disabled_at is None and endpoint.disabled_reason == ""


# --------------------------------------------------------------------------------------
# SSRF
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused(url, agent, settings):
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(DomainError) as refused:
        services.endpoint_create(name="Inside", url=url, events=[], actor=agent)
    assert refused.value.field == "url"
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://user:pw@example.com/"])
def test_bad_urls_are_refused(url, agent):
    with pytest.raises(DomainError) as refused:
        services.endpoint_create(name="Bad", url=url, events=[], actor=agent)
    assert refused.value.field == "url"


def test_a_delivery_to_an_address_that_became_private_is_not_sent(
    receiver, agent, customer, settings
):
    endpoint_for(receiver.url, agent, events=["ticket.created"])
    open_ticket(customer)
    (delivery,) = deliveries()
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False

    assert deliver_webhook(delivery.pk) == "retrying"

    delivery.refresh_from_db()
    assert delivery.error.startswith("refused:") and "127.0.0.1" in delivery.error
    assert receiver.requests == []


def test_a_public_address_is_connected_to_by_its_checked_ip(settings):
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False
    assert webhooks.resolve_public("https://93.184.215.14/hook") == ["93.184.215.14"]


def test_a_host_name_is_resolved_and_its_checked_address_connected_to(receiver, agent, customer):
    url = receiver.url.replace("127.0.0.1", "localhost")
    endpoint_for(url, agent, events=["ticket.created"])
    open_ticket(customer)
    (delivery,) = deliveries()

    assert deliver_webhook(delivery.pk) == "succeeded"

    assert receiver.requests[0]["headers"]["Host"] == url.split("/")[2]
