"""End to end: tickets opened through the services, the analysis queued after commit
into the real Redis broker, run by a real `celery worker` process on the test database."""

import time

import pytest

from support import services
from support.models import Ticket
from support.tasks import analyze_ticket
from tests.conftest import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FINAL = {"resolved", "escalated", "awaiting_customer"}


@pytest.fixture(scope="module")
def worker(django_db_setup):
    with celery_worker() as process:
        yield process


def wait_until_handled(ticket, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticket.refresh_from_db()
        if ticket.status in FINAL:
            return ticket
        time.sleep(0.3)
    raise AssertionError(f"{ticket.reference} still {ticket.status} after {timeout}s")


def test_an_answerable_question_is_resolved_with_the_article_cited(kb, customer, worker):
    ticket = services.ticket_open(
        requester=customer,
        subject="Forgot my password",
        description="How do I reset my password? I forgot it.",
    )

    wait_until_handled(ticket)

    assert ticket.status == "resolved"
    message = ticket.messages.get(sender_kind="ai")
    assert message.article_ids == [kb["Reset a forgotten password"].pk]
    assert message.ai_confidence >= 0.85


def test_a_low_confidence_question_is_escalated_with_the_attempt(kb, customer, worker):
    ticket = services.ticket_open(
        requester=customer,
        subject="Blue widget",
        description="The blue widget hums when the moon is full.",
    )

    wait_until_handled(ticket)

    assert ticket.status == "escalated"
    escalation = ticket.escalations.get()
    assert escalation.kind in ("ai_low_confidence", "complex") and escalation.ai_attempt


def test_an_always_escalate_request_is_escalated_whatever_the_confidence(kb, customer, worker):
    ticket = services.ticket_open(
        requester=customer,
        subject="Charged twice",
        description="I was charged twice, please refund me.",
    )

    wait_until_handled(ticket)

    assert ticket.status == "escalated"
    assert ticket.escalations.get().kind == "policy"


def test_a_duplicate_delivery_does_not_answer_twice(kb, customer, worker):
    ticket = services.ticket_open(
        requester=customer, subject="Forgot my password", description="How do I reset my password?"
    )
    wait_until_handled(ticket)

    outcomes = [analyze_ticket.delay(ticket.pk).get(timeout=60) for _ in range(2)]

    assert outcomes == ["skipped", "skipped"]
    assert ticket.messages.filter(sender_kind="ai").count() == 1


def test_a_provider_outage_escalates_as_ai_unavailable(kb, customer, worker):
    worker.terminate()  # this case needs a worker whose Claude endpoint is down
    worker.wait(timeout=20)
    outage = {
        "HELPDESK_LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "HELPDESK_LLM_MAX_RETRIES": "1",
        "HELPDESK_LLM_TIMEOUT_SECONDS": "5",
    }
    with celery_worker(**outage):
        ticket = services.ticket_open(
            requester=customer, subject="Invite", description="How do I invite my teammates?"
        )
        wait_until_handled(ticket)

    assert ticket.status == "escalated"
    escalation = ticket.escalations.get()
    assert escalation.kind == "ai_unavailable"
    assert "unavailable" in escalation.reason.lower()
    assert Ticket.objects.filter(status__in=["analyzing", "ai_responding"]).count() == 0
