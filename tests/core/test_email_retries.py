"""Notifications through Django's SMTP backend to a real SMTP server on loopback: transient
failures are retried, permanent ones and the last transient one are recorded, never silent."""

from __future__ import annotations

import pytest

from core.models import OutboxItem
from support import services
from support.models import TicketEvent
from support.tasks import is_transient, ticket_effects
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    def start(mode="accept", times=None):
        server = SmtpServer(mode, times).__enter__()
        started.append(server)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 5
        return server

    started: list[SmtpServer] = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


def reply_and_deliver(ticket, agent):
    """An agent replies; the outbox item of the email is delivered to a worker (inline)."""
    message = services.message_add(ticket=ticket, author=agent, body="Try again now.")
    item = OutboxItem.objects.get(task="support.tasks.ticket_effects")
    ticket_effects.apply(item.args, item.kwargs, headers={"outbox_id": item.pk})
    item.refresh_from_db()
    return message, item


@pytest.mark.parametrize("mode", ["disconnect", "busy"])
def test_a_transient_smtp_failure_is_retried_until_the_mail_goes_out(ticket, agent, smtp, mode):
    server = smtp(mode, times=2)

    _, item = reply_and_deliver(ticket, agent)

    assert len(server.delivered) == 1
    assert server.delivered[0]["to"] == ["<customer-a@example.com>"]
    assert "Try again now." in server.delivered[0]["data"]
    assert (item.status, item.attempts) == (OutboxItem.Status.DONE, 3)
    assert not ticket.events.filter(kind=TicketEvent.Kind.NOTIFICATION_FAILED).exists()


def test_a_refused_recipient_is_not_retried_and_is_recorded_on_the_ticket(ticket, agent, smtp):
    server = smtp("reject")

    _, item = reply_and_deliver(ticket, agent)

    assert server.connections == 1
    assert item.status == OutboxItem.Status.FAILED
    assert "SMTPRecipientsRefused" in item.last_error
    event = ticket.events.get(kind=TicketEvent.Kind.NOTIFICATION_FAILED)
    assert event.is_internal
    assert event.metadata["effect"] == "public_reply"
    assert event.metadata["attempts"] == 1
    assert "550" in event.metadata["error"]


def test_a_server_that_stays_away_is_given_up_after_the_retries(ticket, agent, smtp, settings):
    server = smtp("disconnect")

    _, item = reply_and_deliver(ticket, agent)

    attempts = settings.HELPDESK_EMAIL_MAX_RETRIES + 1
    assert server.connections == attempts
    assert item.status == OutboxItem.Status.FAILED
    assert "SMTPServerDisconnected" in item.last_error
    event = ticket.events.get(kind=TicketEvent.Kind.NOTIFICATION_FAILED)
    assert event.metadata["attempts"] == attempts


def test_unreachable_smtp_server_counts_as_transient():
    import smtplib

    assert is_transient(ConnectionRefusedError())
    assert is_transient(smtplib.SMTPServerDisconnected("gone"))
    assert is_transient(smtplib.SMTPResponseException(421, b"busy"))
    assert not is_transient(smtplib.SMTPAuthenticationError(535, b"bad credentials"))
    assert not is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no")}))
    assert is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"later")}))
    assert not is_transient(ValueError("a bug"))
